"""What happens when a reminder comes due.

Message reminders are sent with *Done / Snooze 10 min / Snooze 1 h / Tomorrow* buttons; agent
reminders become a stored inbound message (deduplicated on the job and scheduled time) that runs
through the normal graph. Follow-ups first check that the commitment is still open, then pass
the nudge gate; a blocked follow-up is moved to when the gate would allow it, not dropped.

Nothing goes to a person whose access the owner revoked (`dadang pair revoke`): their firing is
recorded as `revoked` and logged as skipped. A recurring reminder keeps its rhythm, so it is
delivered again from its next time once the person is re-admitted; a one-off becomes `missed`
(`dadang pair approve` lists what was held back), never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.proactive.gate import NudgeGate
from agent.runtime.replies import language_of, reply
from automation.scheduler.engine import Firing, job_id
from automation.scheduler.recurrence import zone
from automation.scheduler.reminders import KIND, ReminderService, local_time
from memory.outbox import OutboxEntry
from memory.proactive import ProactiveStore
from memory.proactive_models import (
    ProactiveDecision,
    ReminderKind,
    ReminderOrigin,
    ReminderStatus,
)
from memory.reminders import REVOKED, Delivery, FirePlan, ReminderRecord
from memory.signals import Reach, Signals
from memory.types import utcnow

log = logging.getLogger(__name__)

Deliver = Callable[[OutboxEntry], None]
RunTask = Callable[[ReminderRecord, str, str, str], Awaitable[None]]
"""(reminder, channel, chat id, dedupe id) → store the task as an inbound message and queue it."""


@dataclass(frozen=True, kw_only=True)
class FiringPolicy:
    """Settings the firer needs."""

    grace: timedelta
    push_channels: frozenset[str]


def buttons(language: str, reminder_id: int) -> list[list[tuple[str, str]]]:
    """The inline buttons under a reminder; callback data is `r:<id>:<action>` (≤ 64 bytes)."""
    return [
        [(reply("button_done", language), f"r:{reminder_id}:done")],
        [
            (reply("button_snooze10", language), f"r:{reminder_id}:s10"),
            (reply("button_snooze60", language), f"r:{reminder_id}:s60"),
            (reply("button_tomorrow", language), f"r:{reminder_id}:tom"),
        ],
    ]


class ReminderFirer:
    """Handles `reminder:<id>` firings."""

    def __init__(
        self,
        service: ReminderService,
        proactive: ProactiveStore,
        signals: Signals,
        gate: NudgeGate,
        policy: FiringPolicy,
        *,
        deliver: Deliver,
        run_task: RunTask,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._service = service
        self._proactive = proactive
        self._signals = signals
        self._gate = gate
        self._policy = policy
        self._deliver = deliver
        self._run_task = run_task
        self._clock = clock

    async def __call__(self, firing: Firing) -> None:
        await self.fire_many([firing])

    async def fire_many(self, firings: list[Firing]) -> None:
        """Fire a burst: plain message reminders in one transaction, the rest one by one."""
        store = self._service.store
        records = await store.get_many([f.ref for f in firings])
        reach = await self._signals.reach({r.user_id for r in records.values()})
        now = self._clock()
        plans: list[FirePlan] = []
        for firing in firings:
            record = records.get(firing.ref)
            if record is None or record.status != ReminderStatus.ACTIVE:
                await store.record_run(
                    job_id=firing.job_id, run_time=firing.run_time, outcome="skipped"
                )
                continue
            if self._revoked(record, reach[record.user_id]):
                await self._hold(record, firing, now)
                continue
            target = await self._target(record, reach[record.user_id])
            if (
                record.origin == ReminderOrigin.FOLLOWUP
                or record.kind == ReminderKind.AGENT
                or target is None
            ):
                await self._fire_one(record, firing, now, target)
                continue
            plans.append(self._plan(record, firing, now, target))
        for entry in await store.fire_many(plans, now=now):
            self._deliver(entry)

    def _revoked(self, record: ReminderRecord, reach: Reach) -> bool:
        """True when a revoke closed the chat this reminder would go to (to its user)."""
        if not reach.revoked:
            return False  # never revoked: reachable, or undeliverable as before
        if record.channel in self._policy.push_channels and record.chat_id:
            return not reach.allows(record.channel)
        return not any(reach.allows(c) for c in self._policy.push_channels)

    async def _hold(self, record: ReminderRecord, firing: Firing, now: datetime) -> None:
        """Record a firing for a revoked person without sending (or running) anything."""
        next_run, status, _, _ = self._next_and_status(record, firing, now)
        if next_run is None:
            status = ReminderStatus.MISSED  # a one-off: reported, not dropped
        fired, _ = await self._service.store.fire(
            record,
            job_id=firing.job_id,
            run_time=firing.run_time,
            now=now,
            outcome=REVOKED,
            status=status,
            next_run_at=next_run,
            delivery=None,
        )
        if not fired:
            return
        reason = (
            "access revoked (`dadang pair revoke`): not sent; fires again from its next time "
            "once they are re-admitted"
            if next_run is not None
            else "access revoked (`dadang pair revoke`): not sent, marked missed"
        )
        await self._proactive.log(
            user_id=record.user_id,
            source="followup" if record.origin == ReminderOrigin.FOLLOWUP else "reminder",
            decision=ProactiveDecision.SKIPPED,
            reason=reason,
            text=record.text,
            ref=f"reminder:{record.id}",
        )

    def _next_and_status(
        self, record: ReminderRecord, firing: Firing, now: datetime
    ) -> tuple[datetime | None, str, timedelta, bool]:
        late = now - firing.run_time
        missed = late > self._policy.grace
        # Coalesce: after downtime a recurring reminder fires once, then resumes its rhythm.
        next_run = self._service.schedule_of(record).next_after(now) if record.recurring else None
        if next_run is not None:
            status = ReminderStatus.ACTIVE
        elif missed:
            status = ReminderStatus.MISSED
        else:
            status = (
                ReminderStatus.DONE if record.kind == ReminderKind.AGENT else ReminderStatus.FIRED
            )
        return next_run, status, late, missed

    def _plan(
        self, record: ReminderRecord, firing: Firing, now: datetime, target: tuple[str, str]
    ) -> FirePlan:
        next_run, status, late, missed = self._next_and_status(record, firing, now)
        language = language_of(record.text)
        due = local_time(firing.run_time, record.timezone)
        if missed:
            text = reply("reminder_missed", language, due=due, text=record.text)
            outcome, keys = "missed", []
        elif late > timedelta(minutes=1):
            text = reply("reminder_late", language, due=due, text=record.text)
            outcome, keys = "late", buttons(language, record.id)
        else:
            text, outcome = reply("reminder", language, text=record.text), "sent"
            keys = buttons(language, record.id)
        channel, chat_id = target
        return FirePlan(
            record=record,
            job_id=firing.job_id,
            run_time=firing.run_time,
            outcome=outcome,
            status=status,
            next_run_at=next_run,
            delivery=Delivery(channel=channel, chat_id=chat_id, text=text, buttons=keys),
        )

    async def _fire_one(
        self,
        record: ReminderRecord,
        firing: Firing,
        now: datetime,
        target: tuple[str, str] | None,
    ) -> None:
        store = self._service.store
        next_run, status, late, missed = self._next_and_status(record, firing, now)
        if record.origin == ReminderOrigin.FOLLOWUP:
            await self._follow_up(record, firing, now, next_run, target)
            return
        if target is None:
            log.warning("reminder %s: user %s has no reachable chat", record.id, record.user_id)
            await store.fire(
                record,
                job_id=firing.job_id,
                run_time=firing.run_time,
                now=now,
                outcome="undeliverable",
                status=status,
                next_run_at=next_run,
                delivery=None,
            )
            return
        channel, chat_id = target
        if record.kind == ReminderKind.AGENT and not missed:
            dedupe = f"job:{firing.job_id}@{int(firing.run_time.timestamp())}"
            await self._run_task(record, channel, chat_id, dedupe)
            await store.fire(
                record,
                job_id=firing.job_id,
                run_time=firing.run_time,
                now=now,
                outcome="late" if late > timedelta(minutes=1) else "sent",
                status=status,
                next_run_at=next_run,
                delivery=None,
            )
            return
        plan = self._plan(record, firing, now, target)
        _, entry = await store.fire(
            record,
            job_id=plan.job_id,
            run_time=plan.run_time,
            now=now,
            outcome=plan.outcome,
            status=plan.status,
            next_run_at=plan.next_run_at,
            delivery=plan.delivery,
        )
        if entry is not None:
            self._deliver(entry)

    async def _follow_up(
        self,
        record: ReminderRecord,
        firing: Firing,
        now: datetime,
        next_run: datetime | None,
        target: tuple[str, str] | None,
    ) -> None:
        store = self._service.store
        ref = f"memory:{record.memory_id}" if record.memory_id else f"reminder:{record.id}"
        if record.memory_id is not None:
            content = await self._signals.memory_current(record.user_id, record.memory_id)
            if content is None:
                await store.fire(
                    record,
                    job_id=firing.job_id,
                    run_time=firing.run_time,
                    now=now,
                    outcome="skipped",
                    status=ReminderStatus.DONE,
                    next_run_at=None,
                    delivery=None,
                )
                await self._proactive.log(
                    user_id=record.user_id,
                    source="followup",
                    decision=ProactiveDecision.SKIPPED,
                    reason="resolved: the commitment was updated or closed",
                    ref=ref,
                )
                return
        language = language_of(record.text)
        text = reply("followup", language, text=record.text)
        tz = zone(record.timezone)
        verdict = await self._gate.check(record.user_id, text, now=now, tz=tz)
        if not verdict.allowed or target is None:
            reason = verdict.reason if target is not None else "no reachable chat"
            retry = verdict.retry_at if target is not None else None
            await self._proactive.log(
                user_id=record.user_id,
                source="followup",
                decision=ProactiveDecision.DEFERRED if retry else ProactiveDecision.BLOCKED,
                reason=reason,
                text=text,
                ref=ref,
            )
            await store.record_run(
                job_id=firing.job_id, run_time=firing.run_time, outcome="blocked"
            )
            if retry is not None:
                await self._service.reschedule(record.id, at=retry + timedelta(minutes=1))
            else:
                await self._service.cancel(record.id)
            return
        channel, chat_id = target
        _, entry = await store.fire(
            record,
            job_id=firing.job_id,
            run_time=firing.run_time,
            now=now,
            outcome="sent",
            status=ReminderStatus.ACTIVE if next_run else ReminderStatus.FIRED,
            next_run_at=next_run,
            delivery=Delivery(
                channel=channel, chat_id=chat_id, text=text, buttons=buttons(language, record.id)
            ),
        )
        if entry is not None:
            await self._proactive.log(
                user_id=record.user_id,
                source="followup",
                decision=ProactiveDecision.SENT,
                reason="commitment due",
                text=text,
                ref=ref,
                outbox_id=entry.id,
            )
            self._deliver(entry)

    async def _target(self, record: ReminderRecord, reach: Reach) -> tuple[str, str] | None:
        """The chat the reminder was asked from, else the user's last (`destination`); never a
        chat on a channel closed to the user (e.g. an identity `--as-owner` moved away)."""
        channel, chat_id = record.channel or "", record.chat_id or ""
        if channel in self._policy.push_channels and chat_id and reach.allows(channel):
            return channel, chat_id
        return await self._service.store.destination(
            record.user_id, channels=self._policy.push_channels
        )


def reminder_job(reminder_id: int) -> str:
    """The scheduler job id of a reminder."""
    return job_id(KIND, reminder_id)
