"""accounts: the seat's phone (desk | browser)

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.add_column(
            sa.Column(
                "phone", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default="desk"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.drop_column("phone")
