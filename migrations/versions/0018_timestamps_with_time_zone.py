"""PostgreSQL: the times the models keep as aware UTC datetimes are ``timestamp with time zone``

Migrations 0006 and later made these columns ``timestamp without time zone`` while the models
(``UTCDateTime``) write aware datetimes. On a server whose sessions run in China time the
database turned each into the local wall clock, read back 8 hours late (an SMS due now waited 8
hours). The conversion reads each stored value in the session's time zone, the one it was written
in. SQLite keeps the same text either way: nothing to do there.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

COLUMNS = {
    "approval_record": ("updated_at",),
    "callback": ("first_dialled_at", "last_missed_at"),
    "diagnostic_run": ("started_at",),
    "grid_event": ("updated_at",),
    "kb_article": ("created_at", "published_at", "updated_at"),
    "kb_article_version": ("at",),
    "kb_feedback": ("at",),
    "kb_search_miss": ("at",),
    "kb_use": ("at",),
    "mail_message": ("claimed_at", "created_at", "next_attempt_at", "sent_at"),
    "message_template": ("updated_at",),
    "open311_token": ("created_at",),
    "operational_setting": ("updated_at",),
    "outlet_link": ("created_at", "expires_at", "revoked_at"),
    "sms_inbound": ("received_at",),
    "sms_message": ("claimed_at", "created_at", "delivered_at", "next_attempt_at", "sent_at"),
    "sms_optout": ("at",),
    "webhook_delivery": ("claimed_at", "created_at", "delivered_at", "next_attempt_at"),
}


def _alter(kind: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        changes = ", ".join(f'ALTER COLUMN "{c}" TYPE {kind}' for c in columns)
        op.execute(f'ALTER TABLE "{table}" {changes}')


def upgrade() -> None:
    _alter("TIMESTAMP WITH TIME ZONE")


def downgrade() -> None:
    _alter("TIMESTAMP WITHOUT TIME ZONE")
