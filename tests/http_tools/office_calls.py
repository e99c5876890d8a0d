"""Calling the tools imported from the demo office API's OpenAPI document, over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from automation.http_tools import load_http_tools
from automation.tools.base import RiskLevel, Tool, ToolContext
from automation.tools.scopes import DataScopes
from examples.office_api import OfficeState
from memory.db import open_database

OFFICE_YAML = Path(__file__).parents[2] / "examples" / "office_api" / "openapi.yaml"
TOKEN = "imported-office-token"
TODAY = date(2025, 3, 14)


async def resolver(user_id: int, name: str) -> str | None:
    return TOKEN if (user_id, name) == (1, "office_token") else None


def load_office_tools(directory: Path) -> dict[str, Tool[Any]]:
    tools, errors = load_http_tools(directory, resolve_secret=resolver)
    assert errors == []
    return {tool.name: tool for tool in tools}


async def exercise_office_tools(directory: Path, *, state: OfficeState, db_dir: Path) -> None:
    """List feedback, list rooms, check availability and book a room with the imported tools."""
    tools = load_office_tools(directory)
    assert {tool.source for tool in tools.values()} == {"openapi:office"}
    assert tools["office_create_booking"].risk is RiskLevel.WRITE
    assert tools["office_cancel_booking"].risk is RiskLevel.IRREVERSIBLE
    db = open_database(f"sqlite:///{db_dir / 'calls.db'}")  # HTTP tools never query it
    ctx = ToolContext(
        user_id=1,
        timezone="Asia/Shanghai",
        db=db,
        now=datetime.now(UTC),
        scopes=DataScopes(api_hosts=("127.0.0.1",)),
    )
    try:
        feedback = json.loads(
            await tools["office_list_feedback"].call(
                {"since": "2025-03-13", "until": "2025-03-14", "limit": 5}, ctx
            )
        )
        assert [item["id"] for item in feedback["items"]] == ["fb-001", "fb-002"]

        rooms = json.loads(await tools["office_list_rooms"].call({}, ctx))["items"]
        assert {room["id"] for room in rooms} >= {"room-huangshan", "room-taishan"}

        availability = json.loads(
            await tools["office_get_room_availability"].call(
                {"id": "room-taishan", "date": "2025-03-15"}, ctx
            )
        )
        starts = [slot["start"] for slot in availability["free_slots"]]
        assert "2025-03-15T09:00:00+08:00" in starts
        assert "2025-03-15T10:00:00+08:00" not in starts  # the seeded weekly sync

        booked = json.loads(
            await tools["office_create_booking"].call(
                {
                    "room_id": "room-huangshan",
                    "start": "2025-03-15T10:00:00+08:00",
                    "end": "2025-03-15T11:00:00+08:00",
                    "title": "反馈行动项评审",
                    "attendees": ["me"],
                },
                ctx,
            )
        )
        assert booked["room_id"] == "room-huangshan" and booked["title"] == "反馈行动项评审"
        assert booked["id"] in state.bookings
    finally:
        await db.dispose()
