"""Reminder tools: the model turns the user's words into structured times, the tool validates.

Each answer echoes the resolved local time so the model can confirm it exactly ("15:00 tomorrow,
Friday 27 Nov"); invalid or past times come back as errors the model relays or asks about.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, Field

from automation.scheduler.reminders import ReminderError, ReminderService, local_time
from automation.tools.base import RiskLevel, Tool, ToolContext, ToolError
from memory.proactive_models import ReminderKind
from memory.reminders import ReminderRecord


def _service(ctx: ToolContext) -> ReminderService:
    if ctx.reminders is None:
        raise ToolError("reminders are unavailable: the scheduler is turned off")
    return ctx.reminders


def describe(record: ReminderRecord) -> str:
    """One line per reminder, with its id and next time in the user's zone."""
    if record.next_run_at is not None:
        when = local_time(record.next_run_at, record.timezone)
    else:
        when = "paused" if record.status == "paused" else record.status
    rule = f" [cron {record.cron}]" if record.cron else f" [{record.rrule}]" if record.rrule else ""
    task = " (task)" if record.kind == ReminderKind.AGENT else ""
    return f"#{record.id} {when}{rule}{task}: {record.text}"


class CreateArgs(BaseModel):
    """Arguments of `reminder_create`."""

    text: str = Field(
        min_length=1,
        max_length=1000,
        description="What to remind about (or, with task=true, what to do), in the user's words",
    )
    at: str | None = Field(
        default=None,
        description="One-off local time, ISO 8601 without offset, e.g. 2026-11-27T15:00",
    )
    cron: str | None = Field(
        default=None,
        description="Recurring: 5-field cron 'min hour day month weekday' (0=Sunday), e.g. "
        "'0 9 * * 1-5' for weekdays 09:00",
    )
    rrule: str | None = Field(
        default=None, description="Recurring alternative to cron: RFC 5545 RRULE"
    )
    timezone: str | None = Field(default=None, description="IANA zone; default: the user's zone")
    task: bool = Field(
        default=False,
        description="true: at that time, run the text as a request to you (e.g. summarise "
        "feedback); false: just send it as a reminder",
    )


class CreateReminder(Tool[CreateArgs]):
    """Schedules a reminder or recurring task."""

    name = "reminder_create"
    description = (
        "Set a reminder or recurring task for the user. Resolve relative times yourself "
        '(tomorrow 3pm → at=…T15:00). If the time is ambiguous ("later", "3 o\'clock" with '
        "no am/pm when both are plausible), ask the user instead of guessing. Confirm the "
        "exact time this tool returns."
    )
    args_model = CreateArgs
    risk = RiskLevel.WRITE

    async def run(self, args: CreateArgs, ctx: ToolContext) -> str:
        service = _service(ctx)
        key_source = f"{args.text}|{args.at}|{args.cron}|{args.rrule}|{args.task}"
        dedupe = (
            f"msg:{ctx.source_message_id}:{hashlib.sha256(key_source.encode()).hexdigest()[:16]}"
            if ctx.source_message_id is not None
            else None
        )
        try:
            record, _ = await service.create(
                user_id=ctx.user_id,
                text=args.text,
                timezone=args.timezone or ctx.timezone,
                at=args.at,
                cron=args.cron,
                rrule=args.rrule,
                kind=ReminderKind.AGENT if args.task else ReminderKind.MESSAGE,
                dedupe_key=dedupe,
                channel=ctx.channel,
                chat_id=ctx.chat_id,
            )
        except ReminderError as exc:
            raise ToolError(f"not scheduled: {exc}") from None
        return f"Scheduled {describe(record)} (zone {record.timezone})."


class ListArgs(BaseModel):
    """Arguments of `reminder_list`."""

    include_paused: bool = Field(default=True, description="Also list paused reminders")


class ListReminders(Tool[ListArgs]):
    """Lists the user's reminders."""

    name = "reminder_list"
    description = "List the user's upcoming reminders and recurring tasks with their ids."
    args_model = ListArgs
    risk = RiskLevel.READ
    reads = frozenset({"reminders"})

    async def run(self, args: ListArgs, ctx: ToolContext) -> str:
        service = _service(ctx)
        statuses = ("active", "paused") if args.include_paused else ("active",)
        records = await service.store.listing(user_id=ctx.user_id, statuses=statuses, limit=50)
        if not records:
            return "No reminders."
        return "\n".join(describe(r) for r in records)


class UpdateArgs(BaseModel):
    """Arguments of `reminder_update`."""

    id: int = Field(description="Reminder id from reminder_list")
    at: str | None = Field(default=None, description="New one-off local time, ISO 8601")
    cron: str | None = Field(default=None, description="New 5-field cron recurrence")
    rrule: str | None = Field(default=None, description="New RRULE recurrence")
    text: str | None = Field(default=None, description="New text")


class UpdateReminder(Tool[UpdateArgs]):
    """Moves or edits a reminder."""

    name = "reminder_update"
    description = "Move a reminder to a new time or recurrence, or change its text."
    args_model = UpdateArgs
    risk = RiskLevel.WRITE

    async def run(self, args: UpdateArgs, ctx: ToolContext) -> str:
        try:
            record = await _service(ctx).reschedule(
                args.id,
                user_id=ctx.user_id,
                at=args.at,
                cron=args.cron,
                rrule=args.rrule,
                text=args.text,
            )
        except ReminderError as exc:
            raise ToolError(f"not changed: {exc}") from None
        return f"Updated {describe(record)}."


class CancelArgs(BaseModel):
    """Arguments of `reminder_cancel`."""

    id: int = Field(description="Reminder id from reminder_list")


class CancelReminder(Tool[CancelArgs]):
    """Cancels a reminder."""

    name = "reminder_cancel"
    description = "Cancel one of the user's reminders by id (use reminder_list to find it)."
    args_model = CancelArgs
    risk = RiskLevel.WRITE

    async def run(self, args: CancelArgs, ctx: ToolContext) -> str:
        try:
            record = await _service(ctx).cancel(args.id, user_id=ctx.user_id)
        except ReminderError as exc:
            raise ToolError(f"not cancelled: {exc}") from None
        return f"Cancelled #{record.id}: {record.text}"
