"""The demo office API, over real HTTP on 127.0.0.1, and its OpenAPI document."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from examples.office_api import OfficeServer, serve, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2025, 3, 14)  # a Friday; seed data is relative to it
TOMORROW = "2025-03-15"
TOKEN = "s3cret"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
async def office() -> AsyncIterator[OfficeServer]:
    async with serve(token=TOKEN, today=TODAY) as server:
        yield server


@pytest.fixture
async def client(office: OfficeServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=office.url, headers=headers) as http:
        yield http


def booking(**overrides: Any) -> dict[str, Any]:
    body = {
        "room_id": "room-huangshan",
        "start": f"{TOMORROW}T10:00:00+08:00",
        "end": f"{TOMORROW}T11:00:00+08:00",
        "title": "客户反馈行动项评审",
        "attendees": ["me@example.com", "pm@example.com"],
    }
    return {**body, **overrides}


async def test_serves_on_an_ephemeral_loopback_port(office: OfficeServer) -> None:
    assert office.url.startswith("http://127.0.0.1:")
    assert not office.url.endswith(":0")


async def test_this_weeks_feedback_is_listed_newest_first(client: httpx.AsyncClient) -> None:
    response = await client.get("/feedback", params={"since": "2025-03-08", "until": "2025-03-14"})
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 7
    assert [i["id"] for i in items] == [f"fb-{n:03d}" for n in range(1, 8)]
    assert all("2025-03-08" <= i["received_at"][:10] <= "2025-03-14" for i in items)
    assert items[0]["received_at"] == "2025-03-14T09:40:00+08:00"
    texts = " ".join(i["text"] for i in items)
    assert "发票导出" in texts and "Invoice export" in texts and "微信登录" in texts


async def test_all_feedback_spans_two_weeks_and_limit_caps_it(client: httpx.AsyncClient) -> None:
    items = (await client.get("/feedback")).json()["items"]
    assert len(items) == 12
    assert min(i["received_at"][:10] for i in items) >= "2025-03-01"
    assert len((await client.get("/feedback", params={"limit": 3})).json()["items"]) == 3


async def test_bad_feedback_query_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/feedback", params={"since": "last week"})
    assert response.status_code == 422
    assert "since" in response.json()["error"]
    assert (await client.get("/feedback", params={"limit": "0"})).status_code == 422


async def test_one_feedback_item_and_unknown_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/feedback/fb-005")
    assert response.status_code == 200
    assert response.json()["text"] == "希望支持微信登录，员工不想再记一个密码。"
    missing = await client.get("/feedback/fb-999")
    assert missing.status_code == 404
    assert "fb-999" in missing.json()["error"]


async def test_rooms_and_availability_around_a_seeded_booking(client: httpx.AsyncClient) -> None:
    rooms = (await client.get("/rooms")).json()["items"]
    assert [r["id"] for r in rooms] == [
        "room-huangshan",
        "room-taishan",
        "room-emei",
        "room-lushan",
    ]
    free = (
        await client.get("/rooms/room-huangshan/availability", params={"date": TOMORROW})
    ).json()
    assert len(free["free_slots"]) == 18  # 09:00-18:00, nothing booked
    busy = await client.get("/rooms/room-taishan/availability", params={"date": TOMORROW})
    starts = [s["start"][11:16] for s in busy.json()["free_slots"]]
    assert len(starts) == 16
    assert "10:00" not in starts and "10:30" not in starts
    assert starts[:3] == ["09:00", "09:30", "11:00"]
    assert busy.json()["free_slots"][0] == {
        "start": f"{TOMORROW}T09:00:00+08:00",
        "end": f"{TOMORROW}T09:30:00+08:00",
    }


async def test_availability_of_unknown_room_is_404_and_bad_date_422(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/rooms/room-nope/availability", params={"date": TOMORROW})
    assert missing.status_code == 404
    assert "room-huangshan" in missing.json()["error"]  # lists the rooms that exist
    bad = await client.get("/rooms/room-emei/availability", params={"date": "15/03/2025"})
    assert bad.status_code == 422


async def test_booking_takes_the_slots_and_can_be_cancelled(client: httpx.AsyncClient) -> None:
    created = await client.post("/bookings", json=booking())
    assert created.status_code == 201
    made = created.json()
    assert made["room_id"] == "room-huangshan"
    assert made["start"] == f"{TOMORROW}T10:00:00+08:00"
    assert made["attendees"] == ["me@example.com", "pm@example.com"]
    listed = (await client.get("/bookings")).json()["items"]
    assert made in listed and len(listed) == 3
    slots = (
        await client.get("/rooms/room-huangshan/availability", params={"date": TOMORROW})
    ).json()
    assert len(slots["free_slots"]) == 16

    assert (await client.delete(f"/bookings/{made['id']}")).status_code == 204
    assert made not in (await client.get("/bookings")).json()["items"]
    assert (await client.delete(f"/bookings/{made['id']}")).status_code == 404


async def test_booking_in_another_offset_is_stored_in_office_time(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        "/bookings", json=booking(start=f"{TOMORROW}T02:00:00Z", end=f"{TOMORROW}T02:30:00Z")
    )
    assert created.status_code == 201
    assert created.json()["start"] == f"{TOMORROW}T10:00:00+08:00"


async def test_overlapping_booking_is_409(client: httpx.AsyncClient) -> None:
    clash = await client.post(
        "/bookings",
        json=booking(
            room_id="room-taishan",
            start=f"{TOMORROW}T10:30:00+08:00",
            end=f"{TOMORROW}T11:30:00+08:00",
        ),
    )
    assert clash.status_code == 409
    assert "10:00-11:00" in clash.json()["error"]
    # Back-to-back is not an overlap.
    adjacent = booking(
        room_id="room-taishan", start=f"{TOMORROW}T11:00:00+08:00", end=f"{TOMORROW}T11:30:00+08:00"
    )
    assert (await client.post("/bookings", json=adjacent)).status_code == 201


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"end": f"{TOMORROW}T09:00:00+08:00"}, "end must be after start"),
        ({"start": f"{TOMORROW}T08:00:00+08:00"}, "09:00-18:00"),
        ({"end": f"{TOMORROW}T18:30:00+08:00"}, "09:00-18:00"),
        ({"start": f"{TOMORROW}T10:00:00"}, "start"),  # no offset
        ({"title": ""}, "title"),
        ({"attendees": [f"p{n}" for n in range(5)]}, "seats 4"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_invalid_booking_is_422_with_a_clear_message(
    client: httpx.AsyncClient, overrides: dict[str, Any], message: str
) -> None:
    response = await client.post("/bookings", json=booking(**overrides))
    assert response.status_code == 422
    assert message in response.json()["error"]


async def test_booking_without_required_fields_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/bookings", json={"room_id": "room-emei"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert "start" in error and "end" in error and "title" in error


async def test_booking_unknown_room_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/bookings", json=booking(room_id="room-nope"))
    assert response.status_code == 404


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/bookings", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/feedback"), ("GET", "/rooms"), ("POST", "/bookings"), ("GET", "/openapi.yaml")],
)
async def test_missing_or_wrong_token_is_401(
    office: OfficeServer, header: str | None, method: str, path: str
) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(base_url=office.url) as http:
        response = await http.request(method, path, headers=headers, json=booking())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in response.json()["error"]
    assert len(office.state.bookings) == 2  # nothing was booked


async def test_unknown_path_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert "error" in response.json()


def test_threaded_server_without_token_needs_no_auth() -> None:
    with serve_in_thread(today=TODAY) as office:
        response = httpx.get(f"{office.url}/rooms")
        assert response.status_code == 200
        assert len(response.json()["items"]) == 4
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{office.url}/rooms")


# --- the OpenAPI document ------------------------------------------------------------------------


def resolve(document: dict[str, Any], ref: str) -> Any:
    """Follow a local JSON pointer like ``#/components/schemas/Feedback``."""
    assert ref.startswith("#/"), f"only local refs are expected, got {ref!r}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolvable $ref {ref!r}"
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    loaded: dict[str, Any] = yaml.safe_load(response.text)
    return loaded


