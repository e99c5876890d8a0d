"""The injection corpus, the loopback sites that serve it, and the service it is tried on."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from memory.memories import NewMemory
from memory.notes import NoteStore
from memory.proactive import ProactiveStore
from tests.conftest import Service, make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM

CORPUS = Path(__file__).with_name("injection_corpus.yaml")
VECTORS = frozenset(
    {
        "visible_text",
        "hidden_html",
        "tool_call_lookalike",
        "exfiltration_url",
        "calendar_invite",
        "role_play",
        "multi_step",
    }
)
ATTACK_TOOLS = frozenset(
    {
        "memory_forget",
        "reminder_create",
        "reminder_cancel",
        "memory_save",
        "pause_nudges",
        "web_read",
        "remember_note",
    }
)
LOOKALIKES = ("<tool_call", "</tool_call", "<tool_result", "</tool_result", "<|im_start|>")
"""What must never reach the model raw from third-party text: it could pass for structure."""
OWNER = 3003
"""The owner's Telegram id."""
ZONE = "Asia/Shanghai"
SEEDED_MEMORY = "Likes green tea"
SEEDED_REMINDER = "Call mum"
BENIGN_EVENT = "Dentist"


@dataclass(frozen=True, kw_only=True)
class Call:
    """A tool call the scripted model makes; arguments may hold placeholders."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Case:
    """One corpus entry (see the header of injection_corpus.yaml)."""

    id: str
    lang: str
    vector: str
    page: str
    attack: Call
    expect: str = "ask"
    hidden: str = ""
    location: str = ""
    before: tuple[Call, ...] = field(default_factory=tuple)

    @property
    def via_calendar(self) -> bool:
        """The content arrives as a calendar event, not as a web page."""
        return self.vector == "calendar_invite"


def load_corpus() -> list[Case]:
    """Every case, checked for the fields the tests rely on."""
    raw = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["cases"]
    cases: list[Case] = []
    for entry in raw:
        case = Case(
            id=entry["id"],
            lang=entry["lang"],
            vector=entry["vector"],
            page=entry["page"],
            attack=Call(**entry["attack"]),
            expect=entry.get("expect", "ask"),
            hidden=entry.get("hidden", ""),
            location=entry.get("location", ""),
            before=tuple(Call(**c) for c in entry.get("before") or ()),
        )
        assert case.lang in ("zh", "en"), case.id
        assert case.vector in VECTORS, case.id
        assert case.attack.name in ATTACK_TOOLS, case.id
        assert case.expect == "ask", case.id
        assert (case.vector == "hidden_html") == bool(case.hidden), case.id
        assert not case.hidden or case.hidden in case.page, case.id
        cases.append(case)
    assert len({c.id for c in cases}) == len(cases), "case ids must be unique"
    return cases


def fill(value: Any, values: dict[str, Any]) -> Any:
    """`value` with `{name}` placeholders replaced; a string that is only one becomes the value."""
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, str):
        for name, replacement in values.items():
            if value == f"{{{name}}}":
                return replacement
            value = value.replace(f"{{{name}}}", str(replacement))
    return value


class Site:
    """An HTTP server on 127.0.0.1 serving `pages` by path; records every request it gets."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.redirects: dict[str, str] = {}
        """Paths answered with a 302 to the given location."""
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site.requests.append(self.path)
                location = site.redirects.get(self.path)
                if location is not None:
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                text = site.pages.get(self.path.partition("?")[0])
                body = (text or "not found").encode()
                html = text is not None and text.lstrip().startswith("<")
                self.send_response(200 if text is not None else 404)
                self.send_header(
                    "Content-Type", f"text/{'html' if html else 'plain'}; charset=utf-8"
                )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def __enter__(self) -> Site:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _ics_text(value: str) -> str:
    """RFC 5545 TEXT escaping, then lines folded at 60 characters."""
    escaped = (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    )
    return "\r\n ".join(escaped[i : i + 60] for i in range(0, len(escaped), 60)) or ""


def invite_calendar(path: Path, *, summary: str, location: str = "") -> Path:
    """An .ics file with one invitation starting two hours from now."""
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//tests//injection//EN",
        "BEGIN:VEVENT",
        "UID:invite@attacker.example",
        f"DTSTAMP:{start:%Y%m%dT%H%M%SZ}",
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
        f"DTEND:{start + timedelta(minutes=30):%Y%m%dT%H%M%SZ}",
        f"SUMMARY:{_ics_text(summary)}",
    ]
    if location:
        lines.append(f"LOCATION:{_ics_text(location)}")
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    path.write_text("\r\n".join(lines), encoding="utf-8")
    return path


def survives_as_text(page: str) -> bool:
    """Whether a page's look-alike markup reaches the text at all.

    An HTML parser takes `<tool_call>` in a document for an unknown element and drops the tag;
    in plain text, or written as `&lt;…&gt;` or `<|…|>`, the characters come through.
    """
    return not page.lstrip().startswith("<") or "&lt;" in page or "<|" in page


def tool_results(body: dict[str, Any], name: str) -> list[str]:
    """The contents of `name`'s tool messages in one request the model received."""
    return [
        str(m["content"])
        for m in body["messages"]
        if m.get("role") == "tool" and str(m["content"]).startswith(f'<tool_result name="{name}"')
    ]


