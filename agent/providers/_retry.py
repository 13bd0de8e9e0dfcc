"""Transport retries shared by the providers (tenacity), kept apart from the loop's reask of bad answers.

A provider raises :class:`TransientFault` for anything worth another try: connection errors, timeouts,
HTTP 429 (with the server's ``Retry-After``), 5xx, a CLI that exits non-zero, or a body that is not the
JSON the API promises. :func:`with_retries` runs the call again with jittered exponential backoff, at most
``max_attempts`` times, then raises :class:`~agent.errors.ProviderUnavailable` (or the fault's own
``ProviderError`` class for garbage bodies) saying what failed, how many tries it took and what to check.
Anything else propagates at once: judging the answer's content is not this layer's job.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from agent.errors import ProviderError, ProviderUnavailable

T = TypeVar("T")

log = structlog.get_logger(__name__)

DEFAULT_MAX_ATTEMPTS = 4
RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


class TransientFault(Exception):
    """A fault that another try may cure.

    ``retry_after`` is the wait the server asked for, in seconds; ``hint`` says what the user should check
    if the fault persists; ``final`` is the error class raised when the tries run out.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        retry_after: float | None = None,
        final: type[ProviderError] = ProviderUnavailable,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.retry_after = retry_after
        self.final = final


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry: attempts in all, the backoff's base and cap, and the cap on ``Retry-After``."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    retry_after_cap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")


async def _sleep(seconds: float) -> None:
    """The one place the retry layer waits (tests replace it to run instantly and record the waits)."""
    await anyio.sleep(seconds)


def parse_retry_after(value: str | None, *, cap_s: float, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), capped; None if absent.

    >>> parse_retry_after("3", cap_s=60)
    3.0
    >>> parse_retry_after("999", cap_s=60)
    60.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; treat a naive one as such
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), cap_s)


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_random_exponential(multiplier=policy.backoff_base_s, max=policy.backoff_max_s)

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, TransientFault) and exc.retry_after is not None:
            return min(exc.retry_after, policy.retry_after_cap_s)
        return float(backoff(state))

    return wait


def _log_retry(what: str, policy: RetryPolicy) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        wait_s = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "provider_retry",
            call=what,
            attempt=state.attempt_number,
            max_attempts=policy.max_attempts,
            wait_s=round(wait_s, 3),
            reason=str(exc),
        )

    return before_sleep


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy,
) -> T:
    """Await ``call()`` until it stops raising :class:`TransientFault`, at most ``policy.max_attempts`` times.

    ``what`` names the call in messages ("POST http://host/v1/chat/completions (model m)"); it must not
    contain secrets.
    """
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=_wait(policy),
        retry=retry_if_exception_type(TransientFault),
        sleep=lambda seconds: _sleep(seconds),
        before_sleep=_log_retry(what, policy),
        reraise=False,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await call()
    except RetryError as exhausted:
        last = exhausted.last_attempt.exception()
        assert isinstance(last, TransientFault)
        tries = exhausted.last_attempt.attempt_number
        message = f"{what} failed after {tries} attempt{'s' if tries != 1 else ''}: {last.message}"
        if last.hint:
            message += f". Check {last.hint}"
        raise last.final(message) from None
    raise AssertionError("unreachable: tenacity either returns, raises or stops")  # pragma: no cover
