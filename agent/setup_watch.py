"""Fail fast on a broken setup: when the first trials a run finishes all failed the same way, the fault is the
setup's (a metric the program does not print, a program not found, an objective raising the same error), not
the configurations'. Running the rest of the budget would fail it the same way.

:class:`SetupWatch` looks at the first :data:`SETUP_TRIALS` trials a run finishes. If all failed and their
reasons are the same once numbers are set aside (a configuration's values, a line number, a duration), it says
so (:class:`BrokenStart`); the runner marks them as setup failures, which keep their place in the study but
not in the budget, and stops with :class:`~agent.errors.BrokenSetup`. The same command, once the setup is
fixed, runs the whole budget. A trial that completes or is pruned, or failures that differ (a learning rate
that diverges for some configurations), and the watch says nothing for the rest of the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .records import TrialRecord

__all__ = ["SETUP_TRIALS", "BrokenStart", "SetupWatch", "failure_signature"]

#: How many first trials of a run failing the same way mean a broken setup.
SETUP_TRIALS = 3

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def failure_signature(error: str) -> str:
    """A failure's reason with its numbers set aside, so that the same fault with other values compares equal."""
    return " ".join(_NUMBER.sub("#", error).split())


@dataclass(frozen=True)
class BrokenStart:
    """The first trials of a run, all failed the same way."""

    numbers: tuple[int, ...]
    reason: str

    def message(self) -> str:
        """What happened, why it stopped, and what to do: the text of :class:`~agent.errors.BrokenSetup`."""
        reason = self.reason.strip().replace("\n", "\n  ")
        listed = ", ".join(f"#{n}" for n in self.numbers)
        return (
            f"the first {len(self.numbers)} trials of this run all failed the same way, so the setup is broken, "
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

    def seen(self, record: TrialRecord, *, evaluated: bool = True) -> BrokenStart | None:
        """Take a trial this run finished; a :class:`BrokenStart` when it completes the broken start.

        ``evaluated``: False for a configuration refused before evaluation (outside the space): a strategy's
        fault, not the setup's; it ends the watch like a success.
        """
        if self._settled:
            return None
        if record.state != "fail" or not evaluated or not record.error:
            self._settled = True
            return None
        self._failures.append(record)
        if len(self._failures) < self.count:
            return None
        self._settled = True
        signatures = {failure_signature(r.error or "") for r in self._failures}
        if len(signatures) != 1:
            return None
        return BrokenStart(tuple(r.number for r in self._failures), self._failures[-1].error or "")
