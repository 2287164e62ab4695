"""telephony (reserved: filled in by the telephony work)

Revision ID: 0004
Revises: 0003
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- telephony A: IVR menu, opening hours, out-of-hours items, IVR choice on the call ---
    op.create_table(
        "ivr_option",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("digit", sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False),
        sa.Column("queue_name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("prompt_text", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("prompt_upload", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number", "digit", name="uq_ivr_option_number_digit"),
    )
    op.create_index("ix_ivr_option_number", "ivr_option", ["number"])
    op.create_table(
        "service_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("schedule", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("open_time", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("close_time", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("closed_text", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_service_hours_number", "service_hours", ["number"], unique=True)
    op.create_table(
        "caller_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("linkedid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("caller", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("caller_raw", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("did", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("recording", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("done_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("done_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_caller_request_linkedid", "caller_request", ["linkedid"])
    op.create_index("ix_caller_request_resident_id", "caller_request", ["resident_id"])
    op.create_index("ix_caller_request_created_at", "caller_request", ["created_at"])
    with op.batch_alter_table("callrecord", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ivr_choice", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("ivr_category", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="")
        )
    op.create_index("ix_callrecord_caller_started_at", "callrecord", ["caller", "started_at"])
    # --- end telephony A ---
    # --- telephony B ---
    with op.batch_alter_table("callrecord", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recording", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False, server_default="")
        )
    op.create_table(
        "callback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("queue", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("seat", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("done_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_callback_linkedid", "callback", ["linkedid"])
    op.create_index("ix_callback_requested_at", "callback", ["requested_at"])
    op.create_index("ix_callback_status", "callback", ["status"])
    op.create_table(
        "followup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("done_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_followup_reference", "followup", ["reference"])
    op.create_index("ix_followup_status", "followup", ["status"])


def downgrade() -> None:
    # --- telephony B ---
    op.drop_table("followup")
    op.drop_table("callback")
    with op.batch_alter_table("callrecord", schema=None) as batch_op:
        batch_op.drop_column("recording")
    # --- telephony A ---
    op.drop_index("ix_callrecord_caller_started_at", table_name="callrecord")
    with op.batch_alter_table("callrecord", schema=None) as batch_op:
        batch_op.drop_column("ivr_category")
        batch_op.drop_column("ivr_choice")
    op.drop_table("caller_request")
    op.drop_table("service_hours")
    op.drop_table("ivr_option")
