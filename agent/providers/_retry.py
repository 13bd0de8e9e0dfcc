"""Transport retries shared by the providers (tenacity), kept apart from the loop's reask of bad answers.

A provider raises :class:`TransientFault` for anything worth another try: connection errors, timeouts,
HTTP 429 (with the server's ``Retry-After``), 5xx, a CLI that exits non-zero, or a body that is not the
JSON the API promises. :func:`with_retries` runs the call again with jittered exponential backoff until it
succeeds or the call's time runs out (``RetryPolicy.deadline_s``, attempts and waits together; an attempt
still running at the deadline is cancelled), then raises :class:`~agent.errors.ProviderUnavailable` saying
what failed, how many tries it took and what to check. A ``Retry-After`` is honoured, but never past the
deadline: a server asking for longer than the time left ends the call at once. Anything else propagates at
once: errors no retry can fix (a refused key, an unknown model) are the providers' ``UserError``, and
judging the answer's content is not this layer's job.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_exception_type, wait_random_exponential

from agent._log import get_logger
from agent.errors import ProviderUnavailable

__all__ = [
    "DEFAULT_DEADLINE_S",
    "RETRYABLE_STATUS",
    "RetryPolicy",
    "TransientFault",
    "parse_retry_after",
    "with_retries",
]

T = TypeVar("T")

log = get_logger(__name__)

#: The most one call may take, retries included, unless the provider or the user says otherwise.
DEFAULT_DEADLINE_S = 120.0
RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


class TransientFault(Exception):
    """A fault that another try may cure.

    ``retry_after`` is the wait the server asked for, in seconds; ``hint`` says what the user should check
    if the fault persists.
    """

    def __init__(self, message: str, *, hint: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry one call.

    ``deadline_s``: the most the whole call may take, attempts and waits together (None: no limit).
    ``max_attempts``: at most this many attempts (None: as many as the deadline allows). The backoff before
    attempt n+1 is drawn uniformly from [0, min(``backoff_max_s``, ``backoff_base_s`` * 2**(n-1))] ("full
    jitter"), unless the server said how long to wait. ``retry_after_cap_s`` caps a ``Retry-After`` when no
    deadline does.
    """

    deadline_s: float | None = DEFAULT_DEADLINE_S
    max_attempts: int | None = None
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    retry_after_cap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.deadline_s is not None and not self.deadline_s > 0:
            raise ValueError(f"deadline_s must be positive, got {self.deadline_s}")
        if self.max_attempts is None and self.deadline_s is None:
            raise ValueError("a retry policy needs a deadline or a number of attempts")


async def _sleep(seconds: float) -> None:
    """The one place the retry layer waits (tests replace it to run instantly and record the waits)."""
    await anyio.sleep(seconds)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent or unreadable.

    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("soon") is None
    True
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
    return max(seconds, 0.0)


def _spent(state: RetryCallState) -> float:
    """Seconds the call has used: the clock's, or the waits' sum when waiting was faked (tests)."""
    return max(time.monotonic() - state.start_time, state.idle_for)


class _Retrying:
    """The tenacity hooks for one call under ``policy``; remembers why it stopped, for the message."""

    def __init__(self, what: str, policy: RetryPolicy) -> None:
        self.what = what
        self.policy = policy
        self.backoff = wait_random_exponential(multiplier=policy.backoff_base_s, max=policy.backoff_max_s)
        self.asked_too_long: float | None = None  # a Retry-After past the deadline
        self.last: RetryCallState | None = None

    def remaining(self, state: RetryCallState) -> float | None:
        if self.policy.deadline_s is None:
            return None
        return max(self.policy.deadline_s - _spent(state), 0.0)

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, TransientFault) and exc.retry_after is not None:
            if self.policy.deadline_s is None:
                return min(exc.retry_after, self.policy.retry_after_cap_s)
            return exc.retry_after
        return float(self.backoff(state))

    def stop(self, state: RetryCallState) -> bool:
        self.last = state
        if self.policy.max_attempts is not None and state.attempt_number >= self.policy.max_attempts:
            return True
        remaining = self.remaining(state)
        if remaining is None:
            return False
        # tenacity computes the wait before asking whether to stop: no wait may end past the deadline.
        if state.upcoming_sleep >= remaining:
            exc = state.outcome.exception() if state.outcome is not None else None
            if isinstance(exc, TransientFault) and exc.retry_after is not None and remaining > 0:
                self.asked_too_long = exc.retry_after
            return True
        return False

    def before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait_s = state.next_action.sleep if state.next_action is not None else 0.0
        # The first retry of a call is worth a warning; the rest of a long outage would flood the terminal.
        emit = log.warning if state.attempt_number == 1 else log.info
        emit(
            "provider_retry",
            call=self.what,
            attempt=state.attempt_number,
            wait_s=round(wait_s, 3),
            reason=str(exc),
        )

    def give_up(self, last: TransientFault) -> ProviderUnavailable:
        state = self.last
        assert state is not None
        tries = state.attempt_number
        message = f"{self.what} failed after {tries} attempt{'s' if tries != 1 else ''}"
        message += f" in {_spent(state):.0f} s: {last.message}"
        if self.asked_too_long is not None:
            message += (
                f" (the server asked to wait {self.asked_too_long:.0f} s, more than the "
                f"{self.policy.deadline_s:g} s one call may take: --provider-timeout)"
            )
        if last.hint:
            message += f". Check {last.hint}"
        return ProviderUnavailable(message)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy,
) -> T:
    """Await ``call()`` until it stops raising :class:`TransientFault` or ``policy`` runs out.

    ``what`` names the call in messages ("POST http://host/v1/chat/completions (model m)"); it must not
    contain secrets.
    """
    hooks = _Retrying(what, policy)
    retrying = AsyncRetrying(
        stop=hooks.stop,
        wait=hooks.wait,
        retry=retry_if_exception_type(TransientFault),
        sleep=lambda seconds: _sleep(seconds),
        before_sleep=hooks.before_sleep,
        reraise=False,
    )
    try:
        async for attempt in retrying:
            with attempt:
                limit = hooks.remaining(attempt.retry_state)
                try:
                    with anyio.fail_after(limit):
                        return await call()
                except TimeoutError:
                    raise TransientFault(
                        f"no answer within the {policy.deadline_s:g} s one call may take",
                        hint="that the server is up and not overloaded, or raise --provider-timeout",
                    ) from None
    except RetryError as exhausted:
        last = exhausted.last_attempt.exception()
        assert isinstance(last, TransientFault)
        raise hooks.give_up(last) from None
    raise AssertionError("unreachable: tenacity either returns, raises or stops")  # pragma: no cover
