"""proactivity: reminders, job runs, proactive log and state, scheduler jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import memory.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = memory.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", UTC, nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("buttons", sa.Text(), nullable=True))

    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", UTC, nullable=True),
        sa.Column("cron", sa.String(length=100), nullable=True),
        sa.Column("rrule", sa.String(length=300), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_run_at", UTC, nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=96), nullable=True),
        sa.Column("memory_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("chat_id", sa.String(length=128), nullable=True),
        sa.Column("fired_count", sa.Integer(), nullable=False),
        sa.Column("last_fired_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["memory_id"], ["memories.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "dedupe_key", name="uq_reminder_dedupe"),
    )
    op.create_index(
        "ix_reminders_user_status", "reminders", ["user_id", "status", "next_run_at"]
    )
    op.create_table(
        "job_runs",
        sa.Column("job_id", sa.String(length=96), nullable=False),
        sa.Column("run_time", UTC, nullable=False),
        sa.Column("fired_at", UTC, nullable=False),
        sa.Column("late_seconds", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "run_time"),
    )
    op.create_table(
        "proactive_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("ref", sa.String(length=96), nullable=True),
        sa.Column("model_calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_proactive_log_user", "proactive_log", ["user_id", "at"])
    op.create_table(
        "proactive_state",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("paused_until", UTC, nullable=True),
        sa.Column("last_heartbeat_at", UTC, nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("marker", sa.String(length=64), nullable=True),
        sa.Column("recheck_at", UTC, nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    # APScheduler's own table, created here so the schema has one owner (APScheduler's
    # create-if-missing then finds it); same columns as SQLAlchemyJobStore declares.
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_apscheduler_jobs_next_run_time", "apscheduler_jobs", ["next_run_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_apscheduler_jobs_next_run_time", table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")
    op.drop_table("proactive_state")
    op.drop_index("ix_proactive_log_user", table_name="proactive_log")
    op.drop_table("proactive_log")
    op.drop_table("job_runs")
    op.drop_index("ix_reminders_user_status", table_name="reminders")
    op.drop_table("reminders")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("buttons")
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.drop_column("due_at")
