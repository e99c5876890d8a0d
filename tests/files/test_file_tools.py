"""The file tools against a real database and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from automation.tools.base import RiskLevel, ToolContext, ToolError, ToolRegistry
from automation.tools.builtin import register
from automation.tools.file_access import FileAccess
from automation.tools.files import FileDownload, FileList, FileSend
from automation.tools.scopes import DataScopes
from memory.conversations import ConversationStore
from memory.db import Database, open_database
from memory.files import MB, FileStore
from memory.identities import IdentityStore
from memory.migrate import upgrade
from memory.outbox import OutboxStore

LOOPBACK = DataScopes(sites=("127.0.0.1:*",))


@dataclass
class Body:
    """What the server answers on one path: `size` bytes of `fill`, with or without a length."""

    size: int
    headers: dict[str, str]
    status: int = 200
    chunked: bool = False
    fill: bytes = b"x"


class FileServer:
    """Streams generated bodies (60 MB costs no memory) and counts requests per path."""

    def __init__(self) -> None:
        self.bodies: dict[str, Body] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                body = server.bodies.get(self.path, Body(9, {}, status=404, fill=b"not found"))
                self.send_response(body.status)
                for key, value in body.headers.items():
                    self.send_header(key, value)
                if body.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(body.size))
                self.end_headers()
                piece = (body.fill * 65536)[:65536]
                with contextlib.suppress(OSError):  # the client stops reading an oversize body
                    left = body.size
                    while left > 0:
                        chunk = piece[: min(left, len(piece))] if body.size > 9 else body.fill
                        left -= len(chunk)
                        if body.chunked:
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        else:
                            self.wfile.write(chunk)
                    if body.chunked:
                        self.wfile.write(b"0\r\n\r\n")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as files:
        yield files


@dataclass
class World:
    db: Database
    access: FileAccess
    ann: int
    bob: int
    sent: list[Any]
    messages: dict[int, list[int]]
    """Inbound message ids per user (files and sends are keyed by them)."""

    def ctx(
        self, user_id: int, *, scopes: DataScopes = LOOPBACK, message: int | None = 0
    ) -> ToolContext:
        """The context of a tool call in the user's `message`-th request (None: no request)."""
        message = None if message is None else self.messages[user_id][message]
        return ToolContext(
            user_id=user_id,
            timezone="Asia/Shanghai",
            db=self.db,
            now=datetime.now(UTC),
            source_message_id=message,
            scopes=scopes,
            channel="telegram",
            chat_id=str(user_id + 7000),
            files=self.access.for_user(
                user_id, channel="telegram", chat_id=str(user_id + 7000), source_message_id=message
            ),
        )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    url = f"sqlite:///{tmp_path / 'files.db'}"
    upgrade(url)
    db = open_database(url)
    identities = IdentityStore(db)
    ann = (await identities.ensure_owner(name="Ann")).id
    bob = await identities.link(user_id=None, channel="telegram", external_id="2", display_name="B")
    sent: list[Any] = []
    conversations = ConversationStore(db)
    messages: dict[int, list[int]] = {}
    for user in (ann, bob):
        for n in range(2):
            record = await conversations.record_inbound(
                user_id=user,
                channel="telegram",
                chat_id=str(user),
                text="hi",
                channel_message_id=f"{user}:{n}",
            )
            assert record is not None
            messages.setdefault(user, []).append(record.message_id)
    store = FileStore(db, tmp_path / "files", quota_bytes=100 * MB)
    yield World(
        db,
        FileAccess(store=store, outbox=OutboxStore(db), deliver=sent.append),
        ann,
        bob,
        sent,
        messages,
    )
    await db.dispose()


# --- file_download ------------------------------------------------------------------------------


async def test_a_download_is_stored_under_the_name_the_server_gives_once_per_request(
    server: FileServer, world: World
) -> None:
    server.bodies["/export?id=7"] = Body(
        3000,
        {
            "Content-Type": "application/pdf",
            "Content-Disposition": "attachment; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf",
        },
    )
    call = {"url": f"{server.base}/export?id=7"}
    result = await FileDownload().call(call, world.ctx(world.ann))
    assert result.startswith(f"Downloaded {server.base}/export?id=7 as file #1: 报告.pdf, 3 KB")
    again = await FileDownload().call(call, world.ctx(world.ann))  # a re-run turn
    assert "file #1:" in again
    [record] = await world.access.store.list(world.ann)
    assert (record.origin, record.mime, record.size) == ("download", "application/pdf", 3000)
    assert await world.access.store.read(world.ann, 1) == b"x" * 3000


