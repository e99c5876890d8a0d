"""Fixtures for calendar tests: a real Radicale per module and a loopback ICS server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.calendar.http_server import CalendarHttpServer
from tests.calendar.radicale import Radicale


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """Radicale with no authentication; each test makes its own calendar in it."""
    server = Radicale(tmp_path_factory.mktemp("radicale"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def calendar_url(radicale: Radicale) -> str:
    """A fresh, empty CalDAV calendar collection."""
    return radicale.make_calendar()


@pytest.fixture
def ics_server() -> Iterator[CalendarHttpServer]:
    """An HTTP server on 127.0.0.1 whose routes the test fills in."""
    with CalendarHttpServer() as server:
        yield server
