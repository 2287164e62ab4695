"""statistics: reconciled queue calls, roll-ups, seat time and the queue_log cursor

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stat_agg_hour',
    sa.Column('offered', sa.Integer(), nullable=False),
    sa.Column('answered', sa.Integer(), nullable=False),
    sa.Column('abandoned', sa.Integer(), nullable=False),
    sa.Column('short_abandoned', sa.Integer(), nullable=False),
    sa.Column('timeout', sa.Integer(), nullable=False),
    sa.Column('exit_key', sa.Integer(), nullable=False),
    sa.Column('exit_empty', sa.Integer(), nullable=False),
    sa.Column('lost', sa.Integer(), nullable=False),
    sa.Column('answered_in_sl', sa.Integer(), nullable=False),
    sa.Column('abandoned_in_sl', sa.Integer(), nullable=False),
    sa.Column('transfers_blind', sa.Integer(), nullable=False),
    sa.Column('transfers_attended', sa.Integer(), nullable=False),
    sa.Column('rna', sa.Integer(), nullable=False),
    sa.Column('callbacks', sa.Integer(), nullable=False),
    sa.Column('wait_answered_s', sa.Float(), nullable=False),
    sa.Column('talk_s', sa.Float(), nullable=False),
    sa.Column('wrap_s', sa.Float(), nullable=False),
    sa.Column('max_wait_s', sa.Float(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('queue', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('did', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'hour', 'queue', 'did', name='uq_stat_agg_hour')
    )
    op.create_index(op.f('ix_stat_agg_hour_day'), 'stat_agg_hour', ['day'], unique=False)
    op.create_table('stat_agg_seat',
    sa.Column('offered', sa.Integer(), nullable=False),
    sa.Column('answered', sa.Integer(), nullable=False),
    sa.Column('abandoned', sa.Integer(), nullable=False),
    sa.Column('short_abandoned', sa.Integer(), nullable=False),
    sa.Column('timeout', sa.Integer(), nullable=False),
    sa.Column('exit_key', sa.Integer(), nullable=False),
    sa.Column('exit_empty', sa.Integer(), nullable=False),
    sa.Column('lost', sa.Integer(), nullable=False),
    sa.Column('answered_in_sl', sa.Integer(), nullable=False),
    sa.Column('abandoned_in_sl', sa.Integer(), nullable=False),
    sa.Column('transfers_blind', sa.Integer(), nullable=False),
    sa.Column('transfers_attended', sa.Integer(), nullable=False),
    sa.Column('rna', sa.Integer(), nullable=False),
    sa.Column('callbacks', sa.Integer(), nullable=False),
    sa.Column('wait_answered_s', sa.Float(), nullable=False),
    sa.Column('talk_s', sa.Float(), nullable=False),
    sa.Column('wrap_s', sa.Float(), nullable=False),
    sa.Column('max_wait_s', sa.Float(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('queue', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('seat', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'queue', 'seat', name='uq_stat_agg_seat')
    )
    op.create_index(op.f('ix_stat_agg_seat_day'), 'stat_agg_seat', ['day'], unique=False)
    op.create_table('stat_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('callid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('linkedid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('queue', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('did', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('caller', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('seat', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('entered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('wait_s', sa.Float(), nullable=True),
    sa.Column('ring_s', sa.Float(), nullable=True),
    sa.Column('talk_s', sa.Float(), nullable=True),
    sa.Column('wrap_s', sa.Float(), nullable=True),
    sa.Column('rna', sa.Integer(), nullable=False),
    sa.Column('transfer', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('transfer_to', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('exit_key', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('called_back', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('callid', 'seq', name='uq_stat_call_callid_seq')
    )
    op.create_index(op.f('ix_stat_call_caller'), 'stat_call', ['caller'], unique=False)
    op.create_index(op.f('ix_stat_call_callid'), 'stat_call', ['callid'], unique=False)
    op.create_index(op.f('ix_stat_call_day'), 'stat_call', ['day'], unique=False)
    op.create_index(op.f('ix_stat_call_entered_at'), 'stat_call', ['entered_at'], unique=False)
    op.create_index(op.f('ix_stat_call_linkedid'), 'stat_call', ['linkedid'], unique=False)
    op.create_table('stat_cursor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('device', sa.BigInteger(), nullable=False),
    sa.Column('inode', sa.BigInteger(), nullable=False),
    sa.Column('head', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('lines', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('stat_order_day',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dim', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('accept_on_time', sa.Integer(), nullable=False),
    sa.Column('accept_due', sa.Integer(), nullable=False),
    sa.Column('resolve_on_time', sa.Integer(), nullable=False),
    sa.Column('resolve_due', sa.Integer(), nullable=False),
    sa.Column('resolved', sa.Integer(), nullable=False),
    sa.Column('returned', sa.Integer(), nullable=False),
    sa.Column('rehandled', sa.Integer(), nullable=False),
    sa.Column('followed_up', sa.Integer(), nullable=False),
    sa.Column('satisfied', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dim', 'day', 'key', name='uq_stat_order_day')
    )
    op.create_table('stat_seat_time',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('seat', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'seat', 'kind', 'reason', name='uq_stat_seat_time')
    )
    op.create_index(op.f('ix_stat_seat_time_day'), 'stat_seat_time', ['day'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_stat_seat_time_day'), table_name='stat_seat_time')
    op.drop_table('stat_seat_time')
    op.drop_table('stat_order_day')
    op.drop_table('stat_cursor')
    op.drop_index(op.f('ix_stat_call_linkedid'), table_name='stat_call')
    op.drop_index(op.f('ix_stat_call_entered_at'), table_name='stat_call')
    op.drop_index(op.f('ix_stat_call_day'), table_name='stat_call')
    op.drop_index(op.f('ix_stat_call_callid'), table_name='stat_call')
    op.drop_index(op.f('ix_stat_call_caller'), table_name='stat_call')
    op.drop_table('stat_call')
    op.drop_index(op.f('ix_stat_agg_seat_day'), table_name='stat_agg_seat')
    op.drop_table('stat_agg_seat')
    op.drop_index(op.f('ix_stat_agg_hour_day'), table_name='stat_agg_hour')
    op.drop_table('stat_agg_hour')