async def test_openapi_document_is_3_1_with_bearer_security(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearerAuth": []}]


async def test_every_operation_has_a_unique_operation_id(document: dict[str, Any]) -> None:
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids))
    assert set(ids) >= {
        "listFeedback",
        "getFeedback",
        "listRooms",
        "getRoomAvailability",
        "createBooking",
        "listBookings",
        "cancelBooking",
    }


async def test_every_ref_resolves(document: dict[str, Any]) -> None:
    found = refs(document)
    assert len(found) > 20
    for ref in found:
        assert resolve(document, ref) is not None


async def test_documented_get_operations_are_served(
    document: dict[str, Any], client: httpx.AsyncClient
) -> None:
    examples = {
        "/feedback/{id}": "/feedback/fb-001",
        "/rooms/{id}/availability": "/rooms/room-emei/availability",
    }
    for path, item in document["paths"].items():
        if "get" in item:
            response = await client.get(examples.get(path, path))
            assert response.status_code == 200, (path, response.text)


def test_module_entry_point_serves_until_sigterm() -> None:
    command = [sys.executable, "-m", "examples.office_api", "--port", "0", "--token", TOKEN]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        url = banner.split()[3]
        assert url.startswith("http://127.0.0.1:") and "bearer token required" in banner
        response = httpx.get(f"{url}/rooms", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
