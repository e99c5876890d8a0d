"""HTTP tools from YAML, called against the demo office API and a flaky server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from automation.http_tools import load_http_tools
from automation.tools.base import RiskLevel, Tool, ToolContext, ToolError
from automation.tools.scopes import DataScopes
from examples.office_api import OfficeServer, serve
from memory.db import Database, open_database

TOKEN = "s3cr3t-office-token"
LOOPBACK = DataScopes(api_hosts=("127.0.0.1",))
TODAY = date(2025, 3, 14)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'http.db'}")  # HTTP tools never query it
    yield database
    await database.dispose()


@pytest.fixture
async def office() -> AsyncIterator[OfficeServer]:
    async with serve(token=TOKEN, today=TODAY) as server:
        yield server


async def resolver(user_id: int, name: str) -> str | None:
    return TOKEN if (user_id, name) == (1, "office_token") else None


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")


def load_one(directory: Path, text: str, **kwargs: Any) -> Tool[Any]:
    write(directory, "tool.yaml", text)
    tools, errors = load_http_tools(directory, **kwargs)
    assert errors == []
    assert len(tools) == 1
    return tools[0]


def context(db: Database, scopes: DataScopes = LOOPBACK) -> ToolContext:
    return ToolContext(
        user_id=1, timezone="Asia/Shanghai", db=db, now=datetime.now(UTC), scopes=scopes
    )


def feedback_yaml(url: str, *, extra: str = "") -> str:
    return f"""
name: office_list_feedback
description: List customer feedback between two dates.
method: GET
url: {url}/feedback
parameters:
  - {{name: since, in: query, type: string, description: "YYYY-MM-DD"}}
  - {{name: limit, in: query, type: integer}}
auth: {{type: bearer, secret: office_token}}
{extra}
"""


BOOKING_YAML = """
name: office_book_room
description: Book a meeting room.
method: POST
url: {url}/bookings
parameters:
  - {{name: room_id, in: body, type: string, required: true}}
  - {{name: start, in: body, type: string, required: true}}
  - {{name: end, in: body, type: string, required: true}}
  - {{name: title, in: body, type: string, required: true}}
  - {{name: attendees, in: body, type: array}}
auth: {{type: bearer, secret: office_token}}
"""


async def test_list_feedback_sends_query_params_and_bearer_from_the_resolver(
    tmp_path: Path, db: Database, office: OfficeServer
) -> None:
    tool = load_one(tmp_path, feedback_yaml(office.url), resolve_secret=resolver)

    result = await tool.call({"since": "2025-03-13", "limit": 5}, context(db))

    items = json.loads(result)["items"]
    assert [item["id"] for item in items] == ["fb-001", "fb-002"]
    assert TOKEN not in result
    assert tool.name == "office_list_feedback"
    assert tool.source == "http:tool"
    assert tool.untrusted_output and tool.reads == frozenset({"api"})
    port = office.url.rsplit(":", 1)[1]
    assert tool.target({}) == f"127.0.0.1:{port}"
    schema = tool.schema()["function"]["parameters"]
    assert set(schema["properties"]) == {"since", "limit"}
    assert schema["properties"]["since"] == {"type": "string", "description": "YYYY-MM-DD"}


async def test_path_parameter_is_url_encoded_into_the_path(
    tmp_path: Path, db: Database, office: OfficeServer
) -> None:
    tool = load_one(
        tmp_path,
        f"""
