"""Audit trail, issued cards, feedback and alert-fatigue state.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hook_call",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("service_id", sa.String(200), nullable=False),
        sa.Column("hook", sa.String(200)),
        sa.Column("hook_instance", sa.String(200)),
        sa.Column("client_issuer", sa.String(500)),
        sa.Column("client_tenant", sa.String(200)),
        sa.Column("patient_key", sa.String(64)),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("data_sources", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.JSON(), nullable=False),
        sa.Column("total_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_hook_call_received_at", "hook_call", ["received_at"])
    op.create_index("ix_hook_call_patient_key", "hook_call", ["patient_key"])
    op.create_table(
        "card",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column("call_id", ID, sa.ForeignKey("hook_call.id"), nullable=False),
        sa.Column("issued_at", TIME, nullable=False),
        sa.Column("service_id", sa.String(200), nullable=False),
        sa.Column("finding", sa.String(100)),
        sa.Column("indicator", sa.String(20), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("patient_key", sa.String(64)),
        sa.Column("suggestion_uuids", sa.JSON(), nullable=False),
        sa.Column("shown", sa.Boolean(), nullable=False),
        sa.Column("suppressed", sa.String(20)),
        sa.Column("shown_before", TIME),
    )
    op.create_index("ix_card_call_id", "card", ["call_id"])
    op.create_index("ix_card_issued_at", "card", ["issued_at"])
    op.create_table(
        "feedback",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("service_id", sa.String(200), nullable=False),
        sa.Column("card_uuid", sa.String(200), nullable=False),
        sa.Column("known_card", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("outcome_at", TIME, nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("override_system", sa.String(500)),
        sa.Column("override_code", sa.String(200)),
        sa.Column("override_display", sa.String(500)),
        sa.Column("user_comment", sa.Text()),
        sa.Column("client_issuer", sa.String(500)),
        sa.Column("client_tenant", sa.String(200)),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])
    op.create_table(
        "alert_state",
        sa.Column("service_id", sa.String(200), primary_key=True),
        sa.Column("finding", sa.String(100), primary_key=True),
        sa.Column("patient_key", sa.String(64), primary_key=True),
        sa.Column("trigger_hash", sa.String(64), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("last_shown_at", TIME, nullable=False),
        sa.Column("snoozed_until", TIME),
        sa.Column("version", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in ("alert_state", "feedback", "card", "hook_call"):
        op.drop_table(table)
