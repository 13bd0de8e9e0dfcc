"""``evaluate_toy``: one evaluation of a 2D toy function."""

from __future__ import annotations

from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult
from evaluators.toy import TOY_FUNCTIONS, evaluate_toy

from .base import NO_TRIAL, EvaluationTool, TrialContext

__all__ = ["EvaluateToy"]


class EvaluateToy(EvaluationTool):
    name = "evaluate_toy"
    description = "Evaluate the function at (x1, x2); returns its value (lower is better)."

    def __init__(self, function: str, space: SearchSpace) -> None:
        super().__init__(space)
        if function not in TOY_FUNCTIONS:
            raise ValueError(f"unknown toy function {function!r}; valid: {sorted(TOY_FUNCTIONS)}")
        self.function = function

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        return evaluate_toy(self.function, {k: float(v) for k, v in config.items()})
