"""`current_time`: the model has no clock, and reminders need the user's local time."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from automation.tools.base import RiskLevel, Tool, ToolContext


class CurrentTimeArgs(BaseModel):
    """Arguments of `current_time`."""

    timezone: str | None = Field(
        default=None, description="IANA time zone; omit to use the user's own"
    )


class CurrentTime(Tool[CurrentTimeArgs]):
    """Tells the current date and time in the user's time zone."""

    name = "current_time"
    description = "Get the current date, time and weekday in the user's time zone (or another)."
    args_model = CurrentTimeArgs
    risk = RiskLevel.READ

    async def run(self, args: CurrentTimeArgs, ctx: ToolContext) -> str:
        zone_name = args.timezone or ctx.timezone
        try:
            zone = ZoneInfo(zone_name)
        except (KeyError, ValueError):
            return f"Unknown time zone {zone_name!r}; use an IANA name such as Asia/Shanghai."
        local = ctx.now.astimezone(zone)
        return f"{local.strftime('%Y-%m-%d %H:%M:%S %A')} ({zone_name}, UTC{local.strftime('%z')})"
