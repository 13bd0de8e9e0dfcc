"""The package's log lines: the standard :mod:`logging` module, under the ``agent`` logger.

A program that uses the agent as a library decides what it sees, as with httpx or Optuna: the ``agent``
logger passes on warnings and errors (a provider retried, the circuit breaker opened) and nothing below
until asked (``logging.getLogger("agent").setLevel(logging.INFO)``; :mod:`agent` sets only that logger's
own level, at import); where they go is the program's logging setup. The CLI prints them on stderr. No
global setting of ``logging``, structlog or Optuna is changed. A study's own events go to its
``events.jsonl`` (:class:`agent.study.StudyStore`), not here.

Call sites log an event and its fields, ``log.warning("provider_retry", attempt=2, wait_s=0.5)``; structlog
renders them into one line (``provider_retry attempt=2 wait_s=0.5``) for the standard logger, through a
logger of its own made here, never through ``structlog.configure``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog

__all__ = ["ROOT", "get_logger", "optuna_quiet", "render"]

#: The logger every module of the package logs under.
ROOT = "agent"


def get_logger(name: str) -> Any:
    """The logger of module ``name`` (under ``agent``), taking an event and key-value fields."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[structlog.stdlib.filter_by_level, render],
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
    )


def render(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    """``event key=value ...``; a text holding spaces is quoted."""
    fields = dict(event_dict)
    parts = [str(fields.pop("event", ""))]
    for key, value in fields.items():
        shown = repr(value) if isinstance(value, str) and (not value or any(c.isspace() for c in value)) else value
        parts.append(f"{key}={shown}")
    return " ".join(parts)


class _ThisThreadQuiet(logging.Filter):
    """Leaves out Optuna's informational lines logged on the threads inside :func:`optuna_quiet`, and the
    warnings its Gaussian process gives when it falls back (kernel parameters it could not fit on many equal
    values, a local search that did not converge): a private model's fallback is no concern of the program's."""

    #: Each logger, and the highest level of its records left out inside.
    _LOGGERS = {
        "optuna.storages._in_memory": logging.INFO,
        "optuna.study.study": logging.INFO,
        "optuna._gp.gp": logging.WARNING,
        "optuna._gp.optim_mixed": logging.WARNING,
        "optuna._gp.batched_lbfgsb": logging.WARNING,
        "optuna.samplers._gp.sampler": logging.WARNING,
    }

    def __init__(self) -> None:
        super().__init__()
        self._inside: dict[int, int] = {}
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if not self._inside:
                for name in self._LOGGERS:
                    logging.getLogger(name).addFilter(self)
            me = threading.get_ident()
            self._inside[me] = self._inside.get(me, 0) + 1

    def leave(self) -> None:
        with self._lock:
            me = threading.get_ident()
            self._inside[me] -= 1
            if not self._inside[me]:
                del self._inside[me]
            if not self._inside:
                for name in self._LOGGERS:
                    logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > self._LOGGERS.get(record.name, logging.INFO) or record.thread not in self._inside


_QUIET = _ThisThreadQuiet()


@contextlib.contextmanager
def optuna_quiet() -> Iterator[None]:
    """Optuna's informational lines ("A new study created in memory") and its Gaussian process's fallback
    warnings left out on this thread while inside: a strategy's private in-memory studies and models are no
    concern of the program's; its own studies still say them, and no setting is changed once the block is
    left."""
    _QUIET.enter()
    try:
        yield
    finally:
        _QUIET.leave()
