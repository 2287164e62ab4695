"""order statistics: the acceptance deadline and the count of returns on each order

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workorder') as batch:
        batch.add_column(sa.Column('accept_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('return_count', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('workorder') as batch:
        batch.drop_column('return_count')
        batch.drop_column('accept_due_at')
