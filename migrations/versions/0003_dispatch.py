"""dispatch: work orders' lifecycle, categories, history, calls, attachments, routing, service
areas; residents' household, elderly profile and service archive

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('category',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('approval_matter', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['category.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('category', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_category_code'), ['code'], unique=True)
        batch_op.create_index(batch_op.f('ix_category_parent_id'), ['parent_id'], unique=False)

    op.create_table('service_area',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('service_area', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_area_name'), ['name'], unique=True)

    op.create_table('service_area_community',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['service_area.id'], ),
    sa.ForeignKeyConstraint(['community_id'], ['community.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('service_area_community', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_area_community_area_id'), ['area_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_area_community_community_id'), ['community_id'], unique=False)

    op.create_table('routing_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('community_id', sa.Integer(), nullable=True),
    sa.Column('area_id', sa.Integer(), nullable=True),
    sa.Column('outlet_id', sa.Integer(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['service_area.id'], ),
    sa.ForeignKeyConstraint(['category_id'], ['category.id'], ),
    sa.ForeignKeyConstraint(['community_id'], ['community.id'], ),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlet.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('routing_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_routing_rule_category_id'), ['category_id'], unique=False)

    op.create_table('elderly_profile',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('health_notes', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('emergency_phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('caregiver', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('caregiver_phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.ForeignKeyConstraint(['resident_id'], ['resident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('elderly_profile', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_elderly_profile_resident_id'), ['resident_id'], unique=True)

    op.create_table('household_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('relation', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('birth_year', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['resident_id'], ['resident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('household_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_member_resident_id'), ['resident_id'], unique=False)

    op.create_table('order_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('stored_as', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('uploaded_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('uploaded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['workorder.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('order_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_attachment_order_id'), ['order_id'], unique=False)

    op.create_table('order_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('linkedid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('recording', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('linked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['workorder.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('order_call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_call_linkedid'), ['linkedid'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_call_order_id'), ['order_id'], unique=False)

    op.create_table('order_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['workorder.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('order_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_history_order_id'), ['order_id'], unique=False)

    op.create_table('service_archive',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('service', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('outlet_id', sa.Integer(), nullable=True),
    sa.Column('outlet_name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('delivered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['workorder.id'], ),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlet.id'], ),
    sa.ForeignKeyConstraint(['resident_id'], ['resident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('service_archive', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_archive_order_id'), ['order_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_service_archive_resident_id'), ['resident_id'], unique=False)

    with op.batch_alter_table('workorder', schema=None) as batch_op:
        batch_op.add_column(sa.Column('short_code', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('open_code', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
        batch_op.add_column(sa.Column('category_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('urgency', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default='normal'))
        batch_op.add_column(sa.Column('caller_phone', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('caller_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('community_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('grid_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('outlet_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('suggested_outlet_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('dispatched_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('accepted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('deadline_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('remind_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('reminded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('supervised_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('extension_requested_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('extension_reason', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('resolution', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('return_reason', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('satisfaction', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('reviewed', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('reopen_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('repeat_of_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False, server_default=sa.func.current_timestamp()))
        batch_op.create_index(batch_op.f('ix_workorder_address'), ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_workorder_category_id'), ['category_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_workorder_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_workorder_deadline_at'), ['deadline_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_workorder_open_code'), ['open_code'], unique=True)
        batch_op.create_index(batch_op.f('ix_workorder_outlet_id'), ['outlet_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_workorder_status'), ['status'], unique=False)
        batch_op.create_foreign_key('fk_workorder_repeat_of_id', 'workorder', ['repeat_of_id'], ['id'])
        batch_op.create_foreign_key('fk_workorder_category_id', 'category', ['category_id'], ['id'])
        batch_op.create_foreign_key('fk_workorder_outlet_id', 'outlet', ['outlet_id'], ['id'])
        batch_op.create_foreign_key('fk_workorder_suggested_outlet_id', 'outlet', ['suggested_outlet_id'], ['id'])
        batch_op.create_foreign_key('fk_workorder_community_id', 'community', ['community_id'], ['id'])
        batch_op.create_foreign_key('fk_workorder_grid_id', 'grid', ['grid_id'], ['id'])
        batch_op.create_foreign_key('fk_workorder_merged_into_id', 'workorder', ['merged_into_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('workorder', schema=None) as batch_op:
        batch_op.drop_constraint('fk_workorder_repeat_of_id', type_='foreignkey')
        batch_op.drop_constraint('fk_workorder_category_id', type_='foreignkey')
        batch_op.drop_constraint('fk_workorder_outlet_id', type_='foreignkey')
        batch_op.drop_constraint('fk_workorder_suggested_outlet_id', type_='foreignkey')
        batch_op.drop_constraint('fk_workorder_community_id', type_='foreignkey')
        batch_op.drop_constraint('fk_workorder_grid_id', type_='foreignkey')
        batch_op.drop_constraint('fk_workorder_merged_into_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_workorder_category_id'))
        batch_op.drop_index(batch_op.f('ix_workorder_community_id'))
        batch_op.drop_index(batch_op.f('ix_workorder_deadline_at'))
        batch_op.drop_index(batch_op.f('ix_workorder_open_code'))
        batch_op.drop_index(batch_op.f('ix_workorder_outlet_id'))
        batch_op.drop_index(batch_op.f('ix_workorder_status'))
        batch_op.drop_index(batch_op.f('ix_workorder_address'))
        batch_op.drop_column('updated_at')
        batch_op.drop_column('merged_into_id')
        batch_op.drop_column('repeat_of_id')
        batch_op.drop_column('reopen_count')
        batch_op.drop_column('reviewed')
        batch_op.drop_column('satisfaction')
        batch_op.drop_column('return_reason')
        batch_op.drop_column('resolution')
        batch_op.drop_column('extension_reason')
        batch_op.drop_column('extension_requested_until')
        batch_op.drop_column('supervised_at')
        batch_op.drop_column('reminded_at')
        batch_op.drop_column('remind_at')
        batch_op.drop_column('deadline_at')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('accepted_at')
        batch_op.drop_column('dispatched_at')
        batch_op.drop_column('created_by')
        batch_op.drop_column('suggested_outlet_id')
        batch_op.drop_column('outlet_id')
        batch_op.drop_column('address')
        batch_op.drop_column('grid_id')
        batch_op.drop_column('community_id')
        batch_op.drop_column('caller_name')
        batch_op.drop_column('caller_phone')
        batch_op.drop_column('urgency')
        batch_op.drop_column('category_id')
        batch_op.drop_column('open_code')
        batch_op.drop_column('short_code')
    op.drop_table('service_archive')
    op.drop_table('order_history')
    op.drop_table('order_call')
    op.drop_table('order_attachment')
    op.drop_table('household_member')
    op.drop_table('elderly_profile')
    op.drop_table('routing_rule')
    op.drop_table('service_area_community')
    op.drop_table('service_area')
    op.drop_table('category')
