"""administrators' configuration: national category codes, rule grids and validity dates, the
configuration stamps, the holiday calendar

Revision ID: 0016
Revises: 0015
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("category", schema=None) as batch_op:
        batch_op.add_column(sa.Column("national_code", S(length=6), nullable=False, server_default=""))
    with op.batch_alter_table("routing_rule", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grid_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("valid_until", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("note", S(length=255), nullable=False, server_default=""))
        batch_op.create_foreign_key("fk_routing_rule_grid_id", "grid", ["grid_id"], ["id"])
    stamp = op.create_table(
        "config_stamp",
        sa.Column("name", S(length=32), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.bulk_insert(
        stamp,
        [{"name": name, "version": 0} for name in ("routing", "calendar", "deadlines", "templates")],
    )
    op.create_table(
        "holiday",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("workday", sa.Boolean(), nullable=False),
        sa.Column("name", S(length=32), nullable=False),
    )


    op.create_table(
        "deadline_policy",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("order_type", S(length=8), nullable=False),
        sa.Column("urgency", S(length=8), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("unit", S(length=8), nullable=False),
        sa.Column("accept_minutes", sa.Integer(), nullable=False),
        sa.Column("remind_lead_hours", sa.Integer(), nullable=False),
        sa.Column("escalate_to", S(length=255), nullable=False),
        sa.UniqueConstraint("order_type", "urgency"),
    )


    with op.batch_alter_table("sms_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_code", S(length=32), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("template_params", sa.JSON(), nullable=True))
    op.create_table(
        "message_template",
        sa.Column("name", S(length=48), primary_key=True),
        sa.Column("body", S(length=1000), nullable=False),
        sa.Column("provider_code", S(length=32), nullable=False),
        sa.Column("param_map", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", S(length=64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("message_template")
    with op.batch_alter_table("sms_message", schema=None) as batch_op:
        batch_op.drop_column("template_params")
        batch_op.drop_column("template_code")
    op.drop_table("deadline_policy")
    op.drop_table("holiday")
    op.drop_table("config_stamp")
    with op.batch_alter_table("routing_rule", schema=None) as batch_op:
        batch_op.drop_constraint("fk_routing_rule_grid_id", type_="foreignkey")
        batch_op.drop_column("note")
        batch_op.drop_column("valid_until")
        batch_op.drop_column("valid_from")
        batch_op.drop_column("grid_id")
    with op.batch_alter_table("category", schema=None) as batch_op:
        batch_op.drop_column("national_code")
