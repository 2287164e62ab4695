"""the login throttle's failures and the outlet links (one row per link: order, expiry, revocation)

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", S(length=200), nullable=False, index=True),
        sa.Column("at", sa.Float(), nullable=False, index=True),
    )
    op.create_table(
        "outlet_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("nonce", S(length=32), nullable=False, unique=True, index=True),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("workorder.id"), nullable=False, index=True),
        sa.Column("outlet_id", sa.Integer(), sa.ForeignKey("outlet.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("outlet_link")
    op.drop_table("login_failure")
