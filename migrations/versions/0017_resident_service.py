"""calls and orders for the resident: seconds from answer to the first seat ringing, the
order's query code and the resident's comment, SMS opt-outs, missed calls to call back and
seats' tasks when the automatic calls found no one

Revision ID: 0017
Revises: 0016
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callrecord") as batch:
        batch.add_column(sa.Column("first_ring_s", sa.Float(), nullable=True))
    with op.batch_alter_table("workorder") as batch:
        batch.add_column(
            sa.Column("query_code", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column(
                "resident_comment", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False, server_default=""
            )
        )
    with op.batch_alter_table("callback") as batch:
        batch.add_column(
            sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="requested")
        )
        batch.add_column(sa.Column("did", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default=""))
        batch.add_column(sa.Column("missed_count", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("last_missed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("first_dialled_at", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("call_linkedid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="")
        )
    op.create_table(
        "sms_optout",
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
    )


def downgrade() -> None:
    op.drop_table("sms_optout")
    with op.batch_alter_table("callback") as batch:
        for column in ("reference", "call_linkedid", "first_dialled_at", "last_missed_at", "missed_count", "did", "kind"):
            batch.drop_column(column)
    with op.batch_alter_table("workorder") as batch:
        batch.drop_column("resident_comment")
        batch.drop_column("query_code")
    with op.batch_alter_table("callrecord") as batch:
        batch.drop_column("first_ring_s")
