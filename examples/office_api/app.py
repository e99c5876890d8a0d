"""The demo office service: customer feedback, meeting rooms and bookings over JSON.

State lives in memory and is seeded relative to one "today", so a walkthrough or a test sees
the same feedback and the same free slots every time. Office hours (09:00-18:00 in 30-minute
slots) are in the office's own time zone, UTC+8; clients may send any offset.
"""

from __future__ import annotations

import hmac
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["OFFICE_TZ", "Booking", "Feedback", "OfficeState", "Room", "create_app"]

OFFICE_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
OPENAPI_YAML = (Path(__file__).parent / "openapi.yaml").read_bytes()
"""Read once at import so no request does blocking file I/O."""

DAY_START, DAY_END, SLOT = time(9, 0), time(18, 0), timedelta(minutes=30)

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, kw_only=True)
class Feedback:
    id: str
    received_at: datetime
    """When the message arrived, in office time."""
    customer: str
    channel: str
    """email, wechat, app_store, support_ticket or phone."""
    text: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "received_at": self.received_at.isoformat()}


@dataclass(frozen=True, kw_only=True)
class Room:
    id: str
    name: str
    capacity: int
    """Seats; a booking may not invite more attendees."""
    floor: int


@dataclass(frozen=True, kw_only=True)
class Booking:
    id: str
    room_id: str
    start: datetime
    end: datetime
    title: str
    attendees: list[str]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}


# (days ago, hour, minute, customer, channel, text): recurring topics on purpose, so that
# "turn feedback into action items" has something to group.
_FEEDBACK = [
    (0, 9, 40, "华辰物流", "wechat", "发票导出还是很慢，导出一个月的发票要等五分钟以上。"),
    (1, 16, 5, "Northwind Traders", "email", "Invoice export times out over 500 rows."),
    (2, 11, 20, "星河教育", "support_ticket", "登录经常超时，尤其是早上九点左右。"),
    (3, 14, 0, "Acme Retail", "email", "Login session times out after 10 minutes."),
    (4, 10, 15, "云帆科技", "wechat", "希望支持微信登录，员工不想再记一个密码。"),
    (5, 17, 30, "Blue Harbor Cafe", "app_store", "Mobile layout hides the Save button."),
    (6, 9, 5, "华辰物流", "phone", "希望支持微信扫码登录，客户那边也在问。"),
    (7, 13, 45, "Contoso Ltd", "support_ticket", "Invoice export to Excel is very slow."),
    (8, 15, 10, "绿野农业", "app_store", "手机上表格显示不全，移动端布局需要优化。"),
    (9, 11, 0, "Fabrikam", "email", "Login page times out behind our corporate proxy."),
    (11, 10, 30, "星河教育", "wechat", "能不能加一个深色模式？晚上用眼睛累。"),
    (13, 16, 50, "Northwind Traders", "email", "Please add WeChat Work login."),
]

_ROOMS = [
    Room(id="room-huangshan", name="黄山 Huangshan", capacity=4, floor=3),
    Room(id="room-taishan", name="泰山 Taishan", capacity=8, floor=3),
    Room(id="room-emei", name="峨眉 Emei", capacity=12, floor=5),
    Room(id="room-lushan", name="庐山 Lushan", capacity=20, floor=5),
]


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), OFFICE_TZ)


@dataclass(kw_only=True)
class OfficeState:
    """Everything the service knows; mutated only by booking requests."""

    today: date
    """The day the seed data is relative to."""
    feedback: list[Feedback]
    rooms: dict[str, Room]
    bookings: dict[str, Booking] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def seeded(cls, today: date | None = None) -> OfficeState:
        """Twelve feedback items from the last two weeks, four rooms, two bookings tomorrow."""
        today = today or datetime.now(OFFICE_TZ).date()
        feedback = [
            Feedback(
                id=f"fb-{n:03d}",
                received_at=_at(today - timedelta(days=ago), hour, minute),
                customer=customer,
                channel=channel,
                text=text,
            )
            for n, (ago, hour, minute, customer, channel, text) in enumerate(_FEEDBACK, 1)
        ]
        state = cls(today=today, feedback=feedback, rooms={r.id: r for r in _ROOMS})
        tomorrow = today + timedelta(days=1)
        state.book("room-taishan", _at(tomorrow, 10), _at(tomorrow, 11), "周会 Weekly sync", [])
        state.book("room-emei", _at(tomorrow, 14), _at(tomorrow, 15, 30), "Customer call", [])
        return state

    def conflict(self, room_id: str, start: datetime, end: datetime) -> Booking | None:
        """The first booking of the room that overlaps [start, end), if any."""
        for booking in self.bookings.values():
            if booking.room_id == room_id and booking.start < end and start < booking.end:
                return booking
        return None

    def book(
        self, room_id: str, start: datetime, end: datetime, title: str, attendees: list[str]
    ) -> Booking:
        """Record a booking; callers check rooms, hours and conflicts first."""
        booking = Booking(
            id=f"bk-{next(self._ids)}",
            room_id=room_id,
            start=start,
            end=end,
            title=title,
            attendees=attendees,
        )
        self.bookings[booking.id] = booking
        return booking

    def free_slots(self, room_id: str, day: date) -> list[tuple[datetime, datetime]]:
        """Office-hour slots of `day` that no booking of the room touches."""
        slots, start = [], _at(day, DAY_START.hour)
        while start < _at(day, DAY_END.hour):
            if self.conflict(room_id, start, start + SLOT) is None:
                slots.append((start, start + SLOT))
            start += SLOT
        return slots


