"""Tests for agent/sources/map_study.py: the model's mapping as a tool whose pydantic argument model gives the
schema and holds the checks, and what a wrong answer teaches it for the reask."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from agent.answer import answer_schema, parse_answer
from agent.errors import InvalidSuggestion
from agent.sources.map_study import MapStudy
from agent.sources.mapping import SpaceMapping
from agent.space import SearchSpace

from .test_mapping import KC1, KC1_SOURCE, RENAMED, RIGHT, source


def answer(parameters: dict[str, str], relevant: bool = True, **extra: object) -> str:
    return json.dumps({"tool": "map_study", "arguments": {"relevant": relevant, "parameters": parameters, **extra}})


def ask(tool: MapStudy, text: str) -> dict[str, Any]:
    return parse_answer(text, {tool.name: tool}).arguments


def wrong(tool: MapStudy, text: str) -> dict[str, str]:
    with pytest.raises(InvalidSuggestion) as caught:
        ask(tool, text)
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors}


def offered(tool: MapStudy, new: str) -> list[str]:
    p = tool.arguments_schema()["properties"]["parameters"]["properties"][new]
    return [p["const"]] if "const" in p else list(p["enum"])


def test_the_schema_is_the_argument_models_with_one_choice_of_names_per_new_parameter() -> None:
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    schema = tool.arguments_schema()
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema), "nested in the answer's schema"
    assert list(schema["properties"]) == ["relevant", "parameters", "scale"] and schema["required"] == [
        "relevant",
        "parameters",
    ]
    assert offered(tool, "init_lr") == [*KC1.space.params, "none"]
    assert schema["properties"]["scale"]["properties"]["bs"]["exclusiveMinimum"] == 0
    good = json.loads(answer(RIGHT, scale={"init_lr": 2}))
    jsonschema.validate(good, answer_schema({tool.name: tool}))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(answer({**RIGHT, "bs": "lr"})), answer_schema({tool.name: tool}))


def test_a_right_answer_is_the_typed_mapping_as_stored() -> None:
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    arguments = ask(tool, answer({**RIGHT, "weight_decay": "none"}))
    expected = SpaceMapping(relevant=True, params={**RIGHT, "weight_decay": None})
    assert tool.accepted == expected and arguments == expected.model_dump(mode="json")
    scaled = MapStudy(KC1_SOURCE, RENAMED.space)
    ask(scaled, answer(RIGHT, scale={"bs": 2, "n_units": 1}))
    assert scaled.accepted is not None and scaled.accepted.scale == {"bs": 2.0}, "a factor of 1 is no scale"


def test_parameters_named_like_pydantic_attributes_are_fine() -> None:
    odd = SearchSpace.from_dict(
        {"copy": {"type": "float", "low": 0, "high": 1}, "schema": {"type": "int", "low": 1, "high": 3}}
    )
    earlier = source(odd, [({"copy": 0.5, "schema": 2}, 0.1)])
    tool = MapStudy(earlier, odd)
    ask(tool, answer({"copy": "copy", "schema": "schema"}))
    assert tool.accepted is not None and tool.accepted.params == {"copy": "copy", "schema": "schema"}


@pytest.mark.parametrize(
    ("parameters", "extra", "where", "message"),
    [
        ({**RIGHT, "init_lr": "width"}, {}, "init_lr", "all outside init_lr's range"),
        ({**RIGHT, "bs": "learning_rate"}, {}, "bs", "Input should be 'alpha', 'batch_size'"),
        ({k: v for k, v in RIGHT.items() if k != "bs"}, {}, "bs", "Field required"),
        ({**RIGHT, "extra": "width"}, {}, "extra", "Extra inputs are not permitted"),
        (RIGHT, {"scale": {"bs": -1}}, "scale.bs", "greater than 0"),
        (RIGHT, {"scale": {"bs": "2"}}, "scale.bs", "valid number"),
    ],
)
def test_a_wrong_answer_is_reasked_with_what_is_wrong(
    parameters: dict[str, str], extra: dict[str, Any], where: str, message: str
) -> None:
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    errors = wrong(tool, answer(parameters, **extra))
    key = f"arguments.{where}" if where.startswith("scale") else f"arguments.parameters.{where}"
    assert message in errors[key], errors


def test_a_relevance_that_is_not_a_boolean_is_reasked() -> None:
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    errors = wrong(tool, json.dumps({"tool": "map_study", "arguments": {"relevant": "yes", "parameters": RIGHT}}))
    assert "arguments.relevant" in errors
    assert tool.arguments_schema()["properties"]["relevant"] == {"type": "boolean"}, "no judgment taken from it"


def test_a_pairing_rejected_once_is_no_longer_offered() -> None:
    """At temperature 0 a small model answers a reask as it answered before: the schema stops offering it."""
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    wrong(tool, answer({**RIGHT, "weight_decay": "width"}))
    assert "width" not in offered(tool, "weight_decay") and "none" in offered(tool, "weight_decay")
    again = wrong(tool, answer({**RIGHT, "weight_decay": "width"}))["arguments.parameters.weight_decay"]
    assert "all outside weight_decay's range" in again, "answered again without the schema: told why again"


def test_a_reask_keeps_the_judgment_and_the_pairings_that_passed() -> None:
    """A reask samples (to get another answer for what was wrong); what passed stays: measured on the embedded
    model, a reask that only had to fix ``weight_decay`` also turned a right mapping "not relevant"."""
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    wrong(tool, answer({**RIGHT, "weight_decay": "width"}))
    assert tool.arguments_schema()["properties"]["relevant"] == {"const": True, "type": "boolean"}
    assert offered(tool, "n_units") == ["width"]
    ask(tool, answer({**RIGHT, "weight_decay": "none"}, relevant=False))
    assert tool.accepted == SpaceMapping(relevant=True, params={**RIGHT, "weight_decay": None})


def test_an_answer_without_a_judgment_leaves_it_open() -> None:
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    wrong(tool, json.dumps({"tool": "map_study", "arguments": {"parameters": RIGHT}}))
    assert tool.arguments_schema()["properties"]["relevant"] == {"type": "boolean"}


SHARED = {"n_units": "width", "init_lr": "learning_rate_init", "n_layers": "depth", "bs": "batch_size"}


def test_an_earlier_parameter_given_to_several_is_asked_about_once_naming_them() -> None:
    """Issue 25, item 5: learning_rate_init given to init_lr and weight_decay. The reask asks which one it is
    (``which``); the others become "none", and the pairings that passed stay."""
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    errors = wrong(tool, answer({**SHARED, "weight_decay": "learning_rate_init"}))
    assert list(errors) == ["arguments.parameters"], "one error about the group"
    assert errors["arguments.parameters"] == (
        "init_lr and weight_decay are two parameters of the new study, and you gave learning_rate_init to both. "
        'Which one is the same hyperparameter as learning_rate_init? Answer "which": {"learning_rate_init": ...}: '
        'the one it is, or "both" only if init_lr and weight_decay are the same hyperparameter.'
    )
    schema = tool.arguments_schema()
    assert list(schema["properties"]) == ["relevant", "which", "parameters", "scale"]
    assert schema["properties"]["which"]["properties"]["learning_rate_init"]["enum"] == [
        "init_lr",
        "weight_decay",
        "both",
    ]
    assert set(schema["properties"]["parameters"]["properties"]) == {"n_units", "n_layers", "bs"}
    assert offered(tool, "n_units") == ["width"], "the pairings that passed are kept"
    reply = {"relevant": True, "which": {"learning_rate_init": "init_lr"}, "parameters": SHARED}
    ask(tool, json.dumps({"tool": "map_study", "arguments": reply}))
    assert tool.accepted == SpaceMapping(relevant=True, params={**SHARED, "weight_decay": None})


def test_an_earlier_parameter_the_model_says_is_all_of_them_is_kept_for_them() -> None:
    """n_units_1 and n_units_2 both from width: right, kept when the model answers "both"."""
    new = SearchSpace.from_dict(
        {
            "n_units_1": {"type": "int", "low": 16, "high": 1024, "log": True},
            "n_units_2": {"type": "int", "low": 16, "high": 1024, "log": True},
            "lr": {"type": "float", "low": 1e-5, "high": 1, "log": True},
        }
    )
    tool = MapStudy(KC1_SOURCE, new)
    assert (
        "you gave width to both"
        in wrong(tool, answer({"n_units_1": "width", "n_units_2": "width", "lr": "learning_rate_init"}))[
            "arguments.parameters"
        ]
    )
    assert offered(tool, "lr") == ["learning_rate_init"]
    reply = {"relevant": True, "which": {"width": "both"}, "parameters": {"lr": "learning_rate_init"}}
    ask(tool, json.dumps({"tool": "map_study", "arguments": reply}))
    assert tool.accepted is not None
    assert tool.accepted.params == {"n_units_1": "width", "n_units_2": "width", "lr": "learning_rate_init"}


def test_what_which_answered_stays_when_another_pairing_is_wrong() -> None:
    tool = MapStudy(KC1_SOURCE, RENAMED.space)
    errors = wrong(tool, answer({**SHARED, "n_layers": "alpha", "weight_decay": "learning_rate_init"}))
    assert set(errors) == {"arguments.parameters", "arguments.parameters.n_layers"}
    reply = {
        "relevant": True,
        "which": {"learning_rate_init": "init_lr"},
        "parameters": {**SHARED, "n_layers": "batch_size"},
    }
    assert "arguments.parameters.n_layers" in wrong(tool, json.dumps({"tool": "map_study", "arguments": reply}))
    assert offered(tool, "init_lr") == ["learning_rate_init"] and offered(tool, "weight_decay") == ["none"]
    assert "which" not in tool.arguments_schema()["properties"]
    ask(tool, answer(SHARED | {"weight_decay": "none"}))
    assert tool.accepted == SpaceMapping(relevant=True, params={**SHARED, "weight_decay": None})


def test_a_kept_pairing_that_becomes_one_of_several_is_asked_about_with_them() -> None:
    """Measured (benchmarks/transfer_mapping.py, phoneme into the digits MLP): lr <- learning_rate_init passed and
    was kept, a reask gave learning_rate_init to l2_penalty too, and the answer to "which" was refused as having
    lr in its parameters ("Extra inputs are not permitted") until the reasks ran out."""
    new = SearchSpace.from_dict(
        {
            "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
            "l2_penalty": {"type": "float", "low": 1e-6, "high": 0.1, "log": True},
        }
    )
    tool = MapStudy(KC1_SOURCE, new)
    wrong(tool, answer({"lr": "learning_rate_init", "l2_penalty": "width"}))
    assert offered(tool, "lr") == ["learning_rate_init"]
    wrong(tool, answer({"lr": "learning_rate_init", "l2_penalty": "learning_rate_init"}))
    assert tool.arguments_schema()["properties"]["parameters"]["properties"] == {}
    reply = {"relevant": True, "which": {"learning_rate_init": "lr"}, "parameters": {}}
    ask(tool, json.dumps({"tool": "map_study", "arguments": reply}))
    assert tool.accepted == SpaceMapping(relevant=True, params={"lr": "learning_rate_init", "l2_penalty": None})
