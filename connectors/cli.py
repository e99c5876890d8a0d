"""The terminal channel: `dadang chat` talks to the same runtime as the local owner.

Buttons (an approval request, a reminder's snooze) are printed as numbered choices; typing the
number answers them exactly as a press in Telegram would. Files the assistant sends are written
to a folder (`$DADANG_HOME/outbox-files` for `dadang chat`) and their path is printed: a terminal
cannot show a document, and the data directory keeps them private (0600) where the current
folder might be a shared or synced one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from connectors.base import Callback, Connector, InboundMessage, InboundSink, OutboundMessage
from connectors.errors import DeliveryError

LOCAL_USER = "local"
LOCAL_CHAT = "local"


class TerminalConnector(Connector):
    """Reads lines from a prompt function and prints replies."""

    id = "cli"
    max_message_chars = 100_000

    def __init__(
        self,
        *,
        read_line: Callable[[], str] | None = None,
        write: Callable[[str], None] | None = None,
        files_dir: Path | None = None,
    ) -> None:
        self._read_line = read_line or (lambda: input("you> "))
        self._files_dir = files_dir or Path.cwd() / "dadang-files"
        self._write = write or (lambda text: print(f"dadang> {text}\n", flush=True))
        self._sink: InboundSink | None = None
        self._replied = asyncio.Event()
        self._counter = 0
        self._choices: dict[str, tuple[str, str]] = {}
        """Number typed → (callback data, id of the message carrying the buttons)."""

    async def start(self, sink: InboundSink) -> None:
        """Remember the runtime's entry point; input is driven by `chat_loop`."""
        self._sink = sink

    async def stop(self) -> None:
        """Nothing to release."""
        self._sink = None

    async def send(self, message: OutboundMessage) -> str:
        """Print a reply part (with its buttons as numbered choices)."""
        self._counter += 1
        message_id = f"cli-{self._counter}"
        text = message.text
        buttons = [b for row in message.buttons for b in row]
        if buttons:
            self._choices = {str(n): (b.data, message_id) for n, b in enumerate(buttons, start=1)}
            options = "  ".join(f"[{n}] {b.label}" for n, b in enumerate(buttons, start=1))
            text = f"{text}\n{options}  (type the number)"
        self._write(text)
        self._replied.set()
        return message_id

    async def send_file(self, chat_id: str, *, name: str, data: bytes, caption: str = "") -> str:
        """Write the file into the files folder (never overwriting one) and print its path."""
        try:
            path = await asyncio.to_thread(_write_new, self._files_dir, name, data)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write {name} to {self._files_dir}: {exc.strerror or exc}", retryable=False
            ) from exc
        self._counter += 1
        self._write(f"{caption}\n📎 {path}" if caption else f"📎 {path}")
        self._replied.set()
        return f"cli-{self._counter}"

    async def edit(self, chat_id: str, message_id: str, text: str) -> None:
        """Print the new state of an earlier message; its choices are gone."""
        self._choices = {k: v for k, v in self._choices.items() if v[1] != message_id}
        self._write(text)

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        """A short notice about a choice (e.g. "already answered")."""
        if text:
            self._write(text)

    async def say(self, text: str, *, message_id: str) -> None:
        """Submit one line as the owner; a number answers the latest choices."""
        if self._sink is None:
            raise RuntimeError("the terminal connector is not started")
        self._replied.clear()
        choice = self._choices.pop(text.strip(), None)
        if choice is not None:
            self._choices = {}
            await self._sink(
                InboundMessage(
                    channel=self.id,
                    external_user_id=LOCAL_USER,
                    chat_id=LOCAL_CHAT,
                    text="",
                    channel_message_id=None,
                    callback=Callback(id=message_id, data=choice[0], message_id=choice[1]),
                )
            )
            return
        await self._sink(
            InboundMessage(
                channel=self.id,
                external_user_id=LOCAL_USER,
                chat_id=LOCAL_CHAT,
                text=text,
                channel_message_id=message_id,
            )
        )

    async def wait_reply(self, within: float) -> bool:
        """Wait for the next printed reply; False on timeout."""
        try:
            async with asyncio.timeout(within):
                await self._replied.wait()
        except TimeoutError:
            return False
        return True

    async def chat_loop(self, *, reply_timeout: float = 300.0) -> None:
        """Prompt, submit, print the answer; ends on EOF, Ctrl-C or `/exit`."""
        while True:
            try:
                line = await asyncio.to_thread(self._read_line)
            except (EOFError, KeyboardInterrupt):
                return
            text = line.strip()
            if not text:
                continue
            if text in {"/exit", "/quit"}:
                return
            await self.say(text, message_id=f"cli-{uuid.uuid4().hex}")
            if not await self.wait_reply(reply_timeout):
                with contextlib.suppress(Exception):
                    print("(still working; the answer will appear here)", file=sys.stderr)


def _write_new(folder: Path, name: str, data: bytes) -> Path:
    """`folder/name`, or `name (2)`, `name (3)`, … when taken; created 0600, never replaced."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    base = Path(Path(name).name.strip(" .") or "file")
    for n in range(1, 1000):
        candidate = folder / (base.name if n == 1 else f"{base.stem} ({n}){base.suffix}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return candidate
    raise FileExistsError(f"too many files called {base.name} in {folder}")
