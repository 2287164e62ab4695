"""messaging: the SMS outbox and inbound replies, grid/approval records and their webhook outbox,
Open311 tokens, outlet contacts and areas

Revision ID: 0006
Revises: 0005
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401
import sqlmodel  # noqa: F401


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "sms_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", S(length=128), nullable=False, unique=True),
        sa.Column("to", S(length=20), nullable=False, index=True),
        sa.Column("body", S(length=1000), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("workorder.id"), nullable=True, index=True),
        sa.Column("status", S(length=16), nullable=False, index=True),
        sa.Column("provider", S(length=16), nullable=False, server_default=""),
        sa.Column("provider_id", S(length=64), nullable=False, server_default="", index=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False, index=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", S(length=64), nullable=False, server_default=""),
        sa.Column("last_error", S(length=500), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("callbacks", sa.JSON(), nullable=True),
    )
    op.create_table(
        "sms_inbound",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("provider", S(length=16), nullable=False),
        sa.Column("provider_id", S(length=64), nullable=False, unique=True),
        sa.Column("sender", S(length=40), nullable=False),
        sa.Column("body", S(length=1600), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("outcome", S(length=32), nullable=False, server_default=""),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("workorder.id"), nullable=True),
    )
    op.create_table(
        "grid_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("workorder.id"), nullable=False, unique=True),
        sa.Column("order_number", S(length=32), nullable=False, unique=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grid.id"), nullable=True),
        sa.Column("grid", S(length=64), nullable=False, server_default=""),
        sa.Column("community", S(length=64), nullable=False, server_default=""),
        sa.Column("category", S(length=64), nullable=False, server_default=""),
        sa.Column("location", S(length=255), nullable=False, server_default=""),
        sa.Column("status", S(length=16), nullable=False, server_default=""),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "approval_record",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("workorder.id"), nullable=False, unique=True),
        sa.Column("order_number", S(length=32), nullable=False, unique=True),
        sa.Column("matter", S(length=64), nullable=False, server_default=""),
        sa.Column("applicant", S(length=64), nullable=False, server_default=""),
        sa.Column("status", S(length=16), nullable=False, server_default=""),
        sa.Column("outcome", S(length=1000), nullable=False, server_default=""),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", S(length=128), nullable=False, unique=True),
        sa.Column("kind", S(length=16), nullable=False),
        sa.Column("order_number", S(length=32), nullable=False, index=True),
        sa.Column("url", S(length=500), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("status", S(length=16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False, index=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", S(length=500), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "open311_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token", S(length=64), nullable=False, unique=True),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("workorder.id"), nullable=False, index=True),
        sa.Column("client", S(length=64), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "mail_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", S(length=128), nullable=False, unique=True),
        sa.Column("to", sa.JSON(), nullable=True),
        sa.Column("subject", S(length=255), nullable=False),
        sa.Column("text", S(), nullable=False),
        sa.Column("html", S(), nullable=True),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("workorder.id"), nullable=True, index=True),
        sa.Column("status", S(length=16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False, index=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", S(length=500), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "outlet_area",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("outlet_id", sa.Integer(), sa.ForeignKey("outlet.id"), nullable=False, index=True),
        sa.Column("area_id", sa.Integer(), sa.ForeignKey("service_area.id"), nullable=False, index=True),
    )
    with op.batch_alter_table("outlet") as batch:
        batch.add_column(sa.Column("phones", S(length=255), nullable=False, server_default=""))
        batch.add_column(sa.Column("emails", S(length=255), nullable=False, server_default=""))
        batch.add_column(sa.Column("working_hours", S(length=64), nullable=False, server_default=""))
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("outlet") as batch:
        for name in ("active", "working_hours", "emails", "phones"):
            batch.drop_column(name)
    for table in (
        "outlet_area",
        "mail_message",
        "open311_token",
        "webhook_delivery",
        "approval_record",
        "grid_event",
        "sms_inbound",
        "sms_message",
    ):
        op.drop_table(table)
