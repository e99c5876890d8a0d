"""Model availability: turns wait here while the model is down instead of failing messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from agent.llm import LLMClient, ModelError

log = logging.getLogger(__name__)


class ModelHealth:
    """Tracks whether the model answers; a probe loop notices when it is back."""

    def __init__(self, llm: LLMClient, *, probe_interval: float = 2.0, max_interval: float = 15.0):
        self._llm = llm
        self._probe_interval = probe_interval
        self._max_interval = max_interval
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reason: str | None = "not checked yet"
        self.model: str | None = None

    @property
    def is_up(self) -> bool:
        """True while the last contact with the model succeeded."""
        return self._up.is_set()

    async def start(self) -> None:
        """Probe once now and keep probing in the background while the model is down."""
        await self.probe()
        self._task = asyncio.create_task(self._loop(), name="model-health")

    async def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def probe(self) -> bool:
        """Ask the server for its models; updates the state and returns it."""
        try:
            self.model = await self._llm.model()
            await self._llm.models()
        except ModelError as exc:
            self.mark_down(str(exc))
            return False
        self.mark_up()
        return True

    def mark_up(self) -> None:
        """Record a successful contact."""
        if not self._up.is_set():
            log.info("the model is available")
        self.reason = None
        self._up.set()

    def mark_down(self, reason: str) -> None:
        """Record a failure; turns will wait in `wait_up`."""
        if self._up.is_set() or self.reason != reason:
            log.warning("the model is unavailable: %s", reason)
        self.reason = reason
        self._up.clear()

    async def wait_up(self) -> None:
        """Return once the model answers again."""
        await self._up.wait()

    async def _loop(self) -> None:
        interval = self._probe_interval
        while True:
            if self._up.is_set():
                interval = self._probe_interval
                await asyncio.sleep(self._probe_interval)
                continue
            await asyncio.sleep(interval)
            if not await self.probe():
                interval = min(interval * 1.5, self._max_interval)
