"""A circuit breaker around any provider, so that a dead endpoint is not retried for minutes every round.

A call whose retries ran out (:class:`~agent.errors.ProviderUnavailable`, after up to ``--provider-timeout``
seconds of tries) counts as a failure. ``failures_to_open`` of them in a row open the breaker::

    closed --failures in a row--> open --`skip` calls refused--> half-open --the call answers--> closed
                                   ^                                 |
                                   +---------the call fails----------+   (skip doubles, up to max_skip)

While open, a call raises ``ProviderUnavailable`` at once, without touching the backend: the study
proposes that round without the model. The backoff is counted in calls, that is in rounds that would have
asked the model (a round asks once), so it scales with the study: one skipped round is seconds in a
tabular study and an hour in a study of long trainings. After ``skip`` refusals the next call goes through
with its full retries (half-open); if it answers the breaker closes and the backoff starts over, if not it
opens again for twice as many calls. Errors no retry fixes (a ``UserError``: a refused key, an unknown
model) pass through untouched and change nothing: they stop the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent._log import get_logger
from agent.errors import ProviderUnavailable

from .base import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, ChatMessage, Completion, Provider

__all__ = ["BreakerPolicy", "BreakerState", "CircuitBreaker"]

log = get_logger(__name__)

BreakerState = Literal["closed", "open", "half-open"]


@dataclass(frozen=True)
class BreakerPolicy:
    """When to open (``failures_to_open`` failed calls in a row) and for how many calls: ``first_skip``,
    doubling at each failure in a row after that, at most ``max_skip``."""

    failures_to_open: int = 1
    first_skip: int = 1
    max_skip: int = 32

    def __post_init__(self) -> None:
        if self.failures_to_open < 1 or self.first_skip < 1 or self.max_skip < self.first_skip:
            raise ValueError(f"invalid breaker policy {self}")

    def skip(self, openings: int) -> int:
        """Calls refused after the ``openings``-th opening in a row (1-based)."""
        return min(self.first_skip << min(openings - 1, 30), self.max_skip)


class CircuitBreaker(Provider):
    """Wraps ``provider``; same name and model, same calls, plus the breaker described in the module."""

    def __init__(self, provider: Provider, policy: BreakerPolicy | None = None) -> None:
        self.inner = provider
        self.policy = policy or BreakerPolicy()
        self.name = provider.name
        self.model = provider.model
        self.failures = 0  # failed calls in a row
        self.openings = 0  # times opened in a row (no answer in between)
        self.skip_left = 0  # calls still to refuse
        self.refused = 0  # calls refused in all
        self._last_error = ""
        self._in_flight = False

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.inner!r}, state={self.state})"

    @property
    def state(self) -> BreakerState:
        if self.skip_left > 0:
            return "open"
        return "half-open" if self.openings else "closed"

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        seed: int | None = None,
    ) -> Completion:
        if self.skip_left > 0 or (self.openings and self._in_flight):
            raise self._refuse()
        self._in_flight = True
        try:
            completion = await self.inner.complete(
                messages, json_schema=json_schema, temperature=temperature, max_tokens=max_tokens, seed=seed
            )
        except ProviderUnavailable as exc:
            raise self._failed(exc) from None
        finally:
            self._in_flight = False
        if self.openings:
            log.warning("provider_breaker_closed", provider=self.name, after_refusals=self.refused)
        self.failures = self.openings = 0
        return completion

    def _refuse(self) -> ProviderUnavailable:
        if self.skip_left > 0:
            self.skip_left -= 1
        self.refused += 1
        again = f"in {self.skip_left} more round{'s' if self.skip_left != 1 else ''}" if self.skip_left else "next"
        return ProviderUnavailable(
            f"not asked: its last {self.failures} call{'s' if self.failures != 1 else ''} failed, so the model "
            f"is asked again {again} (last error: {self._last_error})"
        )

    def _failed(self, exc: ProviderUnavailable) -> ProviderUnavailable:
        self.failures += 1
        self._last_error = str(exc)
        if self.failures < self.policy.failures_to_open:
            return exc
        self.openings += 1
        self.skip_left = self.policy.skip(self.openings)
        log.warning("provider_breaker_opened", provider=self.name, failures=self.failures, skip=self.skip_left)
        rounds = f"{self.skip_left} round{'s' if self.skip_left != 1 else ''}"
        return ProviderUnavailable(f"{exc}; the model is not asked for the next {rounds}")

    async def probe(self) -> None:
        await self.inner.probe()

    async def aclose(self) -> None:
        await self.inner.aclose()
