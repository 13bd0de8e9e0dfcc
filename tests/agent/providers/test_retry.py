"""The transport retry layer: bounded by a deadline per call, honouring Retry-After within it, jittered."""

from __future__ import annotations

import time

import anyio
import pytest

from agent.errors import ProviderUnavailable, UserError
from agent.providers._retry import RetryPolicy, TransientFault, with_retries


class Flaky:
    """Raises the scripted faults in turn, then answers ``"ok"``."""

    def __init__(self, *faults: Exception) -> None:
        self.faults = list(faults)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.faults:
            raise self.faults.pop(0)
        return "ok"


def down(n: int, retry_after: float | None = None) -> list[Exception]:
    return [TransientFault("HTTP 503", hint="the server", retry_after=retry_after) for _ in range(n)]


@pytest.mark.anyio
async def test_waits_until_the_answer_comes(sleeps: list[float]) -> None:
    call = Flaky(*down(3))
    assert await with_retries(call, what="GET x", policy=RetryPolicy()) == "ok"
    assert call.calls == 4 and len(sleeps) == 3


@pytest.mark.anyio
async def test_backoff_is_jittered_exponential_and_capped(sleeps: list[float]) -> None:
    policy = RetryPolicy(deadline_s=None, max_attempts=40, backoff_base_s=0.5, backoff_max_s=4.0)
    with pytest.raises(ProviderUnavailable, match="after 40 attempts"):
        await with_retries(Flaky(*down(100)), what="GET x", policy=policy)
    assert len(sleeps) == 39
    for n, wait in enumerate(sleeps, start=1):
        assert 0 <= wait <= min(4.0, 0.5 * 2 ** (n - 1))
    assert len(set(sleeps)) > 30, "full jitter: the waits are drawn, not fixed"


@pytest.mark.anyio
async def test_the_deadline_bounds_the_waits(sleeps: list[float]) -> None:
    call = Flaky(*down(10_000))
    with pytest.raises(
        ProviderUnavailable, match=r"GET x failed after \d+ attempts in \d+ s: HTTP 503. Check the server"
    ):
        await with_retries(call, what="GET x", policy=RetryPolicy(deadline_s=30))
    assert sum(sleeps) < 30
    assert call.calls == len(sleeps) + 1


@pytest.mark.anyio
async def test_retry_after_is_honoured_within_the_deadline(sleeps: list[float]) -> None:
    call = Flaky(*down(2, retry_after=40.0))
    assert await with_retries(call, what="GET x", policy=RetryPolicy(deadline_s=120)) == "ok"
    assert sleeps == [40.0, 40.0]


@pytest.mark.anyio
async def test_retry_after_past_the_deadline_gives_up_at_once(sleeps: list[float]) -> None:
    call = Flaky(*down(1, retry_after=40.0), *down(1, retry_after=90.0))
    with pytest.raises(ProviderUnavailable, match="asked to wait 90 s, more than the 120 s"):
        await with_retries(call, what="GET x", policy=RetryPolicy(deadline_s=120))
    assert sleeps == [40.0]  # 40 s spent, 80 s left: waiting 90 s would end past the deadline


@pytest.mark.anyio
async def test_retry_after_is_capped_when_no_deadline_bounds_it(sleeps: list[float]) -> None:
    call = Flaky(*down(1, retry_after=3600.0))
    policy = RetryPolicy(deadline_s=None, max_attempts=3, retry_after_cap_s=60.0)
    assert await with_retries(call, what="GET x", policy=policy) == "ok"
    assert sleeps == [60.0]


@pytest.mark.anyio
async def test_a_hanging_attempt_is_cut_at_the_deadline() -> None:
    """The deadline is the whole call's: an attempt still running then is cancelled."""

    async def hang() -> str:
        await anyio.sleep(3600)
        return "never"

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match=r"after 1 attempt in \d+ s: no answer within the 0.5 s"):
        await with_retries(hang, what="GET x", policy=RetryPolicy(deadline_s=0.5))
    assert time.monotonic() - started < 30  # loose: an hour's attempt did not run


@pytest.mark.anyio
async def test_errors_no_retry_fixes_pass_through_at_once(sleeps: list[float]) -> None:
    call = Flaky(UserError("refused the API key"))
    with pytest.raises(UserError):
        await with_retries(call, what="GET x", policy=RetryPolicy())
    assert call.calls == 1 and sleeps == []


def test_a_policy_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="deadline or a number of attempts"):
        RetryPolicy(deadline_s=None, max_attempts=None)
    with pytest.raises(ValueError, match="positive"):
        RetryPolicy(deadline_s=0)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
