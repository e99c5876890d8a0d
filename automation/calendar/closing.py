"""`async with` for objects that hold connections: one definition instead of one per class."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self


class AsyncClosing(abc.ABC):
    """Subclasses implement `aclose`; `async with` calls it on the way out."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release what the object holds."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
