"""``evaluate_tabular``: one query of a tabular benchmark (HPOBench nn, NAS-Bench-201)."""

from __future__ import annotations

from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult
from evaluators.tabular import TabularBenchmark

from .base import NO_TRIAL, EvaluationTool, TrialContext

__all__ = ["EvaluateTabular"]


class EvaluateTabular(EvaluationTool):
    name = "evaluate_tabular"
    description = (
        "Train and validate the model with this configuration; returns the validation error (lower is better)."
    )

    def __init__(self, benchmark: TabularBenchmark, space: SearchSpace) -> None:
        super().__init__(space)
        self.benchmark = benchmark

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        return self.benchmark.evaluate(config)
