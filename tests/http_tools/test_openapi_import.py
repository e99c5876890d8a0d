"""OpenAPI 3.0/3.1 documents as declarative HTTP tools: the demo office API
end to end over real HTTP, and a real-world document of 170 operations."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from automation.http_tools import HttpToolSpec, load_http_tools
from automation.http_tools.openapi import import_openapi
from automation.http_tools.openapi_document import parse_document
from automation.http_tools.openapi_render import render_tools_file
from automation.tools.base import RiskLevel
from examples.office_api import OfficeServer, serve
from tests.http_tools.office_calls import OFFICE_YAML, TODAY, TOKEN, exercise_office_tools

OVERSEERR = Path(__file__).parents[1] / "data" / "openapi" / "overseerr-api.yml"


def params(tool: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in tool.get("parameters", [])}


def write_tools(directory: Path, document: dict[str, Any], **kwargs: Any) -> None:
    result = import_openapi(document, name="office", **kwargs)
    text = render_tools_file(
        result, imported_from=str(OFFICE_YAML), command="dadang …", generated_at=datetime.now(UTC)
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "office.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
async def office() -> AsyncIterator[OfficeServer]:
    async with serve(token=TOKEN, today=TODAY) as server:
        yield server


# --- the demo office API, end to end -------------------------------------------------------


async def test_imported_office_tools_call_the_running_api(
    tmp_path: Path, office: OfficeServer
) -> None:
    document = parse_document(OFFICE_YAML.read_text(encoding="utf-8"), source=str(OFFICE_YAML))
    write_tools(tmp_path / "tools", document, base_url=office.url)

    await exercise_office_tools(tmp_path / "tools", state=office.state, db_dir=tmp_path)


def test_office_document_becomes_one_tool_per_operation_with_bearer_auth() -> None:
    document = parse_document(OFFICE_YAML.read_text(encoding="utf-8"), source="office")
    result = import_openapi(document, name="Office")

    assert [t["name"] for t in result.tools] == [
        "office_list_feedback",
        "office_get_feedback",
        "office_list_rooms",
        "office_get_room_availability",
        "office_list_bookings",
        "office_create_booking",
        "office_cancel_booking",
        "office_get_open_api",
    ]
    assert result.warnings == [] and result.secrets == ["office_token"]
    booking = result.tools[5]
    assert booking["url"] == "http://127.0.0.1:8088/bookings" and "risk" not in booking
    assert booking["auth"] == {"type": "bearer", "secret": "office_token"}
    assert params(booking)["room_id"] == {
        "name": "room_id",
        "in": "body",
        "type": "string",
        "required": True,
    }
    assert params(booking)["start"]["description"].endswith("(ISO 8601 date-time)")
    feedback = params(result.tools[0])
    assert feedback["since"]["description"] == (
        "Earliest day to include (inclusive, office time) (YYYY-MM-DD)"
    )
    assert feedback["limit"]["type"] == "integer" and "required" not in feedback["limit"]


# --- a real-world document -------------------------------------------------------------------


def test_the_overseerr_api_imports_whole_and_every_tool_loads(tmp_path: Path) -> None:
    started = time.perf_counter()
    document = parse_document(OVERSEERR.read_text(encoding="utf-8"), source=str(OVERSEERR))
    result = import_openapi(document, name="overseerr")
    elapsed = time.perf_counter() - started

    assert result.operations == 170 and len(result.tools) == 169
    names = [tool["name"] for tool in result.tools]
    assert len(set(names)) == len(names)
    for tool in result.tools:
        spec = HttpToolSpec.model_validate(tool)
        assert len(spec.description) <= 170 and spec.url.startswith("http://localhost:5055/api/v1/")
        assert all(len(p.description) <= 80 for p in spec.parameters)
    assert result.secrets == ["overseerr_api_key"]  # X-Api-Key; the cookie alternative unused
    by_name = {tool["name"]: tool for tool in result.tools}
    assert "auth" not in by_name["overseerr_get_status"]  # security: []
    assert by_name["overseerr_get_settings_main"]["auth"] == {
        "type": "header",
        "name": "X-Api-Key",
        "secret": "overseerr_api_key",
    }
    user_fields = {p["name"] for p in by_name["overseerr_put_user_user_id"]["parameters"]}
    assert "username" in user_fields and "email" not in user_fields  # readOnly left out
    assert result.warnings[0] == (
        "POST /settings/discover: skipped: the JSON body is an array, not an object of named fields"
    )
    assert len(result.warnings) == 4
    assert elapsed < 5

    text = render_tools_file(
        result, imported_from=str(OVERSEERR), command="dadang …", generated_at=datetime.now(UTC)
    )
    (tmp_path / "overseerr.yaml").write_text(text, encoding="utf-8")
    tools, errors = load_http_tools(tmp_path)
    assert errors == [] and len(tools) == 169
    assert {tool.source for tool in tools} == {"openapi:overseerr"}
    schemas = json.dumps([tool.schema() for tool in tools], ensure_ascii=False)
    print(
        f"overseerr: {len(tools)} tools, schemas {len(schemas)} chars ≈ {len(schemas) // 4} tokens"
    )
    assert len(schemas) < 400 * len(tools)  # compact: a few hundred characters a tool


def test_a_generated_file_round_trips_through_the_strict_loader(tmp_path: Path) -> None:
    document = parse_document(OFFICE_YAML.read_text(encoding="utf-8"), source="office")
    write_tools(tmp_path, document, risks={"createBooking": RiskLevel.PAYMENT})

    data = yaml.safe_load((tmp_path / "office.yaml").read_text(encoding="utf-8"))
    assert data["imported_from"] == str(OFFICE_YAML)
    tools, errors = load_http_tools(tmp_path)
    assert errors == []
    by_name = {tool.name: tool for tool in tools}
    assert by_name["office_create_booking"].risk is RiskLevel.PAYMENT
    assert by_name["office_list_rooms"].source == "openapi:office"
