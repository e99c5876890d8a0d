"""`dadang doctor`: checks config, database, model endpoint and Telegram, and says how to fix."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import typer

from agent.errors import ConfigError
from agent.llm import LLMClient, ModelError
from agent.settings import Settings, load_settings
from memory.errors import StorageError
from memory.migrate import current_revision, head_revision, upgrade

_PING_TOOL = {
    "type": "function",
    "function": {
        "name": "ping",
        "description": "Answer a ping. Always call this tool when asked to ping.",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string"}},
            "required": ["word"],
        },
    },
}


@dataclass
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str


def doctor_command() -> None:
    """Check config, database, LLM endpoint (model listed, tool calling), Telegram, calendars."""
    checks: list[Check] = []
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"✗ config: {exc}")
        raise typer.Exit(1) from exc
    where = settings.config_path if settings.config_path.exists() else "defaults (no dadang.toml)"
    checks.append(Check("config", True, f"{where}; home {settings.home}"))
    checks.append(_database(settings))
    checks.extend(asyncio.run(_model(settings)))
    checks.append(asyncio.run(_telegram(settings)))
    checks.append(asyncio.run(_calendar(settings)))
    for check in checks:
        typer.echo(f"{'✓' if check.ok else '✗'} {check.name}: {check.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def _database(settings: Settings) -> Check:
    url = settings.effective_database_url
    try:
        upgrade(url)
        rev = current_revision(url)
    except StorageError as exc:
        return Check("database", False, f"{exc}")
    ok = rev == head_revision()
    detail = f"schema at {rev}" + ("" if ok else f", expected {head_revision()}")
    return Check("database", ok, detail)


async def _model(settings: Settings) -> list[Check]:
    llm = LLMClient(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        timeout=min(settings.llm_timeout, 60.0),
        connect_timeout=settings.llm_connect_timeout,
        max_retries=1,
    )
    try:
        try:
            listed = await llm.models()
            model = await llm.model()
        except ModelError as exc:
            return [
                Check(
                    "llm",
                    False,
                    f"{exc}. Start vLLM (see README) or set DADANG_LLM_BASE_URL",
                )
            ]
        if model not in listed:
            return [Check("llm", False, f"model {model!r} not in {listed}; fix DADANG_LLM_MODEL")]
        checks = [Check("llm", True, f"{settings.llm_base_url} serves {model}")]
        try:
            answer = await llm.chat(
                [{"role": "user", "content": "Call the ping tool with word 'pong'."}],
                tools=[_PING_TOOL],
                thinking=False,
                max_tokens=200,
                temperature=0.0,
            )
        except ModelError as exc:
            checks.append(Check("tool calling", False, str(exc)))
            return checks
        called = [c for c in answer.tool_calls if c.name == "ping" and c.arguments is not None]
        checks.append(
            Check(
                "tool calling",
                bool(called),
                "the model called a tool"
                if called
                else "no tool call came back; start vLLM with --enable-auto-tool-choice "
                "--tool-call-parser hermes",
            )
        )
        return checks
    finally:
        await llm.aclose()


async def _telegram(settings: Settings) -> Check:
    if settings.telegram_token is None:
        return Check("telegram", True, "off (set DADANG_TELEGRAM_TOKEN to enable)")
    from connectors.errors import ConnectorConfigError
    from connectors.telegram.probe import bot_username

    try:
        username = await bot_username(
            token=settings.telegram_token.get_secret_value(), api_base=settings.telegram_api_base
        )
    except ConnectorConfigError as exc:
        return Check("telegram", False, str(exc))
    allowed = settings.telegram_allowed_users
    note = f"allowed users {allowed}" if allowed else "no allowed users: everyone must pair"
    return Check("telegram", True, f"@{username}; {note}")


async def _calendar(settings: Settings) -> Check:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from agent.proactive.service import build_calendar

    calendar = build_calendar(settings)
    if calendar is None:
        return Check("calendar", True, "none (set DADANG_CALENDAR_URLS to enable)")
    try:
        now = datetime.now(UTC)
        view = await calendar.events_between(
            now, now + timedelta(days=7), ZoneInfo(settings.timezone)
        )
    finally:
        await calendar.aclose()
    if view.errors:
        return Check("calendar", False, "; ".join(view.errors))
    return Check(
        "calendar",
        True,
        f"{len(settings.calendar_urls)} calendar(s), {len(view.events)} events in the next 7 days",
    )
