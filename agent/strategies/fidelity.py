"""The Gaussian process over (configuration, step): what a model learns from trials a scheduler stopped early,
every rung at once (issue 28 item 3, the second of its two ways; the first is :mod:`agent.strategies.rungs`).

A scheduled study stops most trials at its first rungs, so few have a final value. Here every trial is one or
more points of one model: its value at each step where the scheduler judged some trial (the steps trials were
stopped at, and the last step), the step a column of its own (``log step / log last``, 0 at step 1, 1 at the
last). The model learns how values at early steps relate to final ones, configuration by configuration, and
proposes by expected improvement of the value at the last step: a configuration near one stopped at step 3
with a poor value there is expected to end poorly too, without spending the epochs to see it again.

The model is the project's one Gaussian process (:class:`~agent._optuna.GaussianProcess`, Optuna's), fitted on
the :class:`~agent.space.UnitEncoder` columns plus the step's; values pass through :func:`~.surrogate.scores`
as every fit's do. Measured against the study's complete trials alone and the highest rung: docs/multifidelity.md.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from agent._optuna import GaussianProcess
from agent.records import Direction, Transform, TrialRecord
from agent.space import Choice, SearchSpace, UnitEncoder

from .candidates import best_by_ei, distinct
from .surrogate import scores, untried, values_of
from .warp import DEFAULT, Warped

__all__ = [
    "MAX_POINTS",
    "FidelitySurface",
    "fidelity_points",
    "proposal_over_steps",
    "with_predicted_finals",
]

FloatArray = npt.NDArray[np.float64]
_SEEDS = 4  # the configurations predicted best, whose neighbours a pool of candidates explores
#: The most points one model fits. A fit costs about the cube of its points (one proposal on one core: 4 s at 730
#: points, 12 s at 1,440, 2 min at 3,200; ``benchmarks/fidelity_speed.py``); a study of some 700 scheduled trials
#: reaches it. Fewer points cost quality: cut to 100 of some 180, the default on the curve tables leaned worse at 30
#: full trials' compute (3/10/27; docs/multifidelity.md), so the cap is where proposals stay seconds, not lower.
MAX_POINTS = 1000
Point = tuple[dict[str, Choice], int, float]


def fidelity_points(
    records: Sequence[TrialRecord], direction: Direction, most: int | None = None
) -> tuple[list[Point], int] | None:
    """What the model learns from: ``(configuration, step, value)`` for each trial at each step where some trial
    was stopped or the last step, and that last step; None where no trial reported steps or none was stopped
    early (then the complete trials alone are the data, as :mod:`agent.strategies.surrogate` fits them). A
    complete trial's final value is its value at the last step; a failure is the worst value the model sees,
    there. At most ``most`` points (:data:`MAX_POINTS` unless given), chosen by :func:`_at_most`."""
    curves = [r for r in records if r.curve and r.state in ("complete", "pruned")]
    if not any(r.state == "pruned" for r in curves):
        return None
    last = max(max(r.curve) for r in curves)
    steps = {max(r.curve) for r in curves if r.state == "pruned"} | {last}
    trials: list[list[Point]] = []
    for r in records:
        if r.state not in ("complete", "pruned"):
            continue
        own = []
        if r.state == "complete" and r.value is not None and math.isfinite(r.value):
            own.append((r.config, last, r.value))
        own += [(r.config, s, v) for s, v in r.curve.items() if s in steps and s != last and math.isfinite(v)]
        if own:
            trials.append(own)
    finite = [v for t in trials for _, _, v in t]
    if finite:
        worst = min(finite) if direction == "maximize" else max(finite)
        trials += [[(r.config, last, worst)] for r in records if r.state == "fail"]
    return _at_most(trials, MAX_POINTS if most is None else most, direction), last


def _at_most(trials: Sequence[Sequence[Point]], most: int, direction: Direction) -> list[Point]:
    """The points of whole trials, at most ``most`` of them: all where they fit. Else the trials that went
    furthest come first (a complete trial's points teach how every rung's values end, a trial stopped at the
    first rung only where that rung is poor); of the furthest step not every trial fits at, half the room goes
    to the best there (the incumbent and its region stay exact) and the other half to trials spread evenly over
    the rest by their values there, so that the model still knows where the poor regions are."""
    if sum(len(t) for t in trials) <= most:
        return [p for t in trials for p in t]
    sign = -1.0 if direction == "maximize" else 1.0

    def reached(trial: Sequence[Point]) -> Point:
        return max(trial, key=lambda p: p[1])

    kept: list[Point] = []
    for step in sorted({reached(t)[1] for t in trials}, reverse=True):
        group = sorted((t for t in trials if reached(t)[1] == step), key=lambda t: sign * reached(t)[2])
        room = most - len(kept)
        if room <= 0:
            break
        if sum(len(t) for t in group) > room:
            size = len(group[0])  # the trials that stopped at one step have as many points (a failure has one)
            n_best = max(room // 2 // size, 1)
            best, rest = group[:n_best], group[n_best:]
            spread = np.linspace(0, len(rest) - 1, num=max(min(len(rest), (room - n_best * size) // size), 0))
            group = [*best, *(rest[int(round(i))] for i in spread)]
        for t in group:
            if len(kept) + len(t) <= most:
                kept += t
    return kept


class FidelitySurface:
    """The model of values at every step, read at the last one: a :class:`~.candidates.Surface` whose predictions
    are of the final score (lower is better, :func:`~.surrogate.scores`)."""

    def __init__(
        self,
        space: SearchSpace,
        gp: GaussianProcess,
        encoder: UnitEncoder,
        configs: Sequence[dict[str, Choice]],
        warped: Warped,
        direction: Direction,
    ) -> None:
        self._encoder, self._gp, self._warped, self._direction = encoder, gp, warped, direction
        mean, _ = self.predict(configs)
        order = np.argsort(mean, kind="stable")
        self._best = [configs[int(i)] for i in order[:_SEEDS]]
        #: The best final score the model believes a tried configuration has (a stopped one's included).
        self.incumbent = float(mean[order[0]])

    @classmethod
    def fit(
        cls,
        space: SearchSpace,
        records: Sequence[TrialRecord],
        direction: Direction = "minimize",
        transform: Transform | None = DEFAULT,
        min_points: int = 3,
    ) -> FidelitySurface | None:
        """The model of ``records``' values at their steps, or None: no trial reported steps, fewer than
        ``min_points`` trials with a value, or trials of another space."""
        data = fidelity_points(records, direction)
        if data is None:
            return None
        points, last = data
        encoder = UnitEncoder(space)
        try:
            configs = distinct(space, [c for c, _, _ in points], ())
            if len(configs) < min_points:
                return None
            x = np.column_stack([encoder([c for c, _, _ in points]), [_fidelity(s, last) for _, s, _ in points]])
        except (KeyError, TypeError, ValueError):
            return None  # a trial from another search space: not comparable
        warped = scores([v for _, _, v in points], direction, transform)
        gp = GaussianProcess.fit(x, warped.scores, np.append(encoder.is_categorical, False))
        return cls(space, gp, encoder, configs, warped, direction)

    def predict(self, configs: Sequence[Mapping[str, Any]]) -> tuple[FloatArray, FloatArray]:
        """The mean and variance of the final score at each configuration."""
        x = self._encoder(configs)
        return self._gp.predict(np.column_stack([x, np.ones(len(x))]))

    def seeds(self, space: SearchSpace, rng: random.Random) -> list[dict[str, Choice]]:
        """The tried configurations predicted best at the last step."""
        return list(self._best)

    def values(self, mean: FloatArray, sd: FloatArray) -> tuple[FloatArray, FloatArray]:
        return values_of(self._warped, mean, sd, self._direction)


def proposal_over_steps(
    space: SearchSpace,
    records: Sequence[TrialRecord],
    rng: random.Random,
    also_taken: Collection[str] = (),
    direction: Direction = "minimize",
    transform: Transform | None = DEFAULT,
) -> tuple[dict[str, Choice], FidelitySurface] | None:
    """The untried configuration (not in ``records`` nor ``also_taken``) of most expected improvement at the last
    step, and the model it was chosen with; None where there is no model over steps (no trial stopped early,
    too few trials)."""
    surface = FidelitySurface.fit(space, records, direction, transform)
    if surface is None:
        return None
    taken = {space.key(r.config) for r in records} | set(also_taken)
    picked = best_by_ei(space, surface, rng, taken, 1)
    return (picked[0] if picked else untried(space, taken, rng)), surface


def with_predicted_finals(
    space: SearchSpace,
    records: Sequence[TrialRecord],
    direction: Direction = "minimize",
    transform: Transform | None = DEFAULT,
) -> list[TrialRecord]:
    """``records`` as a model of final values should see them: each trial stopped early as complete, its value
    the final value the model over (configuration, step) predicts for it; unchanged where there is no such
    model (no trial stopped early, too few trials). What a study learning from earlier studies fits its own
    model on, so that its stopped trials count against the sources' (:mod:`agent.strategies.transfer`)."""
    surface = FidelitySurface.fit(space, records, direction, transform)
    stopped = [r for r in records if r.state == "pruned" and r.curve]
    if surface is None or not stopped:
        return list(records)
    mean, var = surface.predict([r.config for r in stopped])
    finals, _ = surface.values(mean, np.sqrt(np.maximum(var, 0.0)))
    predicted = {r.number: float(v) for r, v in zip(stopped, finals, strict=True)}
    return [
        r.model_copy(update={"state": "complete", "value": predicted[r.number]}) if r.number in predicted else r
        for r in records
    ]


def _fidelity(step: int, last: int) -> float:
    """A step's column: 0 at step 1, 1 at the last step, on the log of the steps (rungs a factor apart are
    equally far apart)."""
    return math.log(max(step, 1)) / math.log(last) if last > 1 else 1.0
