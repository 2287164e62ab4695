"""statistics: callback in queue (requested / connected / failed) on calls and roll-ups

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_COUNTERS = ('callbacks_requested', 'callbacks_connected', 'callbacks_failed')


def upgrade() -> None:
    with op.batch_alter_table('stat_call') as batch:
        batch.add_column(sa.Column('callback', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default=''))
    for table in ('stat_agg_hour', 'stat_agg_seat'):
        with op.batch_alter_table(table) as batch:
            for name in _COUNTERS:
                batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    for table in ('stat_agg_hour', 'stat_agg_seat'):
        with op.batch_alter_table(table) as batch:
            for name in reversed(_COUNTERS):
                batch.drop_column(name)
    with op.batch_alter_table('stat_call') as batch:
        batch.drop_column('callback')
