"""``train_replayed``: one training run of a learning-curve table, replayed epoch by epoch (``curves-<dataset>``)."""

from __future__ import annotations

from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult
from evaluators.replay import CurveReplay

from .base import NO_TRIAL, EvaluationTool, TrialContext

__all__ = ["FIRST_RUNG", "TrainReplayed"]

#: The first step at which the study's scheduler may stop a replayed run: rungs at 3, 9 and 27 epochs, as
#: benchmarks/multifidelity.py measured them (with 1, a study of 30 full trials' compute is ~300 trials).
FIRST_RUNG = 3


class TrainReplayed(EvaluationTool):
    name = "train_replayed"
    description = (
        "Train the model with this configuration; returns the validation error after the last epoch it ran "
        "(lower is better)."
    )

    def __init__(self, replay: CurveReplay, space: SearchSpace) -> None:
        super().__init__(space)
        self.replay = replay
        self.max_step = replay.epochs
        self.min_step = FIRST_RUNG

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        """Replay the run: each epoch's validation error goes to ``trial.report``; a stop ends it ``pruned``."""
        return self.replay.run(config, trial.report, trial.progress)
