"""Fixtures shared by the provider tests."""

from __future__ import annotations

import pytest

from agent.providers import _retry


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the retry layer's waits instead of sleeping; the deadline counts them as time spent."""
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(_retry, "_sleep", fake_sleep)
    return waits