async def test_the_name_comes_from_the_call_or_the_url_when_the_server_gives_none(
    server: FileServer, world: World
) -> None:
    server.bodies["/data/sales%202024.csv"] = Body(10, {"Content-Type": "text/csv"})
    result = await FileDownload().call(
        {"url": f"{server.base}/data/sales%202024.csv"}, world.ctx(world.ann)
    )
    assert "file #1: sales 2024.csv, 10 bytes, text/csv" in result
    named = await FileDownload().call(
        {"url": f"{server.base}/data/sales%202024.csv", "name": "../q1.csv"}, world.ctx(world.ann)
    )
    assert "file #2: q1.csv" in named


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "streamed"])
async def test_a_60_mb_response_is_refused_and_nothing_is_stored(
    server: FileServer, world: World, chunked: bool
) -> None:
    server.bodies["/huge.iso"] = Body(
        60 * MB, {"Content-Type": "application/x-iso9660-image"}, chunked=chunked
    )
    with pytest.raises(ToolError, match=r"huge\.iso is larger than the 50 MB limit"):
        await FileDownload().call({"url": f"{server.base}/huge.iso"}, world.ctx(world.ann))
    assert await world.access.store.list(world.ann) == []


async def test_a_download_over_the_users_free_storage_is_refused(
    server: FileServer, world: World
) -> None:
    server.bodies["/a.bin"] = Body(MB, {})
    store = FileStore(world.db, world.access.store.root, quota_bytes=MB + 10)
    small = FileAccess(store=store, outbox=world.access.outbox)
    await store.add(world.ann, "first.bin", b"y" * 20, mime="", origin="chat")
    ctx = world.ctx(world.ann)
    ctx = ToolContext(
        **{
            **ctx.__dict__,
            "files": small.for_user(world.ann, channel=None, chat_id=None, source_message_id=None),
        }
    )
    with pytest.raises(ToolError, match="larger than the user's free storage"):
        await FileDownload().call({"url": f"{server.base}/a.bin"}, ctx)


async def test_a_site_outside_the_scopes_or_an_error_page_is_not_downloaded(
    server: FileServer, world: World
) -> None:
    server.bodies["/secret.txt"] = Body(5, {})
    with pytest.raises(ToolError, match=r"scopes\.sites in policy\.yaml"):
        await FileDownload().call(
            {"url": f"{server.base}/secret.txt"}, world.ctx(world.ann, scopes=DataScopes())
        )
    assert server.hits == {}
    with pytest.raises(ToolError, match="answered 404"):
        await FileDownload().call({"url": f"{server.base}/missing.pdf"}, world.ctx(world.ann))
    assert await world.access.store.list(world.ann) == []


# --- file_list and file_send --------------------------------------------------------------------


async def test_file_list_shows_only_the_users_files_newest_first(world: World) -> None:
    store = world.access.store
    await store.add(world.ann, "a.txt", b"a", mime="text/plain", origin="chat")
    await store.add(world.bob, "bob.txt", b"b", mime="text/plain", origin="chat")
    await store.add(world.ann, "chart.png", b"p" * 2048, mime="image/png", origin="generated")
    listing = await FileList().call({}, world.ctx(world.ann))
    lines = listing.splitlines()
    assert lines[0].startswith("#3 chart.png — 2 KB, image/png, generated, ")
    assert lines[1].startswith("#1 a.txt — 1 byte, text/plain, chat, ")
    assert lines[2] == "(2 KB of 100.0 MB used)"
    assert "bob.txt" not in listing
    assert await FileList().call({}, world.ctx(world.bob, message=None)) != listing


async def test_file_send_queues_the_users_own_file_for_their_chat_once_per_request(
    world: World,
) -> None:
    record = await world.access.store.add(
        world.ann, "a.txt", b"a", mime="text/plain", origin="chat"
    )
    result = await FileSend().call({"file_id": record.id, "caption": "yours"}, world.ctx(world.ann))
    assert result == "Sent a.txt (#1, 1 byte) to the user's chat."
    [entry] = world.sent
    assert (entry.channel, entry.chat_id, entry.file_id, entry.text) == (
        "telegram",
        str(world.ann + 7000),
        1,
        "yours",
    )
    again = await FileSend().call({"file_id": record.id}, world.ctx(world.ann))
    assert "already sent for this request" in again
    assert len(world.sent) == 1
    # A later request may send it again.
    await FileSend().call({"file_id": record.id}, world.ctx(world.ann, message=1))
    assert len(world.sent) == 2


async def test_file_send_cannot_reach_another_users_file(world: World) -> None:
    record = await world.access.store.add(
        world.ann, "a.txt", b"a", mime="text/plain", origin="chat"
    )
    with pytest.raises(ToolError, match=f"no file #{record.id} among the user's files"):
        await FileSend().call({"file_id": record.id}, world.ctx(world.bob))
    assert world.sent == []


def test_the_file_tools_are_built_in_with_their_risks() -> None:
    registry = ToolRegistry()
    register(registry)
    send, download, listing = (registry.get(n) for n in ("file_send", "file_download", "file_list"))
    assert send is not None and send.risk is RiskLevel.WRITE and send.stays_private
    assert send.target({"file_id": 12}) == "file #12"
    assert download is not None and download.risk is RiskLevel.READ and download.untrusted_output
    assert download.reads == frozenset({"web"}) and not download.stays_private
    assert download.target({"url": "http://127.0.0.1:8080/a.pdf"}) == "127.0.0.1:8080"
    assert listing is not None and listing.risk is RiskLevel.READ
