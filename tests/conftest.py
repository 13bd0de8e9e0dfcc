"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """The agent targets asyncio; run every ``@pytest.mark.anyio`` test on it."""
    return "asyncio"
