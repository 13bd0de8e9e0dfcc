"""Fail fast on a broken setup, without stopping a study whose first trials fall in a failing region.

When the first trials a run finishes all fail the same way, the fault may be the setup's (a metric the program
does not print, a program not found, an objective raising the same error) or the configurations' (a learning
rate up to 1.0 diverges for every large value: "loss is nan" each time). Running the rest of the budget on a
broken setup would fail it the same way; stopping a healthy study for a diverging region loses it.

:class:`SetupWatch` looks at the first :data:`SETUP_TRIALS` trials a run finishes. If all failed and their
reasons are the same once numbers are set aside (a configuration's values, a line number, a duration), it
suspects the setup (:class:`BrokenStart`), and the runner evaluates one *probe*: the configuration
:func:`probe_config` chooses, far from where random or model proposals fail (the middle of every range, the
geometric middle of a log-scaled one, the middle value of a numeric grid, the choice the failing trials used
least). The probe is a trial of its own proposer (``probe``), stored and shown, outside the budget. Only if it
fails the same way is the setup broken: the runner marks the trials and the probe as setup failures, which
keep their place in the study but not in the budget, and stops with :class:`~agent.errors.BrokenSetup`; the
same command, once the setup is fixed, runs the whole budget. If the probe completes, or fails another way,
the failures were the configurations': they stay trials of the budget and the study goes on. A trial that
completes or is pruned, or failures that differ, and the watch says nothing for the rest of the run.

A broken setup therefore stops a run within 4 trials (3 and the probe).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import TrialRecord
from .space import CategoricalParam, Choice, FloatParam, SearchSpace

__all__ = ["SETUP_TRIALS", "BrokenStart", "SetupWatch", "failure_signature", "probe_config"]

#: How many first trials of a run failing the same way mean a broken setup.
SETUP_TRIALS = 3

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def failure_signature(error: str) -> str:
    """A failure's reason with its numbers set aside, so that the same fault with other values compares equal."""
    return " ".join(_NUMBER.sub("#", error).split())


@dataclass(frozen=True)
class BrokenStart:
    """The first trials of a run, all failed the same way (and the probe, once it failed that way too)."""

    numbers: tuple[int, ...]
    reason: str
    #: The probe's number, once it failed the same way.
    probe: int | None = None

    def message(self) -> str:
        """What happened, why it stopped, and what to do: the text of :class:`~agent.errors.BrokenSetup`."""
        reason = self.reason.strip().replace("\n", "\n  ")
        trials = [n for n in self.numbers if n != self.probe]
        listed = ", ".join(f"#{n}" for n in self.numbers)
        probed = (
            f", and so did a probe far from them (#{self.probe}, the middle of the space)"
            if self.probe is not None
            else ""
        )
        return (
            f"the first {len(trials)} trials of this run all failed the same way{probed}, so the setup is broken, "
            f"not the configurations; the study stopped. The reason:\n  {reason}\n"
            f"Fix what it names (the task's command, metric or objective, or what they need), then run the same "
            f"command again: trials {listed} stay in the study as setup failures and do not count toward the budget."
        )


@dataclass
class SetupWatch:
    """Watches the first trials a run finishes (see the module docstring)."""

    count: int = SETUP_TRIALS
    _failures: list[TrialRecord] = field(default_factory=list)
    _settled: bool = False
    #: The broken start a probe is to confirm (set by :meth:`seen`, cleared by :meth:`probed`).
    suspect: BrokenStart | None = None

    def seen(self, record: TrialRecord) -> BrokenStart | None:
        """Take a trial this run finished; a :class:`BrokenStart` when it completes a suspected broken start:
        the runner then evaluates :func:`probe_config` and gives its record to :meth:`probed`."""
        if self._settled:
            return None
        if record.state != "fail" or not record.error:
            self._settled = True
            return None
        self._failures.append(record)
        if len(self._failures) < self.count:
            return None
        self._settled = True
        signatures = {failure_signature(r.error or "") for r in self._failures}
        if len(signatures) != 1:
            return None
        self.suspect = BrokenStart(tuple(r.number for r in self._failures), self._failures[-1].error or "")
        return self.suspect

    def failed_configs(self) -> list[dict[str, Any]]:
        """The configurations of the suspected broken start."""
        return [r.config for r in self._failures] if self.suspect is not None else []

    def probed(self, record: TrialRecord) -> BrokenStart | None:
        """The probe's record: the broken start, the probe added, when it failed the same way; None when it did
        not (a region of the space fails, not the setup)."""
        suspect, self.suspect = self.suspect, None
        if suspect is None or record.state != "fail":
            return None
        if failure_signature(record.error or "") != failure_signature(suspect.reason):
            return None
        return BrokenStart((*suspect.numbers, record.number), suspect.reason, probe=record.number)


def probe_config(space: SearchSpace, failed: Sequence[Mapping[str, Any]] = ()) -> dict[str, Choice]:
    """A configuration far from where proposals fail: each range's middle (geometric on a log scale), a numeric
    grid's middle value (the lower of two), and of other choices the one ``failed`` used least (the first of
    those, in the space's order)."""
    config: dict[str, Choice] = {}
    for name, p in space.params.items():
        if isinstance(p, CategoricalParam):
            config[name] = _middle_choice(p, [c.get(name) for c in failed])
            continue
        middle = math.sqrt(p.low * p.high) if p.log else (p.low + p.high) / 2
        middle = min(max(middle, p.low), p.high)
        config[name] = float(middle) if isinstance(p, FloatParam) else int(min(max(round(middle), p.low), p.high))
    return config


def _middle_choice(p: CategoricalParam, used: list[Any]) -> Choice:
    numbers = [c for c in p.choices if isinstance(c, int | float) and not isinstance(c, bool)]
    if len(numbers) == len(p.choices):  # an ordinal grid
        ordered = sorted(numbers)
        return ordered[(len(ordered) - 1) // 2]
    return min(p.choices, key=lambda c: sum(1 for u in used if u == c and type(u) is type(c)))
