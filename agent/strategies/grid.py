"""Numeric grids as the model sees them: a categorical parameter whose choices are numbers in increasing order
(an ordinal grid, :func:`agent.space.is_ordinal`).

The surrogate reads such a grid as the index of its choice (:mod:`agent.strategies.surrogate`). The model
reads it as the range it spans (:func:`relaxed_space`) and its answer is then moved to the nearest grid value
(:func:`project`). Shown the grid itself as a list of allowed values, a small model under schema-constrained
decoding picks the first entries: asked for "1e-3", it starts writing ``1e-``, and the only allowed value with
that prefix is the grid's smallest (``1e-05``). That is part of why the paper's loop with the 1.5B model chose
learning_rate_init = 1e-5 so often; in a range it writes the value it means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.space import (
    CategoricalParam,
    Choice,
    FloatParam,
    IntParam,
    SearchSpace,
    is_ordinal,
    nearest_index,
    reads_log,
)

__all__ = ["project", "relaxed_space"]


def relaxed_space(space: SearchSpace) -> SearchSpace:
    """``space`` with every numeric grid replaced by the range it spans (int or float, log where it reads so)."""
    params: dict[str, FloatParam | IntParam | CategoricalParam] = {}
    for name, p in space.params.items():
        if isinstance(p, CategoricalParam) and is_ordinal(p):
            low, high = p.choices[0], p.choices[-1]
            log = reads_log(float(low), float(high))
            if all(isinstance(c, int) for c in p.choices):
                params[name] = IntParam(low=int(low), high=int(high), log=log, description=p.description)
            else:
                params[name] = FloatParam(low=float(low), high=float(high), log=log, description=p.description)
        else:
            params[name] = p
    return SearchSpace(params=params)


def project(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, Choice]:
    """A configuration of the relaxed space moved onto ``space``'s grids (:func:`agent.space.nearest_index`)."""
    out: dict[str, Choice] = {}
    for name, p in space.params.items():
        value = config[name]
        if isinstance(p, CategoricalParam) and is_ordinal(p):
            out[name] = p.choices[nearest_index(p, float(value))]
        else:
            out[name] = value
    return out
