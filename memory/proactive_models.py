"""Tables of the proactivity engine: reminders, their firings, and what the assistant said unasked.

`reminders` is the truth about what is owed to the user; APScheduler's `apscheduler_jobs` table
only decides *when* to look at a reminder again, and is rebuilt from `reminders` if the two
disagree (a crash between them, a job added while the scheduler was down).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from memory.models import Base
from memory.types import UTCDateTime, utcnow


class ReminderStatus(StrEnum):
    """Life of a reminder; only `active` ones have a job in the scheduler."""

    ACTIVE = "active"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"
    FIRED = "fired"
    """A one-off that went out and waits for *Done* (or a snooze)."""
    MISSED = "missed"
    """Its time passed while the service was down for longer than the grace window."""


class ReminderKind(StrEnum):
    """What firing does: send the text, or run it as a request through the agent."""

    MESSAGE = "message"
    AGENT = "agent"


class ReminderOrigin(StrEnum):
    """Who created it; follow-ups are unsolicited and pass the proactive gate, the others not."""

    USER = "user"
    CLI = "cli"
    SNOOZE = "snooze"
    FOLLOWUP = "followup"


class Reminder(Base):
    """A reminder or recurring task owned by one user."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("user_id", "dedupe_key", name="uq_reminder_dedupe"),
        Index("ix_reminders_user_status", "user_id", "status", "next_run_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default=ReminderKind.MESSAGE)
    text: Mapped[str] = mapped_column(Text)
    """What to say (message) or what to do (agent), in the user's words."""
    at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """One-shot time; None for recurring reminders."""
    cron: Mapped[str | None] = mapped_column(String(100), default=None)
    rrule: Mapped[str | None] = mapped_column(String(300), default=None)
    timezone: Mapped[str] = mapped_column(String(64))
    """IANA zone the recurrence is evaluated in, so 09:00 stays 09:00 across DST."""
    status: Mapped[str] = mapped_column(String(16), default=ReminderStatus.ACTIVE)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """Next firing, kept for listings; the scheduler job is what actually wakes up."""
    origin: Mapped[str] = mapped_column(String(16), default=ReminderOrigin.USER)
    dedupe_key: Mapped[str | None] = mapped_column(String(96), default=None)
    """Makes creation idempotent: a re-run turn, a re-delivered button press, one follow-up per
    commitment."""
    memory_id: Mapped[int | None] = mapped_column(
        ForeignKey("memories.id", ondelete="SET NULL"), default=None
    )
    """For follow-ups: the commitment; once it is superseded or deleted the follow-up is moot."""
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    chat_id: Mapped[str | None] = mapped_column(String(128), default=None)
    """Where it was asked for; delivery prefers it, else the user's last active chat."""
    fired_count: Mapped[int] = mapped_column(Integer, default=0)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JobRun(Base):
    """One firing of one job at one scheduled time: the key that makes firing exactly-once."""

    __tablename__ = "job_runs"

    job_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    run_time: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    late_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    outcome: Mapped[str] = mapped_column(String(16))
    """sent, late, missed, skipped (nothing to do), blocked (by the gate), failed."""
    outbox_id: Mapped[int | None] = mapped_column(Integer, default=None)


class ProactiveDecision(StrEnum):
    """What the proactive side decided; silent and blocked decisions are logged too."""

    SENT = "sent"
    SILENT = "silent"
    BLOCKED = "blocked"
    DEFERRED = "deferred"
    SKIPPED = "skipped"


class ProactiveLogEntry(Base):
    """Every proactive decision with its reason, for `dadang proactive log` and the gate."""

    __tablename__ = "proactive_log"
    __table_args__ = (Index("ix_proactive_log_user", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(16))
    """heartbeat, followup, briefing, question."""
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str | None] = mapped_column(Text, default=None)
    ref: Mapped[str | None] = mapped_column(String(96), default=None)
    """What it was about (`memory:12`, `message:40`, `event:uid`), so it is followed up once."""
    model_calls: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    outbox_id: Mapped[int | None] = mapped_column(Integer, default=None)


class ProactiveState(Base):
    """Per-user proactive settings and the heartbeat's memory of what it last looked at."""

    __tablename__ = "proactive_state"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """Set by /pause; unsolicited messages wait until then (explicit reminders do not)."""
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    """Hash of what the last heartbeat saw; unchanged inputs → no model call."""
    marker: Mapped[str | None] = mapped_column(String(64), default=None)
    """Hash of the user's activity (messages, memories, nudges) when the inputs were gathered."""
    recheck_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """When time alone changes the inputs (midnight, a question aging, a deadline nearing);
    until then an unchanged marker means an idle beat is one read."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
