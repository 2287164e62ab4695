"""the knowledge base: articles, versions, roles, synonyms, the search index (FTS5 on SQLite, a
tsvector with GIN on PostgreSQL), uses, feedback and searches that found nothing; the order
statistics' count of orders answered directly

Revision ID: 0014
Revises: 0013
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "kb_article",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", S(length=200), nullable=False),
        sa.Column("questions", S(length=4000), nullable=False),
        sa.Column("spoken", S(length=500), nullable=False),
        sa.Column("answer", S(length=8000), nullable=False),
        sa.Column("keywords", S(length=500), nullable=False),
        sa.Column("category_id", sa.Integer(), sa.ForeignKey("category.id"), nullable=True, index=True),
        sa.Column("owner_office", S(length=64), nullable=False),
        sa.Column("owner", S(length=64), nullable=False, index=True),
        sa.Column("source_doc", S(length=200), nullable=False),
        sa.Column("source_number", S(length=64), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True, index=True),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("status", S(length=16), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("created_by", S(length=64), nullable=False),
        sa.Column("edited_by", S(length=64), nullable=False),
        sa.Column("reviewed_by", S(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
    )
    op.create_table(
        "kb_article_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("article_id", sa.Integer(), sa.ForeignKey("kb_article.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", S(length=16), nullable=False),
        sa.Column("action", S(length=16), nullable=False),
        sa.Column("actor", S(length=64), nullable=False),
        sa.Column("note", S(length=500), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "kb_member",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", S(length=64), nullable=False, index=True),
        sa.Column("role", S(length=16), nullable=False),
        sa.UniqueConstraint("username", "role"),
    )
    op.create_table(
        "kb_synonym",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("words", S(length=500), nullable=False),
    )
    op.create_table(
        "kb_doc",
        sa.Column("article_id", sa.Integer(), sa.ForeignKey("kb_article.id"), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("questions", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True, index=True),
    )
    op.create_table(
        "kb_term",
        sa.Column("term", S(length=64), primary_key=True),
        sa.Column("df", sa.Integer(), nullable=False),
    )
    op.create_table(
        "kb_use",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("article_id", sa.Integer(), sa.ForeignKey("kb_article.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("workorder.id"), nullable=True),
        sa.Column("seat", S(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False, index=True),
    )
    op.create_table(
        "kb_feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("article_id", sa.Integer(), sa.ForeignKey("kb_article.id"), nullable=True, index=True),
        sa.Column("kind", S(length=16), nullable=False),
        sa.Column("text", S(length=1000), nullable=False),
        sa.Column("query", S(length=200), nullable=False),
        sa.Column("owner", S(length=64), nullable=False, index=True),
        sa.Column("by", S(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "kb_search_miss",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("query", S(length=200), nullable=False, index=True),
        sa.Column("seat", S(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False, index=True),
    )
    # The full-text index over the segmented text (callcenter/knowledge/index.py writes both).
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE kb_fts USING fts5(title, questions, answer, extra, "
            "content='kb_doc', content_rowid='article_id', tokenize='unicode61', prefix='4 5 6')"
        )
    else:
        op.add_column("kb_doc", sa.Column("tsv", sa.dialects.postgresql.TSVECTOR(), nullable=True))
        op.execute("CREATE INDEX kb_doc_tsv ON kb_doc USING gin (tsv)")
    # The order statistics count the orders answered directly on the call (直接答复).
    with op.batch_alter_table("stat_order_day") as batch:
        batch.add_column(sa.Column("answered", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("stat_order_day") as batch:
        batch.drop_column("answered")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE kb_fts")
    for table in (
        "kb_search_miss",
        "kb_feedback",
        "kb_use",
        "kb_term",
        "kb_doc",
        "kb_synonym",
        "kb_member",
        "kb_article_version",
        "kb_article",
    ):
        op.drop_table(table)
