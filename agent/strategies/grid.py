"""Numeric grids: a categorical parameter whose choices are numbers in increasing order.

The surrogate reads such a grid as the index of its choice (:mod:`agent.strategies.surrogate`). The model
reads it as the range it spans (:func:`relaxed_space`) and its answer is then moved to the nearest grid value
(:func:`project`). Shown the grid itself as a list of allowed values, a small model under schema-constrained
decoding picks the first entries: asked for "1e-3", it starts writing ``1e-``, and the only allowed value with
that prefix is the grid's smallest (``1e-05``). That is part of why the paper's loop with the 1.5B model chose
learning_rate_init = 1e-5 so often; in a range it writes the value it means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from agent.space import CategoricalParam, Choice, FloatParam, IntParam, SearchSpace

__all__ = ["is_ordinal", "project", "relaxed_space"]

_LOG_RATIO = 20.0  # a grid spanning more than this factor (and all positive) reads on a log scale


def is_ordinal(param: CategoricalParam) -> bool:
    """Numeric choices in strictly increasing order: a grid whose neighbours are alike."""
    numbers = [c for c in param.choices if isinstance(c, int | float) and not isinstance(c, bool)]
    if len(numbers) != len(param.choices) or len(numbers) < 3:
        return False
    return all(a < b for a, b in zip(numbers, numbers[1:], strict=False))


def _is_log(low: float, high: float) -> bool:
    return low > 0 and high / low > _LOG_RATIO


def relaxed_space(space: SearchSpace) -> SearchSpace:
    """``space`` with every numeric grid replaced by the range it spans (int or float, log where wide)."""
    params: dict[str, FloatParam | IntParam | CategoricalParam] = {}
    for name, p in space.params.items():
        if isinstance(p, CategoricalParam) and is_ordinal(p):
            low, high = p.choices[0], p.choices[-1]
            log = _is_log(float(low), float(high))
            if all(isinstance(c, int) for c in p.choices):
                params[name] = IntParam(low=int(low), high=int(high), log=log, description=p.description)
            else:
                params[name] = FloatParam(low=float(low), high=float(high), log=log, description=p.description)
        else:
            params[name] = p
    return SearchSpace(params=params)


def project(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, Choice]:
    """A configuration of the relaxed space moved onto ``space``'s grids (nearest value, in log where wide)."""
    out: dict[str, Choice] = {}
    for name, p in space.params.items():
        value = config[name]
        if isinstance(p, CategoricalParam) and is_ordinal(p):
            log = _is_log(float(p.choices[0]), float(p.choices[-1]))

            def distance(choice: Choice, value: float = float(value), log: bool = log) -> float:
                if log:
                    return abs(math.log(float(choice)) - math.log(max(value, 1e-300)))
                return abs(float(choice) - value)

            out[name] = min(p.choices, key=distance)
        else:
            out[name] = value
    return out
