"""``train_replayed``: one training run of a learning-curve table, replayed epoch by epoch (``curves-<dataset>``)."""

from __future__ import annotations

from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult
from evaluators.replay import CurveReplay

from .base import NO_TRIAL, EvaluationTool, TrialContext

__all__ = ["TrainReplayed"]


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

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        """Replay the run: each epoch's validation error goes to ``trial.report``; a stop ends it ``pruned``."""
        return self.replay.run(config, trial.report, trial.progress)
