"""The study's door: every configuration is checked once against the task's space before it is claimed.

Whoever proposed it (the model, a built-in strategy, a strategy of an installed package, Optuna's sampler, a
probe of the setup), a configuration enters the study here: :meth:`StudyStore.claim
<agent.study.store.StudyStore.claim>` admits it (:func:`admit`) before it writes anything, and a dead
worker's trial is admitted again before it is adopted (an older version may have left it half written).
Admitted, it is trusted: nothing later checks it again, and records this project wrote are trusted when read
back. Trials of a user's plain Optuna study, which :class:`~agent.sampler.StrategySampler` reads, are
checked once, when first read.

This is not where a model's answer is parsed. The model's text becomes data in the conversation
(:mod:`agent.answer`, ``ConfigTool.validate_arguments``), against the space the model was shown, and a
wrong answer is sent back to the model with what is wrong (the reask, ``--max-retries``, ``--on-invalid``).
That is parsing; the door checks data, whatever its origin, against the space of the study it enters.

A proposal the door refuses is not a trial: the round falls back to the study's sampler, with one warning
naming the strategy and what was wrong (:class:`Strikes`). A strategy whose proposals are refused
:data:`STRIKES` times in a row stops the run (:class:`~agent.errors.BrokenStrategy`, exit 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.errors import BrokenStrategy, InvalidSuggestion
from agent.space import Choice, SearchSpace

__all__ = ["STRIKES", "Strikes", "admit"]

#: Refused proposals of one strategy in a row that stop the run.
STRIKES = 3


def admit(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, Choice]:
    """The canonical configuration, or :class:`~agent.errors.InvalidSuggestion` naming every field that breaks
    ``space``: a missing or unknown parameter, a value outside its range, NaN or infinity, a categorical
    value not among the choices, text where a number belongs."""
    return space.validate_config(config)


class Strikes:
    """Refused proposals of one strategy in a row: each is a warning; the :data:`STRIKES`-th stops the run."""

    def __init__(
        self,
        strategy: str,
        limit: int = STRIKES,
        advice: str = "fix the strategy or choose another --strategy; the trials so far are kept, and the same "
        "command resumes",
    ) -> None:
        self.strategy = strategy
        self.limit = limit
        self.advice = advice
        self.count = 0

    def refused(self, exc: InvalidSuggestion) -> str:
        """Count a refused proposal; the warning to show, or :class:`~agent.errors.BrokenStrategy` once the
        strategy has had ``limit`` proposals refused in a row."""
        self.count += 1
        what = str(exc).removeprefix("invalid configuration: ")
        if self.count >= self.limit:
            raise BrokenStrategy(
                f"strategy {self.strategy!r} proposed {self.count} configurations in a row that break the search "
                f"space (the last: {what}); the study stopped: {self.advice}"
            )
        return (
            f"strategy {self.strategy!r} proposed a configuration that breaks the search space ({what}); "
            "the study's sampler draws this round's configuration instead"
        )

    def admitted(self) -> None:
        """A proposal of the strategy passed the door: the count starts again."""
        self.count = 0
