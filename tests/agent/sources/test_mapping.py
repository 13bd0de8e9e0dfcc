"""Tests for agent/sources/mapping.py: a mapping checked against the earlier study's best trials, and the trials
it carries into the new space."""

from __future__ import annotations

import pytest

from agent.sources.mapping import SpaceMapping, apply, check, clipped, identity
from agent.sources.reading import SourceStudy
from agent.space import SearchSpace
from agent.tasks import build_task
from agent.tasks.variants import HPOBENCH_RENAMED, renamed

KC1 = build_task("hpobench-kc1")
RENAMED = renamed(KC1, HPOBENCH_RENAMED)
RIGHT = {new: old for old, new in HPOBENCH_RENAMED.items()}


def source(
    space: SearchSpace, trials: list[tuple[dict[str, object], float]], direction: str = "minimize"
) -> SourceStudy:
    return SourceStudy(("s#x",), "an earlier study", space, direction, "val_error", tuple(trials))  # type: ignore[arg-type]


KC1_SOURCE = source(
    KC1.space,
    [
        ({"alpha": 1e-6, "batch_size": 64, "depth": 2, "learning_rate_init": 1e-3, "width": 256}, 0.1),
        ({"alpha": 1e-2, "batch_size": 16, "depth": 1, "learning_rate_init": 1e-1, "width": 16}, 0.3),
    ],
)
#: The issue's case: HPOBench's learning rate (1e-5..1) into an MLP whose range is 1e-4..0.3.
NARROW = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
        "hidden": {"type": "int", "low": 8, "high": 256, "log": True},
    }
)
WIDE_LR = source(
    KC1.space,
    [
        ({"alpha": 1e-6, "batch_size": 64, "depth": 2, "learning_rate_init": lr, "width": 256}, 0.1 + i / 100)
        for i, lr in enumerate([1e-5, 1.0, 3.5938137e-05, 1.0, 1e-5, 0.0016681006, 1.0, 1e-5, 0.27825594, 1e-5])
    ],
)


def mapping(params: dict[str, str | None], relevant: bool = True, **scale: float) -> SpaceMapping:
    return SpaceMapping(relevant=relevant, params=params, scale=scale)


def test_the_same_space_maps_itself_and_another_needs_the_model() -> None:
    assert identity(KC1.space, KC1.space) == mapping({n: n for n in KC1.space.params})
    assert identity(KC1.space, RENAMED.space) is None
    assert identity(KC1.space, build_task("hpobench-car").space) is not None, "the same grids on another dataset"


def test_a_right_mapping_carries_the_trials_into_the_new_names() -> None:
    right = mapping(RIGHT)
    assert check(right, KC1_SOURCE, RENAMED.space) == []
    data = apply(right, KC1_SOURCE, RENAMED.space, "S1")
    assert data is not None and data.values == (0.1, 0.3)
    assert data.configs[0] == {
        "n_units": 256,
        "init_lr": pytest.approx(1e-3, rel=0.7),
        "n_layers": 2,
        "bs": 64,
        "weight_decay": pytest.approx(1e-6, rel=0.5),
    }
    assert RENAMED.space.validate_config(data.configs[0]), "on the new space's grids"
    assert right.shown() == "n_units <- width, init_lr <- learning_rate_init, n_layers <- depth, bs <- batch_size, " + (
        "weight_decay <- alpha"
    )


def test_a_right_pairing_over_a_range_that_merely_differs_is_kept_and_its_values_clipped() -> None:
    """Issue 25, item 6: learning_rate_init (best values 1e-5..1, most outside) -> lr (1e-4..0.3) was sent back,
    and the most important parameter opened at the middle of its range."""
    lr = mapping({"lr": "learning_rate_init", "hidden": "width"})
    assert check(lr, WIDE_LR, NARROW) == []
    assert clipped(lr, WIDE_LR, NARROW) == {"lr": 8}, "width 256 lies in hidden's range"
    data = apply(lr, WIDE_LR, NARROW, "S1")
    assert data is not None
    assert sorted({c["lr"] for c in data.configs}) == pytest.approx([1e-4, 0.0016681006, 0.27825594, 0.3])
    (problem,) = check(mapping({"lr": "width", "hidden": None}), WIDE_LR, NARROW)
    assert (problem.news, problem.old, problem.kind) == (("lr",), "width", "pairing")
    assert "width gives 256 to 256 for the earlier study's best trials, all outside lr's range" in problem.message
    assert "these have values in that range: learning_rate_init" in problem.message