name: office_get_feedback
description: One feedback item.
method: GET
url: {office.url}/feedback/{{id}}
parameters: [{{name: id, in: path, type: string, required: true}}]
auth: {{type: bearer, secret: office_token}}
""",
        resolve_secret=resolver,
    )

    assert json.loads(await tool.call({"id": "fb-003"}, context(db)))["customer"] == "星河教育"
    with pytest.raises(ToolError, match=r"HTTP 404 .*no feedback 'a b\?c'"):
        await tool.call({"id": "a b?c"}, context(db))
    with pytest.raises(ToolError, match="invalid arguments"):
        await tool.call({}, context(db))


async def test_post_booking_sends_a_json_body_and_a_conflict_is_a_tool_error(
    tmp_path: Path, db: Database, office: OfficeServer
) -> None:
    tool = load_one(tmp_path, BOOKING_YAML.format(url=office.url), resolve_secret=resolver)
    assert tool.risk is RiskLevel.WRITE
    booking = {
        "room_id": "room-huangshan",
        "start": "2025-03-15T10:00:00+08:00",
        "end": "2025-03-15T11:00:00+08:00",
        "title": "Planning",
        "attendees": ["ana"],
    }

    created = json.loads(await tool.call(booking, context(db)))

    assert created["room_id"] == "room-huangshan" and created["attendees"] == ["ana"]
    assert created["id"] in office.state.bookings
    with pytest.raises(ToolError, match="HTTP 409 .*room-huangshan is already booked 10:00-11:00"):
        await tool.call(booking, context(db))


async def test_keep_fields_and_truncation_bound_the_result(
    tmp_path: Path, db: Database, office: OfficeServer
) -> None:
    write(
        tmp_path,
        "rooms.yaml",
        f"""
name: office_room_availability
description: Free slots of a room.
method: GET
url: {office.url}/rooms/{{id}}/availability
parameters: [{{name: id, in: path, required: true}}, {{name: date, in: query}}]
auth: {{type: bearer, secret: office_token}}
response: {{keep: [room_id, date]}}
""",
    )
    write(tmp_path, "feedback.yaml", feedback_yaml(office.url, extra="response: {max_chars: 300}"))
    tools, errors = load_http_tools(tmp_path, resolve_secret=resolver)
    assert errors == []
    by_name = {tool.name: tool for tool in tools}

    kept = await by_name["office_room_availability"].call(
        {"id": "room-emei", "date": "2025-03-15"}, context(db)
    )
    assert json.loads(kept) == {"room_id": "room-emei", "date": "2025-03-15"}

    cut = await by_name["office_list_feedback"].call({}, context(db))
    assert len(cut) == 300 and cut.endswith("… (truncated)")


async def test_a_bad_file_is_reported_with_its_name_and_field_while_others_load(
    tmp_path: Path, office: OfficeServer
) -> None:
    write(tmp_path, "good.yaml", feedback_yaml(office.url))
    write(tmp_path, "broken.yaml", "name: [unclosed\n")
    write(tmp_path, "typo.yaml", feedback_yaml(office.url, extra="retries: 3").replace("list", "x"))
    write(
        tmp_path,
        "wrong.yaml",
        f"tools:\n  - name: ok_tool\n    description: d\n    method: GET\n    url: {office.url}/\n"
        "  - {name: bad, description: d, method: GET, url: 'http://h/',"
        " parameters: [{name: q, in: cookie}]}\n",
    )

    tools, errors = load_http_tools(tmp_path)

    assert [tool.name for tool in tools] == ["office_list_feedback"]
    assert len(errors) == 3, errors
    broken, typo, wrong = errors
    assert "broken.yaml: not valid YAML at line" in broken
    assert "typo.yaml: retries: Extra inputs are not permitted" in typo
    assert "wrong.yaml: tools.1.parameters.0.in: Input should be" in wrong


async def test_spec_rejects_placeholders_without_path_parameters(tmp_path: Path) -> None:
    write(
        tmp_path,
        "t.yaml",
        "{name: t, description: d, method: get, url: 'http://h/x/{id}'}",
    )
    _, errors = load_http_tools(tmp_path)
    assert len(errors) == 1
    assert (
        "t.yaml: tool: Value error, url placeholders without an `in: path` parameter: id"
        in (errors[0])
    )


async def test_missing_secret_is_a_tool_error_naming_the_command(
    tmp_path: Path, db: Database, office: OfficeServer
) -> None:
    message = "secret office_token is not set; run: dadang secrets set office_token"
    without = load_one(tmp_path / "a", feedback_yaml(office.url))
    with pytest.raises(ToolError, match=message):
        await without.call({}, context(db))

    async def nothing(user_id: int, name: str) -> str | None:
        return None

    unknown = load_one(tmp_path / "b", feedback_yaml(office.url), resolve_secret=nothing)
    with pytest.raises(ToolError, match=message):
        await unknown.call({}, context(db))


async def test_secret_value_never_appears_in_results_or_errors(
    tmp_path: Path, db: Database, office: OfficeServer
) -> None:
    tool = load_one(
        tmp_path,
        f"""
