"""`pause_nudges` / `resume_nudges`: "don't disturb me today" in words, like /pause and /resume."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from automation.tools.base import RiskLevel, Tool, ToolContext
from memory.proactive import ProactiveStore


class PauseArgs(BaseModel):
    """Arguments of `pause_nudges`."""

    hours: float | None = Field(
        default=None,
        gt=0,
        le=24 * 14,
        description="How long; omit for 'today' (until local midnight)",
    )


class PauseNudges(Tool[PauseArgs]):
    """Stops unsolicited messages for a while."""

    name = "pause_nudges"
    description = (
        "Stop unsolicited messages (check-ins, follow-ups, briefings) when the user asks not to "
        "be disturbed. Reminders the user set still arrive."
    )
    args_model = PauseArgs
    risk = RiskLevel.WRITE

    async def run(self, args: PauseArgs, ctx: ToolContext) -> str:
        zone = ZoneInfo(ctx.timezone)
        if args.hours is None:
            local = ctx.now.astimezone(zone)
            until = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
        else:
            until = ctx.now + timedelta(hours=args.hours)
        await ProactiveStore(ctx.db).set_state(ctx.user_id, paused_until=until)
        return f"Paused until {until.astimezone(zone):%Y-%m-%d %H:%M} ({ctx.timezone})."


class ResumeArgs(BaseModel):
    """Arguments of `resume_nudges` (none)."""


class ResumeNudges(Tool[ResumeArgs]):
    """Lifts a pause."""

    name = "resume_nudges"
    description = "Allow unsolicited messages again after a pause."
    args_model = ResumeArgs
    risk = RiskLevel.WRITE

    async def run(self, args: ResumeArgs, ctx: ToolContext) -> str:
        await ProactiveStore(ctx.db).set_state(ctx.user_id, paused_until=None)
        return "Unsolicited messages are back on."
