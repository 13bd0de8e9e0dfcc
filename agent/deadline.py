"""Time budgets (``--time-budget``): the duration a user writes, the study's clock, and the deadline a running
trial checks at each report.

- :func:`parse_duration`: ``90s``, ``30m``, ``2h``, ``1h30m``, ``1.5h`` -> seconds.
- :class:`StudyClock`: the time a study has used of its budget, in the study's process: what earlier runs
  used (stored with the study) plus this run's wall-clock time, the model's calls included (a user's hour is
  an hour). An evaluation whose result carries ``cost_s`` (a replayed table's recorded training seconds)
  counts those seconds instead of the machine's seconds it took: a virtual clock, where the proposals' real
  time still counts. Recorded seconds add up one after the other, as if the trials ran one at a time.
- :class:`Deadline`: when the budget runs out, as a wall-clock time (``time.time()``, not a monotonic clock:
  it must mean the same in another process or on another machine). Small, frozen and picklable, so it can
  travel with a trial to a worker process or a Ray task. It is one of the stop checks a running trial's
  reporter asks after each step (:class:`~agent.study.reporting.StepReporter`'s ``also_stop``), and it
  names itself (``name``), so a trial it stops is recorded as ``stopped_by: "deadline"``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["DEADLINE", "Deadline", "StudyClock", "parse_duration"]

#: What a trial stopped because the time budget ran out is marked with (``TrialRecord.stopped_by``).
DEADLINE = "deadline"

_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d*)?)h)?(?:(?P<m>\d+(?:\.\d*)?)m)?(?:(?P<s>\d+(?:\.\d*)?)s)?")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0}
_EXAMPLES = "write it as 90s, 30m, 2h or 1h30m"


def parse_duration(text: str) -> float:
    """The seconds ``text`` says: hours, minutes and seconds in that order, each a number with its unit
    (``90s``, ``30m``, ``2h``, ``1h30m``, ``1.5h``). :class:`ValueError` with one line saying how to write it."""
    cleaned = text.strip().lower().replace(" ", "")
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or match is None:
        raise ValueError(f"{text!r} is not a duration; {_EXAMPLES}")
    seconds = sum(float(match[unit]) * scale for unit, scale in _UNIT_S.items() if match[unit] is not None)
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{text!r}: a time budget must be longer than 0 seconds; {_EXAMPLES}")
    return seconds


@dataclass(frozen=True)
class Deadline:
    """A running trial's deadline: the wall-clock time ``at`` (seconds since the epoch, as ``time.time()``)
    when the study's time budget runs out. ``clock``: what tells the time (a test's own; picklable)."""

    at: float
    clock: Callable[[], float] = time.time
    #: Who stopped a trial this check stops (``TrialRecord.stopped_by``).
    name: ClassVar[str] = DEADLINE

    def __call__(self) -> bool:
        return self.expired()

    def expired(self) -> bool:
        """Has the time budget run out? (Asked at each report of a running trial.)"""
        return self.clock() >= self.at

    def left_s(self) -> float:
        return max(0.0, self.at - self.clock())


class StudyClock:
    """The time a study has used of its budget (module docstring). ``budget_s`` None: no time budget (the clock
    still counts, for the record); ``used_s``: what earlier runs used; ``clock``: what tells the time
    (``time.time``; a test's own)."""

    def __init__(
        self, budget_s: float | None = None, *, used_s: float = 0.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.budget_s = budget_s
        self.before_s = used_s
        self._clock = clock
        self._started = clock()
        self._virtual_s = 0.0  # recorded seconds counted in place of the machine's

    def used_s(self) -> float:
        """Seconds used: earlier runs', this run's wall time, recorded costs in place of the machine's."""
        return self.before_s + max(0.0, self._clock() - self._started + self._virtual_s)

    def counted(self, machine_s: float, cost_s: float | None) -> None:
        """An evaluation took ``machine_s`` here; where it recorded its own cost (``cost_s``), that counts."""
        if cost_s is not None and math.isfinite(cost_s):
            self._virtual_s += max(0.0, cost_s) - machine_s

    def left_s(self) -> float | None:
        """Seconds left of the budget (0 once spent); None without a time budget."""
        return None if self.budget_s is None else max(0.0, self.budget_s - self.used_s())

    def left_share(self) -> float | None:
        """The share of the budget left, from 1 (none used) to 0 (spent); None without a time budget."""
        left = self.left_s()
        return None if left is None or self.budget_s is None else left / self.budget_s

    def spent(self) -> bool:
        """Is the time budget spent? (No trial starts once it is.)"""
        left = self.left_s()
        return left is not None and left <= 0.0

    def deadline(self) -> Deadline | None:
        """When the budget runs out, as a wall-clock time a trial (in any process) can check; None without a
        time budget. Fixed when asked: a trial's deadline is taken when it starts."""
        left = self.left_s()
        return None if left is None else Deadline(at=self._clock() + left, clock=self._clock)