name: echo_key
description: Error that echoes the request.
method: GET
url: {office.url}/feedback
parameters: [{{name: limit, in: query, type: integer}}]
auth: {{type: query, name: key, secret: office_token}}
""",
        resolve_secret=resolver,
    )
    # The office API wants a bearer token: the 401 comes back, and refusals quote the URL.
    with pytest.raises(ToolError) as unauthorised:
        await tool.call({}, context(db))
    assert "HTTP 401" in str(unauthorised.value) and TOKEN not in str(unauthorised.value)

    with pytest.raises(ToolError) as refused:
        await tool.call({}, context(db, DataScopes()))
    assert TOKEN not in str(refused.value)


async def test_loopback_is_refused_unless_api_hosts_names_it(
    tmp_path: Path, db: Database, office: OfficeServer
) -> None:
    tool = load_one(tmp_path, feedback_yaml(office.url), resolve_secret=resolver)
    with pytest.raises(ToolError, match="API hosts") as refused:
        await tool.call({}, context(db, DataScopes()))
    assert "api_hosts" in str(refused.value)


class FlakyServer:
    """Answers 503 (Retry-After: 0) to the first `failures` requests, then 200 with JSON."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.methods: list[str] = []
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                flaky.methods.append(self.command)
                failing = len(flaky.methods) <= flaky.failures
                body = b'{"error": "busy"}' if failing else b'{"ok": true}'
                self.send_response(503 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def flaky() -> Iterator[FlakyServer]:
    server = FlakyServer(failures=1)
    yield server
    server.close()


async def test_get_is_retried_after_a_503_but_post_is_not(
    tmp_path: Path, db: Database, flaky: FlakyServer
) -> None:
    write(tmp_path, "get.yaml", f"{{name: poll, description: d, method: GET, url: '{flaky.url}/'}}")
    write(
        tmp_path, "post.yaml", f"{{name: send, description: d, method: POST, url: '{flaky.url}/'}}"
    )
    tools, errors = load_http_tools(tmp_path)
    assert errors == []
    poll, send = sorted(tools, key=lambda tool: tool.name)

    assert await poll.call({}, context(db)) == '{"ok":true}'
    assert flaky.methods == ["GET", "GET"]

    flaky.failures = 3
    with pytest.raises(ToolError, match="HTTP 503 .*busy"):
        await send.call({}, context(db))
    assert flaky.methods == ["GET", "GET", "POST"]


@pytest.mark.parametrize(
    ("method", "declared", "risk"),
    [
        ("GET", None, RiskLevel.READ),
        ("HEAD", None, RiskLevel.READ),
        ("POST", None, RiskLevel.WRITE),
        ("PUT", None, RiskLevel.WRITE),
        ("PATCH", None, RiskLevel.WRITE),
        ("DELETE", None, RiskLevel.IRREVERSIBLE),
        ("POST", "external-send", RiskLevel.EXTERNAL_SEND),
    ],
)
def test_risk_defaults_by_method_unless_declared(
    tmp_path: Path, method: str, declared: str | None, risk: RiskLevel
) -> None:
    line = f", risk: {declared}" if declared else ""
    tool = load_one(
        tmp_path, f"{{name: t, description: d, method: {method}, url: 'http://h/'{line}}}"
    )
    assert tool.risk is risk
