"""calls: seconds from the hotline answering to the first seat's phone ringing

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callrecord") as batch:
        batch.add_column(sa.Column("first_ring_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callrecord") as batch:
        batch.drop_column("first_ring_s")
