"""Tests for agent/sources/mapping.py: the model's mapping checked against the earlier study's best trials."""

from __future__ import annotations

import json

import pytest

from agent.answer import parse_answer
from agent.errors import InvalidSuggestion
from agent.sources.mapping import Mapping, MapStudy, apply, identity
from agent.sources.reading import SourceStudy
from agent.space import SearchSpace
from agent.tasks import build_task
from agent.tasks.variants import HPOBENCH_RENAMED, renamed

KC1 = build_task("hpobench-kc1")
RENAMED = renamed(KC1, HPOBENCH_RENAMED)


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
RIGHT = {new: old for old, new in HPOBENCH_RENAMED.items()}


def answer(parameters: dict[str, str], relevant: bool = True, **extra: object) -> str:
    return json.dumps({"tool": "map_study", "arguments": {"relevant": relevant, "parameters": parameters, **extra}})


def test_the_same_space_maps_itself_and_another_needs_the_model() -> None:
    assert identity(KC1.space, KC1.space) == Mapping(True, {n: n for n in KC1.space.params})
    assert identity(KC1.space, RENAMED.space) is None
    assert identity(KC1.space, build_task("hpobench-car").space) is not None, "the same grids on another dataset"


def test_a_right_mapping_is_accepted_and_carries_the_trials_into_the_new_names() -> None:
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    schema = tool.arguments_schema()
    assert schema["properties"]["parameters"]["properties"]["init_lr"]["enum"] == [*KC1.space.params, "none"]
    call = parse_answer(answer(RIGHT), {tool.name: tool})
    mapping = Mapping.from_dict(call.arguments)
    data = apply(mapping, KC1_SOURCE, RENAMED.space, "S1")
    assert data is not None and data.values == (0.1, 0.3)
    assert data.configs[0] == {
        "n_units": 256,
        "init_lr": pytest.approx(1e-3, rel=0.7),
        "n_layers": 2,
        "bs": 64,
        "weight_decay": pytest.approx(1e-6, rel=0.5),
    }
    assert RENAMED.space.validate_config(data.configs[0]), "on the new space's grids"


@pytest.mark.parametrize(
    ("parameters", "where", "message"),
    [
        (
            {**RIGHT, "init_lr": "width"},
            "init_lr",
            "width gives 16 to 256 for the earlier study's best trials, outside",
        ),
        ({**RIGHT, "n_units": "alpha"}, "n_units", "outside n_units's range"),
        (
            {**RIGHT, "weight_decay": "width"},
            "weight_decay",
            "of the earlier parameters no other maps from, these have values in that range: alpha.",
        ),
        ({**RIGHT, "bs": "learning_rate"}, "bs", "is not a parameter of the earlier study"),
        ({k: v for k, v in RIGHT.items() if k != "bs"}, "bs", "missing"),
    ],
)
def test_a_wrong_mapping_is_reasked_with_what_is_wrong(parameters: dict[str, str], where: str, message: str) -> None:
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    with pytest.raises(InvalidSuggestion) as caught:
        parse_answer(answer(parameters), {tool.name: tool})
    errors = {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors}
    assert message in errors[f"arguments.parameters.{where}"], errors


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
    tool = MapStudy(earlier, new)
    with pytest.raises(InvalidSuggestion, match="outside lr's range"):
        parse_answer(answer({"lr": "lr_percent", "optimizer": "opt"}), {tool.name: tool})  # 0.3 is no learning rate
    call = parse_answer(answer({"lr": "lr_percent", "optimizer": "opt"}, scale={"lr": 0.01}), {tool.name: tool})
    data = apply(Mapping.from_dict(call.arguments), earlier, new, "S1")
    assert data is not None and data.direction == "maximize"
    assert data.configs == (
        {"lr": pytest.approx(0.003), "optimizer": "adam"},
        {"lr": pytest.approx(0.05), "optimizer": "sgd"},
    )
    with pytest.raises(InvalidSuggestion, match="optimizer is one of .*but lr_percent was numbers"):
        parse_answer(answer({"lr": "lr_percent", "optimizer": "lr_percent"}, scale={"lr": 0.01}), {tool.name: tool})


def test_a_mapping_of_nothing_carries_nothing() -> None:
    nothing = Mapping(True, {n: None for n in RENAMED.space.params})
    assert apply(nothing, KC1_SOURCE, RENAMED.space, "S1") is None


def test_a_pairing_rejected_once_is_no_longer_offered() -> None:
    """At temperature 0 a small model answers a reask as it answered before: the schema stops offering it."""
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    with pytest.raises(InvalidSuggestion):
        parse_answer(answer({**RIGHT, "weight_decay": "width"}), {tool.name: tool})
    offered = tool.arguments_schema()["properties"]["parameters"]["properties"]
    assert "width" not in offered["weight_decay"]["enum"] and "width" in offered["n_units"]["enum"]
    assert "none" in offered["weight_decay"]["enum"]


def test_a_reask_keeps_the_judgment_and_the_pairings_that_passed() -> None:
    """A reask samples (to get another answer for what was wrong); what passed stays: measured on the embedded
    model, a reask that only had to fix ``weight_decay`` also turned a right mapping "not relevant"."""
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    with pytest.raises(InvalidSuggestion):
        parse_answer(answer({**RIGHT, "weight_decay": "width"}), {tool.name: tool})
    schema = tool.arguments_schema()["properties"]
    assert schema["relevant"] == {"enum": [True]}
    assert schema["parameters"]["properties"]["n_units"]["enum"] == ["width"]
    assert "none" in schema["parameters"]["properties"]["weight_decay"]["enum"]
    call = parse_answer(answer({**RIGHT, "weight_decay": "none"}, relevant=False), {tool.name: tool})
    assert Mapping.from_dict(call.arguments) == Mapping(True, {**RIGHT, "weight_decay": None})


def test_an_answer_without_a_judgment_leaves_it_open() -> None:
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    with pytest.raises(InvalidSuggestion):
        parse_answer(json.dumps({"tool": "map_study", "arguments": {"parameters": RIGHT}}), {tool.name: tool})
    assert tool.arguments_schema()["properties"]["relevant"] == {"type": "boolean"}