class BookingRequest(BaseModel):
    """The body of `POST /bookings`."""

    model_config = ConfigDict(extra="forbid")

    room_id: str = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime
    title: str = Field(min_length=1, max_length=200)
    attendees: list[str] = Field(default_factory=list, max_length=50)


class ApiError(Exception):
    """A JSON error response: `{"error": message}` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _date_param(request: Request, name: str, default: date | None = None) -> date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, f"query parameter {name!r} must be a date like 2025-03-14") from None


def _room(state: OfficeState, room_id: str) -> Room:
    if room_id not in state.rooms:
        known = ", ".join(state.rooms)
        raise ApiError(404, f"no room {room_id!r}; known rooms: {known}")
    return state.rooms[room_id]


def _validate_booking(state: OfficeState, body: BookingRequest) -> tuple[datetime, datetime]:
    room = _room(state, body.room_id)
    start, end = body.start.astimezone(OFFICE_TZ), body.end.astimezone(OFFICE_TZ)
    if end <= start:
        raise ApiError(422, "end must be after start")
    if start.date() != end.date() or start.time() < DAY_START or end.time() > DAY_END:
        raise ApiError(422, "bookings must fall within 09:00-18:00 (UTC+8) on a single day")
    if len(body.attendees) > room.capacity:
        raise ApiError(
            422, f"{room.name} seats {room.capacity}; {len(body.attendees)} attendees invited"
        )
    return start, end


def create_app(*, state: OfficeState | None = None, token: str | None = None) -> Starlette:
    """The Starlette app over `state` (seeded for today if omitted); `token` enables auth."""
    office = state or OfficeState.seeded()

    def endpoint(handler: Handler) -> Handler:
        """Bearer auth and `ApiError` translation, shared by every route."""

        async def wrapped(request: Request) -> Response:
            if token is not None:
                scheme, _, given = request.headers.get("authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(given, token):
                    return JSONResponse(
                        {"error": "missing or wrong bearer token; send Authorization: Bearer …"},
                        status_code=401,
                        headers={"WWW-Authenticate": "Bearer"},
                    )
            try:
                return await handler(request)
            except ApiError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status)

        return wrapped

    async def list_feedback(request: Request) -> Response:
        since, until = _date_param(request, "since"), _date_param(request, "until")
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 500:
            raise ApiError(422, "query parameter 'limit' must be an integer from 1 to 500")
        items = [
            f
            for f in sorted(office.feedback, key=lambda f: f.received_at, reverse=True)
            if (since is None or f.received_at.date() >= since)
            and (until is None or f.received_at.date() <= until)
        ]
        return JSONResponse({"items": [f.to_json() for f in items[:limit]]})

    async def get_feedback(request: Request) -> Response:
        fid = request.path_params["id"]
        for item in office.feedback:
            if item.id == fid:
                return JSONResponse(item.to_json())
        raise ApiError(404, f"no feedback {fid!r}")

    async def list_rooms(_: Request) -> Response:
        return JSONResponse({"items": [asdict(r) for r in office.rooms.values()]})

    async def room_availability(request: Request) -> Response:
        room = _room(office, request.path_params["id"])
        day = _date_param(request, "date", office.today)
        assert day is not None
        slots = office.free_slots(room.id, day)
        free = [{"start": s.isoformat(), "end": e.isoformat()} for s, e in slots]
        return JSONResponse({"room_id": room.id, "date": day.isoformat(), "free_slots": free})

    async def create_booking(request: Request) -> Response:
        try:
            raw = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}") from None
        try:
            body = BookingRequest.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            raise ApiError(422, f"invalid booking: {problems}") from None
        start, end = _validate_booking(office, body)
        clash = office.conflict(body.room_id, start, end)
        if clash is not None:
            when = f"{clash.start:%H:%M}-{clash.end:%H:%M}"
            raise ApiError(409, f"{body.room_id} is already booked {when} ({clash.id})")
        booking = office.book(body.room_id, start, end, body.title, body.attendees)
        return JSONResponse(booking.to_json(), status_code=201)

    async def list_bookings(_: Request) -> Response:
        items = sorted(office.bookings.values(), key=lambda b: b.start)
        return JSONResponse({"items": [b.to_json() for b in items]})

    async def cancel_booking(request: Request) -> Response:
        if office.bookings.pop(request.path_params["id"], None) is None:
            raise ApiError(404, f"no booking {request.path_params['id']!r}")
        return Response(status_code=204)

    async def openapi(_: Request) -> Response:
        return Response(OPENAPI_YAML, media_type="application/yaml")

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    routes = [
        Route("/feedback", endpoint(list_feedback), methods=["GET"]),
        Route("/feedback/{id}", endpoint(get_feedback), methods=["GET"]),
        Route("/rooms", endpoint(list_rooms), methods=["GET"]),
        Route("/rooms/{id}/availability", endpoint(room_availability), methods=["GET"]),
        Route("/bookings", endpoint(list_bookings), methods=["GET"]),
        Route("/bookings", endpoint(create_booking), methods=["POST"]),
        Route("/bookings/{id}", endpoint(cancel_booking), methods=["DELETE"]),
        Route("/openapi.yaml", endpoint(openapi), methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.office = office
    return app
