"""The circuit breaker's state machine, around a scripted provider that is down on chosen calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from agent.errors import ProviderUnavailable, UserError
from agent.providers.base import ChatMessage, Completion, Provider, Usage
from agent.providers.breaker import BreakerPolicy, CircuitBreaker

MESSAGES = [ChatMessage(role="user", content="Propose x.")]


class Backend(Provider):
    """Answers ``"ok"`` while ``up``; otherwise raises what ``fault`` says. Counts the calls it gets."""

    name = "backend"
    model = "m"

    def __init__(self) -> None:
        self.up = True
        self.fault: Exception = ProviderUnavailable("POST http://model/v1: connection refused")
        self.calls = 0
        self.probed = self.closed = False

    async def complete(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Completion:
        self.calls += 1
        if not self.up:
            raise self.fault
        return Completion(text="ok", usage=Usage(provider=self.name, model=self.model))

    async def probe(self) -> None:
        self.probed = True

    async def aclose(self) -> None:
        self.closed = True


async def outcome(breaker: CircuitBreaker) -> str:
    try:
        await breaker.complete(MESSAGES)
    except ProviderUnavailable as exc:
        return "refused" if str(exc).startswith("not asked") else "failed"
    return "ok"


@pytest.mark.anyio
async def test_opens_refuses_then_half_opens_with_a_doubling_backoff() -> None:
    backend = Backend()
    breaker = CircuitBreaker(backend, BreakerPolicy(failures_to_open=1, first_skip=1, max_skip=4))
    assert await outcome(breaker) == "ok" and breaker.state == "closed"
    backend.up = False
    seen = [await outcome(breaker) for _ in range(14)]
    assert seen == [
        "failed",  # opens: skip 1
        "refused",
        "failed",  # half-open call fails: skip 2
        "refused",
        "refused",
        "failed",  # skip 4
        *["refused"] * 4,
        "failed",  # skip 4 again: capped
        *["refused"] * 3,
    ]
    assert backend.calls == 1 + 4, "refused calls never reach the backend"
    assert breaker.state == "open" and breaker.refused == 10


@pytest.mark.anyio
async def test_an_answer_closes_it_and_the_backoff_starts_over() -> None:
    backend = Backend()
    breaker = CircuitBreaker(backend, BreakerPolicy(first_skip=2, max_skip=8))
    backend.up = False
    assert [await outcome(breaker) for _ in range(3)] == ["failed", "refused", "refused"]
    assert breaker.state == "half-open"
    backend.up = True
    assert await outcome(breaker) == "ok"
    assert breaker.state == "closed" and breaker.failures == 0
    backend.up = False
    assert [await outcome(breaker) for _ in range(3)] == ["failed", "refused", "refused"]  # 2 again, not 4


@pytest.mark.anyio
async def test_several_failures_in_a_row_before_it_opens() -> None:
    backend = Backend()
    backend.up = False
    breaker = CircuitBreaker(backend, BreakerPolicy(failures_to_open=3, first_skip=1))
    assert [await outcome(breaker) for _ in range(5)] == ["failed", "failed", "failed", "refused", "failed"]


@pytest.mark.anyio
async def test_messages_say_why_and_when_the_model_is_asked_again() -> None:
    backend = Backend()
    backend.up = False
    breaker = CircuitBreaker(backend, BreakerPolicy(first_skip=2))
    with pytest.raises(ProviderUnavailable, match="connection refused; the model is not asked for the next 2 rounds"):
        await breaker.complete(MESSAGES)
    with pytest.raises(ProviderUnavailable, match=r"not asked: .* asked again in 1 more round \(last error: .*refused"):
        await breaker.complete(MESSAGES)
    with pytest.raises(ProviderUnavailable, match="asked again next"):
        await breaker.complete(MESSAGES)


@pytest.mark.anyio
async def test_errors_no_retry_fixes_pass_through_and_count_nothing() -> None:
    backend = Backend()
    backend.up = False
    backend.fault = UserError("refused the API key; set OPENAI_API_KEY")
    breaker = CircuitBreaker(backend)
    for _ in range(3):
        with pytest.raises(UserError):
            await breaker.complete(MESSAGES)
    assert backend.calls == 3 and breaker.state == "closed"


@pytest.mark.anyio
async def test_it_is_the_provider_it_wraps() -> None:
    backend = Backend()
    async with CircuitBreaker(backend) as breaker:
        assert (breaker.name, breaker.model) == ("backend", "m")
        await breaker.probe()
    assert backend.probed and backend.closed


def test_policy_is_checked() -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(first_skip=0)
    assert [BreakerPolicy(first_skip=1, max_skip=32).skip(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 32, 32]
