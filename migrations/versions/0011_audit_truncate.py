"""audit log: TRUNCATE refused too (PostgreSQL), not only UPDATE and DELETE

Revision ID: 0011
Revises: 0010
"""

from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite has no TRUNCATE (DELETE without WHERE is caught by the DELETE trigger).
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_entry")
