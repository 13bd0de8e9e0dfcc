"""The agent's errors, in one small hierarchy.

AgentError                  anything this package raises on purpose
├── UserError               bad configuration: the message names the flag or env var to fix (also what no
│   │                       retry fixes: a refused API key, an unknown model, a missing executable, a
│   │                       corrupt model file; the run stops at once)
│   └── StudyError          the stored study was made for another task (space, metric, direction) or learns
│                           from other sources than this run names: refused before anything is written
├── ProviderError           the LLM failed at the transport level (a request it rejects as sent)
│   └── ProviderUnavailable a call's retries ran out within its time (connection refused, timeouts, 429,
│                           5xx, garbage bodies, CLI exit != 0), or the circuit breaker held the call back:
│                           the study proposes that round without the model
├── InvalidSuggestion       a proposal failed validation; carries per-field errors for the reask
├── ReaskBudgetExhausted    the model kept answering invalid proposals (`--on-invalid stop`)
├── BrokenSetup             the first trials of a run all failed the same way (a metric the program does not
│                           print, a program not found, the same exception), and so did a probe far from
│                           them: the setup, not the configurations, is wrong; the study stops, and those
│                           trials do not count
└── BrokenStrategy          a strategy's proposals broke the search space several times in a row (the door
                            refused them); the study stops
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AgentError",
    "BrokenSetup",
    "BrokenStrategy",
    "ContextOverflow",
    "InvalidSuggestion",
    "ProviderError",
    "ProviderUnavailable",
    "ReaskBudgetExhausted",
    "StudyError",
    "UserError",
    "field_error",
]


class AgentError(Exception):
    """Base of every error this package raises on purpose."""


class UserError(AgentError):
    """Bad configuration or input; the message says which flag or env var to change."""


class ProviderError(AgentError):
    """The provider failed at the transport level (not a bad answer: that is a reask)."""


class ProviderUnavailable(ProviderError):
    """Transport retries ran out within the call's time, or the circuit breaker held the call back."""


class ContextOverflow(ProviderError):
    """The server refused the prompt as longer than the model's context window (no retry makes it fit)."""


class InvalidSuggestion(AgentError):
    """A proposal that failed validation.

    ``errors`` is a list of ``{"loc": [...], "msg": str, "input": ...}`` dicts in pydantic's shape, so the
    reask can show the model exactly which field is wrong.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = errors or []


def field_error(loc: Sequence[Any], msg: str, value: Any = None) -> dict[str, Any]:
    """One entry of :attr:`InvalidSuggestion.errors`: where (``loc``, pydantic's path), what is wrong, and the
    input (numbers as they are, anything else as a short ``repr``: the errors are shown and stored)."""
    shown = value if value is None or isinstance(value, int | float | bool) else repr(value)[:80]
    return {"loc": list(loc), "msg": msg, "input": shown}


class ReaskBudgetExhausted(AgentError):
    """The model gave no valid proposal within ``--max-retries`` reasks and ``--on-invalid stop`` is set."""


class BrokenSetup(AgentError):
    """The first trials of a run all failed the same way; the message gives the reason and what to do."""


class BrokenStrategy(AgentError):
    """A strategy proposed configurations outside the search space several times in a row
    (:mod:`agent.study.door`); the message names it."""


class StudyError(UserError):
    """The stored study does not match this run (another task, space, metric or direction, other sources): a
    user error, refused before anything is written; the message says to choose another ``--save_dir``."""
