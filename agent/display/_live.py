"""The lifetime both displays share: a rich live area, redrawn from several threads, closed once whatever
happens (use the display as a context manager)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from rich.live import Live


class LiveArea:
    """Owns ``_live`` (None when not redrawing) under ``_lock``; subclasses start the live area."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._live: Live | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop redrawing (the live area is removed; the lines printed stay). Safe to call twice."""
        with self._lock:
            live, self._live = self._live, None
        if live is not None:
            live.stop()
