"""`dadang doctor`: checks config, database, model endpoint and Telegram, and says how to fix."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import typer

from agent.errors import ConfigError
from agent.llm.probe import Status, probe_endpoint
from agent.settings import Settings, load_settings
from memory.errors import StorageError
from memory.migrate import current_revision, head_revision, upgrade

_MARKS: dict[Status, str] = {"ok": "✓", "warn": "!", "fail": "✗"}


@dataclass
class Check:
    """One line of the report; `warn` lines are advice and do not fail the command."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def doctor_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the checks as JSON (for scripts and probes)")
    ] = False,
) -> None:
    """Check config, database, the model endpoint (model, context, tool calling, latency,
    reasoning), Telegram and calendars; exit 1 with what to fix."""
    checks: list[Check] = []
    try:
        settings = load_settings()
    except ConfigError as exc:
        _report([Check("config", "fail", str(exc))], as_json=as_json)
        raise typer.Exit(1) from exc
    where = settings.config_path if settings.config_path.exists() else "defaults (no dadang.toml)"
    checks.append(Check("config", "ok", f"{where}; home {settings.home}"))
    checks.append(_database(settings))
    checks.extend(asyncio.run(_model(settings)))
    checks.append(asyncio.run(_telegram(settings)))
    checks.append(asyncio.run(_calendar(settings)))
    _report(checks, as_json=as_json)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


def _report(checks: list[Check], *, as_json: bool) -> None:
    if as_json:
        ok = all(c.status != "fail" for c in checks)
        typer.echo(json.dumps({"ok": ok, "checks": [asdict(c) for c in checks]}, indent=2))
        return
    for check in checks:
        fix = f"; fix: {check.fix}" if check.fix else ""
        typer.echo(f"{_MARKS[check.status]} {check.name}: {check.detail}{fix}")


def _database(settings: Settings) -> Check:
    url = settings.effective_database_url
    try:
        upgrade(url)
        rev = current_revision(url)
    except StorageError as exc:
        return Check("database", "fail", f"{exc}")
    if rev != head_revision():
        return Check("database", "fail", f"schema at {rev}, expected {head_revision()}")
    return Check("database", "ok", f"schema at {rev}")


async def _model(settings: Settings) -> list[Check]:
    findings = await probe_endpoint(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        request_timeout=min(settings.llm_timeout, 60.0),
        connect_timeout=settings.llm_connect_timeout,
        needed_context=settings.prompt_budget_tokens
        + settings.tools_prompt_budget
        + settings.llm_max_tokens,
        stream_tools=settings.llm_stream,
    )
    return [Check(f.check, f.status, f.detail, f.fix, dict(f.data)) for f in findings]


async def _telegram(settings: Settings) -> Check:
    if settings.telegram_token is None:
        return Check("telegram", "ok", "off (set DADANG_TELEGRAM_TOKEN to enable)")
    from connectors.errors import ConnectorConfigError
    from connectors.telegram.probe import bot_username

    try:
        username = await bot_username(
            token=settings.telegram_token.get_secret_value(), api_base=settings.telegram_api_base
        )
    except ConnectorConfigError as exc:
        return Check("telegram", "fail", str(exc))
    allowed = settings.telegram_allowed_users
    note = f"allowed users {allowed}" if allowed else "no allowed users: everyone must pair"
    return Check("telegram", "ok", f"@{username}; {note}")


async def _calendar(settings: Settings) -> Check:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from agent.proactive.service import build_calendar

    calendar = build_calendar(settings)
    if calendar is None:
        return Check("calendar", "ok", "none (set DADANG_CALENDAR_URLS to enable)")
    try:
        now = datetime.now(UTC)
        view = await calendar.events_between(
            now, now + timedelta(days=7), ZoneInfo(settings.timezone)
        )
    finally:
        await calendar.aclose()
    if view.errors:
        return Check("calendar", "fail", "; ".join(view.errors))
    return Check(
        "calendar",
        "ok",
        f"{len(settings.calendar_urls)} calendar(s), {len(view.events)} events in the next 7 days",
    )
