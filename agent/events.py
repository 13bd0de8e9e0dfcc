"""Where a study's events go (``events.jsonl``): the one protocol every layer that emits events takes, and the
stand-in that drops them, for code run without a study (tests, a sampler's dry run)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["NO_EVENTS", "EventSink", "NoEvents"]


class EventSink(Protocol):
    """Takes an event: its name and its fields (JSON values)."""

    def info(self, event: str, **fields: Any) -> Any: ...


class NoEvents:
    """An :class:`EventSink` that drops every event."""

    def info(self, event: str, **fields: Any) -> None:
        return None


NO_EVENTS: EventSink = NoEvents()
