"""accounts: SIP passwords kept only as their digest (pjsip password_digest), with its realm

Revision ID: 0012
Revises: 0011
"""

import hashlib

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# The realm the rendered pjsip.conf used before (Settings.sip_realm's default).
_REALM = 'callcenter'


def upgrade() -> None:
    with op.batch_alter_table('account') as batch:
        batch.add_column(sa.Column('sip_digest', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default=''))
        batch.add_column(sa.Column('sip_realm', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
    bind = op.get_bind()
    account = sa.table(
        'account',
        sa.column('id', sa.Integer()),
        sa.column('extension', sa.String()),
        sa.column('sip_password', sa.String()),
        sa.column('sip_digest', sa.String()),
        sa.column('sip_realm', sa.String()),
    )
    rows = bind.execute(sa.select(account.c.id, account.c.extension, account.c.sip_password)).all()
    for row_id, extension, password in rows:
        if not extension or not password:
            continue
        # Phones keep working: the digest of the password they already have.
        digest = hashlib.md5(f'seat{extension}:{_REALM}:{password}'.encode(), usedforsecurity=False).hexdigest()
        bind.execute(
            account.update().where(account.c.id == row_id).values(sip_digest=digest, sip_realm=_REALM)
        )
    with op.batch_alter_table('account') as batch:
        batch.drop_column('sip_password')


def downgrade() -> None:
    # The passwords cannot come back: every phone needs a new one after a downgrade.
    with op.batch_alter_table('account') as batch:
        batch.add_column(sa.Column('sip_password', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
        batch.drop_column('sip_realm')
        batch.drop_column('sip_digest')