@pytest.mark.parametrize(
    ("params", "where", "message"),
    [
        ({**RIGHT, "init_lr": "width"}, "init_lr", "width gives 16 to 256 for the earlier study's best trials, all"),
        ({**RIGHT, "n_units": "alpha"}, "n_units", "outside n_units's range"),
        (
            {**RIGHT, "weight_decay": "width"},
            "weight_decay",
            "of the earlier parameters no other maps from, these have values in that range: alpha.",
        ),
    ],
)
def test_a_pairing_whose_values_all_fall_outside_is_wrong(params: dict[str, str], where: str, message: str) -> None:
    problems = check(mapping(params), KC1_SOURCE, RENAMED.space)
    assert [(p.news, p.kind) for p in problems] == [((where,), "pairing")]
    assert message in problems[0].message


def test_one_earlier_parameter_given_to_several_new_ones_is_asked_about_once() -> None:
    """Issue 25, item 5: lr given to alpha and learning_rate_init (a penalty and a step size)."""
    old = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-5, "high": 1, "log": True}})
    plain = SourceStudy(("s#plain",), "study plain", old, "minimize", None, (({"lr": 1e-3}, 0.2), ({"lr": 0.01}, 0.3)))
    shared = mapping({"alpha": "lr", "batch_size": None, "depth": None, "learning_rate_init": "lr", "width": None})
    problems = check(shared, plain, KC1.space)
    assert [(p.news, p.old, p.kind) for p in problems] == [(("alpha", "learning_rate_init"), "lr", "shared")]
    assert problems[0].message == "lr is given to alpha and learning_rate_init"
    assert check(shared, plain, KC1.space, confirmed={"lr"}) == [], "asked once: the model's next answer stands"


def test_a_scale_converts_units_and_labels_match_whatever_their_case() -> None:
    old = SearchSpace.from_dict(
        {
            "lr_percent": {"type": "float", "low": 0.01, "high": 10, "log": True},
            "opt": {"type": "categorical", "choices": ["Adam", "SGD"]},
        }
    )
    new = SearchSpace.from_dict(
        {
            "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
            "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        }
    )
    earlier = source(
        old, [({"lr_percent": 0.3, "opt": "Adam"}, 0.9), ({"lr_percent": 5.0, "opt": "SGD"}, 0.8)], "maximize"
    )
    (unscaled,) = check(mapping({"lr": "lr_percent", "optimizer": "opt"}), earlier, new)
    assert "all outside lr's range" in unscaled.message, "0.3 is no learning rate"
    scaled = mapping({"lr": "lr_percent", "optimizer": "opt"}, lr=0.01)
    assert check(scaled, earlier, new) == []
    data = apply(scaled, earlier, new, "S1")
    assert data is not None and data.direction == "maximize"
    assert data.configs == (
        {"lr": pytest.approx(0.003), "optimizer": "adam"},
        {"lr": pytest.approx(0.05), "optimizer": "sgd"},
    )
    (kinds,) = check(mapping({"lr": "lr_percent", "optimizer": "lr_percent"}, lr=0.01), earlier, new)
    assert (
        kinds.news == ("optimizer",)
        and "optimizer is one of" in kinds.message
        and "but lr_percent was numbers" in (kinds.message)
    )


def test_a_mapping_of_nothing_carries_nothing() -> None:
    assert apply(mapping({n: None for n in RENAMED.space.params}), KC1_SOURCE, RENAMED.space, "S1") is None
