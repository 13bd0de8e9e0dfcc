"""Tests for agent/strategies/grid.py: how the model sees numeric grids, and its answer moved back onto them."""

from __future__ import annotations

from agent.space import CategoricalParam, FloatParam, IntParam, SearchSpace, UnitEncoder
from agent.strategies.grid import project, relaxed_space
from agent.strategies.surrogate import encode

SPACE = SearchSpace(
    params={
        "lr": CategoricalParam(choices=(1e-5, 1.29e-4, 1.67e-3, 2.15e-2, 0.278)),
        "batch": CategoricalParam(choices=(4, 16, 64, 256)),
        "depth": CategoricalParam(choices=(1, 2, 3)),
        "smoothing": CategoricalParam(choices=(-0.1, 0.0, 0.1, 0.2)),
        "op": CategoricalParam(choices=("conv", "pool")),
        "drop": FloatParam(low=0.0, high=0.5),
    }
)


def test_grids_become_the_ranges_they_span() -> None:
    relaxed = relaxed_space(SPACE)
    assert relaxed.params["lr"] == FloatParam(low=1e-5, high=0.278, log=True)
    assert relaxed.params["batch"] == IntParam(low=4, high=256, log=True)
    assert relaxed.params["depth"] == IntParam(low=1, high=3)  # a narrow grid stays linear
    assert relaxed.params["smoothing"] == FloatParam(low=-0.1, high=0.2)
    assert relaxed.params["op"] == SPACE.params["op"] and relaxed.params["drop"] == SPACE.params["drop"]


def test_answers_move_to_the_nearest_grid_value() -> None:
    answer = {"lr": 1e-3, "batch": 30, "depth": 2, "smoothing": 0.04, "op": "pool", "drop": 0.3}
    projected = project(SPACE, answer)
    # In log, 1e-3 is nearer 1.67e-3 than 1.29e-4, and 30 nearer 16 than 64.
    assert projected == {"lr": 1.67e-3, "batch": 16, "depth": 2, "smoothing": 0.0, "op": "pool", "drop": 0.3}
    assert SPACE.validate_config(projected) == projected
    assert project(SPACE, {**answer, "lr": 1e-12, "batch": 10_000})["lr"] == 1e-5


def test_the_projection_the_surrogate_and_the_unit_encoder_agree_on_the_nearest_grid_value() -> None:
    """One rule (agent.space.nearest_index): on a grid that reads on a log scale, 38 lies nearer 64 than 16
    (a linear distance would say 16), and every reader of a value off the grid moves it there."""
    for value, expected in ((38, 64), (30, 16), (1e9, 256), (-5, 4)):
        config = {"lr": 1e-3, "batch": value, "depth": 2, "smoothing": 0.0, "op": "pool", "drop": 0.3}
        assert project(SPACE, config)["batch"] == expected
        index = SPACE.params["batch"].choices.index(expected)  # type: ignore[union-attr]
        assert encode(SPACE, config)["batch"] == index
        assert UnitEncoder(SPACE, ["batch"])([config]).tolist() == [[(index + 0.5) / 4]]