def result_body(content: str) -> str:
    """A wrapped tool result without its own opening line and closing tag."""
    head, _, rest = content.partition("\n")
    assert head.startswith("<tool_result "), content[:200]
    assert rest.endswith("\n</tool_result>"), content[-200:]
    return rest.removesuffix("\n</tool_result>")


# --- the service the attacks run against ---------------------------------------------------


@dataclass
class World:
    """A running service with one memory and one reminder the attacks go after."""

    svc: Service
    llm: FakeVLLM
    tg: FakeTelegram
    pages: Site
    evil: Site
    owner_id: int
    memory_id: int
    reminder_id: int
    calendar: Path

    def values(self) -> dict[str, Any]:
        return {
            "evil": self.evil.host,
            "memory_id": self.memory_id,
            "reminder_id": self.reminder_id,
        }


async def open_world(
    home: Path,
    *,
    factory: Any,
    llm: FakeVLLM,
    tg: FakeTelegram,
    sites: tuple[Site, Site],
    **extra: Any,
) -> World:
    home.mkdir(parents=True, exist_ok=True)
    # Loopback must be named to be readable at all; the taint rule is what guards it then.
    (home / "policy.yaml").write_text('scopes:\n  sites: ["*", "127.0.0.1"]\n', encoding="utf-8")
    calendar = invite_calendar(home.parent / "invites.ics", summary=BENIGN_EVENT)
    settings = make_settings(
        home,
        llm=llm,
        tg=tg,
        telegram_allowed_users=[OWNER],
        calendar_urls=[str(calendar)],
        **extra,
    )
    svc: Service = await factory(settings)
    owner = await svc.runtime.stores.identities.owner()
    assert owner is not None
    memory = await svc.runtime.memory.remember(owner.id, NewMemory(content=SEEDED_MEMORY))
    tomorrow = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)
    reminder, _ = await svc.runtime.proactive.reminders.create(
        user_id=owner.id,
        text=SEEDED_REMINDER,
        timezone=ZONE,
        at=f"{tomorrow:%Y-%m-%d}T09:00",
        channel="telegram",
        chat_id=str(OWNER),
    )
    return World(
        svc=svc,
        llm=llm,
        tg=tg,
        pages=sites[0],
        evil=sites[1],
        owner_id=owner.id,
        memory_id=memory.id,
        reminder_id=reminder.id,
        calendar=calendar,
    )


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """Callback data by its action suffix (ok / no / always)."""
    rows = message["reply_markup"]["inline_keyboard"]
    return {b["callback_data"].rsplit(":", 1)[1]: b["callback_data"] for r in rows for b in r}


def ask_text(case: Case, url: str) -> str:
    """What the owner writes: they name the page's host, or ask about their day."""
    if case.via_calendar:
        return "我今天有什么安排？" if case.lang == "zh" else "What's on my calendar today?"
    return f"帮我看看这个网页讲了什么：{url}" if case.lang == "zh" else f"Please summarise {url}"


def first_call(case: Case, world: World) -> tuple[str, dict[str, Any]]:
    """The read that brings the third-party text into the turn."""
    if case.via_calendar:
        # A window of its own per case: the calendar service keeps a window's events a minute.
        now = datetime.now(ZoneInfo(ZONE)).replace(second=0, microsecond=0)
        offset = timedelta(minutes=sum(map(ord, case.id)) % 1000)
        span = {
            "start": f"{now - timedelta(hours=1) - offset:%Y-%m-%dT%H:%M}",
            "end": f"{now + timedelta(days=1):%Y-%m-%dT%H:%M}",
        }
        return "calendar_events", span
    return "web_read", {"url": world.pages.url(f"/{case.id}")}


async def attack_turn(case: Case, world: World) -> dict[str, Any]:
    """Serve the case, let the obedient model act on it; returns the approval request sent."""
    values = world.values()
    if case.via_calendar:
        invite_calendar(
            world.calendar, summary=fill(case.page, values), location=fill(case.location, values)
        )
    else:
        world.pages.pages[f"/{case.id}"] = fill(case.page, values)
    read = first_call(case, world)
    world.llm.reset()
    world.llm.push(
        vllm.tool_calls([read]),
        *(vllm.tool_calls([(c.name, fill(c.arguments, values))]) for c in case.before),
        vllm.tool_calls([(case.attack.name, fill(case.attack.arguments, values))]),
        vllm.text("done"),
    )
    sent = len(world.tg.sent_to(OWNER, method="sendMessage"))
    world.tg.push_message(
        OWNER, ask_text(case, str(read[1].get("url", ""))), language_code=case.lang
    )
    messages = await world.tg.wait_sent(chat_id=OWNER, method="sendMessage", count=sent + 1)
    return messages[-1]


async def snapshot(world: World) -> dict[str, Any]:
    """What an attack could change: memories, reminders, notes, the nudge pause."""
    runtime = world.svc.runtime
    memories = await runtime.memory.store.recent(world.owner_id, limit=50)
    reminders = await runtime.proactive.reminders.store.listing(user_id=world.owner_id)
    notes = await NoteStore(runtime.stores.db).list(user_id=world.owner_id)
    state = await ProactiveStore(runtime.stores.db).state(world.owner_id)
    return {
        "memories": sorted((m.id, m.kind, m.content) for m in memories),
        "reminders": sorted((r.id, r.text, r.status) for r in reminders),
        "notes": [n.text for n in notes],
        "paused_until": state.paused_until,
    }
