"""A real Radicale CalDAV server on a loopback port, run as a subprocess for the tests.

Why a subprocess: Radicale is the server users actually run, so requests, status codes and
multistatus bodies are the real ones, not our idea of them.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Radicale:
    """Radicale with `auth none` (anyone may write) or htpasswd plain-text users."""

    def __init__(self, root: Path, *, users: dict[str, str] | None = None) -> None:
        self.root = root
        self.users = users
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = root / "radicale.log"

    def start(self, timeout: float = 15.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.users:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            auth = (
                f"type = htpasswd\nhtpasswd_filename = {htpasswd}\n"
                "htpasswd_encryption = plain\ndelay = 0\n"
            )
        else:
            auth = "type = none\n"
        config = self.root / "config"
        config.write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n"
            f"[auth]\n{auth}"
            f"[storage]\nfilesystem_folder = {self.root / 'collections'}\n"
            "[rights]\ntype = authenticated\n"
            "[web]\ntype = none\n"
            "[logging]\nlevel = warning\n"
        )
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"radicale exited:\n{self._log.read_text()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"radicale did not listen within {timeout} s:\n{self._log.read_text()}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def _client(self, auth: tuple[str, str] | None) -> httpx.Client:
        if auth is None and self.users:
            auth = next(iter(self.users.items()))
        return httpx.Client(base_url=self.base, auth=auth, timeout=5)

    def make_calendar(self, user: str = "alice", *, auth: tuple[str, str] | None = None) -> str:
        """A new, empty calendar collection; returns its URL (ending in ``/``)."""
        name = uuid.uuid4().hex[:10]
        with self._client(auth) as client:
            client.request("MKCOL", f"/{user}/")  # the principal; 405 when it already exists
            response = client.request("MKCALENDAR", f"/{user}/{name}/")
            assert response.status_code == 201, response.text
        return f"{self.base}/{user}/{name}/"

    def put(self, calendar_url: str, ics: str, *, auth: tuple[str, str] | None = None) -> None:
        """Store one iCalendar resource (named after a fresh UUID) in the collection."""
        with self._client(auth) as client:
            response = client.put(
                f"{calendar_url}{uuid.uuid4().hex}.ics",
                content=ics.encode(),
                headers={"Content-Type": "text/calendar; charset=utf-8"},
            )
            assert response.status_code in (201, 204), response.text

    def count(self, calendar_url: str, *, auth: tuple[str, str] | None = None) -> int:
        """How many resources the collection holds (PROPFIND depth 1, minus itself)."""
        with self._client(auth) as client:
            response = client.request("PROPFIND", calendar_url, headers={"Depth": "1"})
            assert response.status_code == 207, response.text
            return response.text.count("<response>") - 1
