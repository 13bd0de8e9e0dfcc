"""Tests for agent/space.py: definitions, files, sampling, validation, JSON schema, Optuna conversion."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import optuna.distributions as od
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.errors import InvalidSuggestion, UserError
from agent.space import (
    LOG_RATIO,
    CategoricalParam,
    FloatParam,
    IntParam,
    SearchSpace,
    UnitEncoder,
    is_ordinal,
    nearest_index,
    reads_log,
)


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace(
        params={
            "lr": FloatParam(low=1e-4, high=0.1, log=True),
            "momentum": FloatParam(low=0.0, high=1.0),
            "batch": IntParam(low=16, high=256),
            "optimizer": CategoricalParam(choices=("adam", "sgd")),
        }
    )


@pytest.fixture
def good() -> dict[str, Any]:
    return {"lr": 0.01, "momentum": 0.9, "batch": 64, "optimizer": "adam"}


def _errors(space: SearchSpace, config: Any) -> list[dict[str, Any]]:
    with pytest.raises(InvalidSuggestion) as info:
        space.validate_config(config)
    assert info.value.errors, "InvalidSuggestion without per-field errors"
    return info.value.errors


def _only_error(space: SearchSpace, config: Any) -> dict[str, Any]:
    errors = _errors(space, config)
    assert len(errors) == 1, errors
    return errors[0]


# ---- definitions --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [FloatParam, IntParam])
def test_numeric_params_accept_a_range(cls: type[FloatParam] | type[IntParam]) -> None:
    assert cls(low=1, high=10).log is False
    assert cls(low=1, high=10, log=True).log is True
    assert cls(low=3, high=3).low == 3  # a single point is a valid (if dull) range


@pytest.mark.parametrize("cls", [FloatParam, IntParam])
def test_low_above_high_is_rejected(cls: type[FloatParam] | type[IntParam]) -> None:
    with pytest.raises(ValidationError, match=r"low \(5.*\) must not exceed high \(1.*\)"):
        cls(low=5, high=1)


@pytest.mark.parametrize("cls", [FloatParam, IntParam])
@pytest.mark.parametrize("low", [0, -1])
def test_log_needs_a_positive_low(cls: type[FloatParam] | type[IntParam], low: int) -> None:
    with pytest.raises(ValidationError, match="log-scaled parameter needs low > 0"):
        cls(low=low, high=10, log=True)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_float_bounds_must_be_finite(bad: float) -> None:
    with pytest.raises(ValidationError, match="finite"):
        FloatParam(low=bad, high=1.0)
    with pytest.raises(ValidationError, match="finite"):
        FloatParam(low=0.0, high=bad)


def test_unknown_definition_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="step"):
        FloatParam(low=0, high=1, step=0.1)  # type: ignore[call-arg]


def test_categorical_needs_choices() -> None:
    with pytest.raises(ValidationError, match="at least one choice"):
        CategoricalParam(choices=())


def test_categorical_choices_must_be_distinct() -> None:
    with pytest.raises(ValidationError, match="distinct"):
        CategoricalParam(choices=("adam", "sgd", "adam"))


def test_categorical_does_not_conflate_kinds() -> None:
    # 1, True and "1" are three different choices (Python would call 1 == True).
    assert CategoricalParam(choices=(1, True, "1")).choices == (1, True, "1")


def test_a_space_needs_a_parameter() -> None:
    with pytest.raises(ValidationError, match="at least one parameter"):
        SearchSpace(params={})


def test_params_are_frozen(space: SearchSpace) -> None:
    with pytest.raises(ValidationError):
        space.params["lr"].low = 1.0  # type: ignore[misc]


# ---- from_dict / from_file ----------------------------------------------------------------------------

SPACE_DICT = {
    "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
    "layers": {"type": "int", "low": 1, "high": 4},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
}
EXPECTED = SearchSpace(
    params={
        "lr": FloatParam(low=1e-4, high=0.1, log=True),
        "layers": IntParam(low=1, high=4),
        "optimizer": CategoricalParam(choices=("adam", "sgd")),
    }
)


def test_from_dict_and_to_dict_round_trip() -> None:
    assert SearchSpace.from_dict(SPACE_DICT) == EXPECTED
    assert SearchSpace.from_dict({"params": SPACE_DICT}) == EXPECTED
    assert SearchSpace.from_dict(EXPECTED.to_dict()) == EXPECTED
    assert list(SearchSpace.from_dict(SPACE_DICT).params) == ["lr", "layers", "optimizer"]  # order kept


PYDANTIC_WORDING = ("Value error", "Input tag", "validation error", "params.", "Field required", "Input should")


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"alpha": {"type": "float", "low": 100, "high": 1e-4}}, "alpha: low 100 is above high 0.0001"),
        ({"alpha": {"type": "floaty"}}, "alpha: unknown type 'floaty'; use float, int or categorical"),
        ({"alpha": {"low": 0, "high": 1}}, "alpha: missing 'type'; use float, int or categorical"),
        ({"lr": {"type": "float", "low": 0}}, "lr: missing 'high', such as {type: float,"),
        ({"n": {"type": "int"}}, "n: missing 'low' and 'high', such as {type: int, low: 1, high: 8}"),
        ({"lr": {"type": "float", "low": "small", "high": 1}}, "lr: low must be a number, got 'small'"),
        ({"lr": {"type": "float", "low": 0, "high": math.inf}}, "lr: high must be a finite number, got inf"),
        ({"n": {"type": "int", "low": 0.5, "high": 4}}, "n: low must be a whole number for an int parameter, got 0.5"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "lr: a log scale needs low above 0, got low 0"),
        ({"lr": {"type": "float", "low": 1, "high": 2, "log": "yes"}}, "lr: log must be true or false, got 'yes'"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "step": 0.1}}, "lr: unknown key 'step' for a float parameter"),
        ({"opt": {"type": "categorical"}}, "opt: missing 'choices', such as {type: categorical, choices: [adam, sgd]}"),
        ({"opt": {"type": "categorical", "choices": []}}, "opt: choices is empty; give at least one value"),
        ({"opt": {"type": "categorical", "choices": "adam"}}, "opt: choices must be a list of values"),
        ({"opt": {"type": "categorical", "choices": ["a", "a"]}}, "opt: choice 'a' is listed twice"),
        ({"opt": {"type": "categorical", "choices": [None]}}, "opt: choice None is not text, a number or true/false"),
        ({"opt": {"type": "categorical", "choices": [1], "low": 0}}, "opt: unknown key 'low' for a categorical"),
        ({"lr": 0.1}, "lr: must be a definition such as {type: float, low: 1.0e-4, high: 0.1, log: true}, got 0.1"),
        ({}, "no parameters; give at least one"),
    ],
)
def test_from_dict_errors_say_what_is_wrong_in_words(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as info:
        SearchSpace.from_dict(definition)
    assert str(info.value).startswith(f"search space: {message}"), str(info.value)
    assert not any(words in str(info.value) for words in PYDANTIC_WORDING)


def test_every_problem_is_listed_and_the_caller_says_where() -> None:
    with pytest.raises(UserError) as info:
        SearchSpace.from_dict(
            {"a": {"type": "float", "low": 2, "high": 1}, "b": {"type": "int", "low": 0}},
            where="task file t.yaml: space",
        )
    assert str(info.value) == (
        "task file t.yaml: space: a: low 2 is above high 1; b: missing 'high', such as {type: int, low: 1, high: 8}"
    )


def test_numbers_written_as_text_are_read_as_numbers() -> None:
    """PyYAML reads ``1e-4`` (no dot) as text; the space takes it as the number it spells."""
    space = SearchSpace.from_dict({"lr": {"type": "float", "low": "1e-4", "high": 0.1}})
    assert space.params["lr"].low == pytest.approx(1e-4)


def test_from_file_json(tmp_path: Path) -> None:
    path = tmp_path / "space.json"
    path.write_text(json.dumps(SPACE_DICT))
    assert SearchSpace.from_file(path) == EXPECTED
    assert SearchSpace.from_file(str(path)) == EXPECTED


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_from_file_yaml(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"space{suffix}"
    path.write_text(
        "lr: {type: float, low: 1.0e-4, high: 0.1, log: true}\n"
        "layers:\n  type: int\n  low: 1\n  high: 4\n"
        "optimizer: {type: categorical, choices: [adam, sgd]}\n"
    )
    assert SearchSpace.from_file(path) == EXPECTED


def test_from_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(UserError, match="--search_space") as info:
        SearchSpace.from_file(path)
    assert str(path) in str(info.value)
    assert "No such file" in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("space.json", '{"lr": {"type": "float",}}', "not valid JSON"),
        ("space.yaml", "lr: {type: float, low: [1\n", "not valid YAML"),
    ],
)
def test_from_file_bad_syntax(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError, match="--search_space") as info:
        SearchSpace.from_file(path)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [("space.json", "[1, 2]"), ("space.json", '"lr"'), ("space.yaml", "- lr\n- momentum\n"), ("space.yaml", "")],
)
def test_from_file_not_a_mapping(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError, match="must hold a mapping of parameter names to definitions"):
        SearchSpace.from_file(path)


def test_from_file_bad_definition(tmp_path: Path) -> None:
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}))
    with pytest.raises(UserError) as info:
        SearchSpace.from_file(path)
    assert str(info.value) == (
        f"--search_space {path}: lr: a log scale needs low above 0, got low 0; use a positive low or drop log"
    )


# ---- sampling -----------------------------------------------------------------------------------------


def test_seeded_sampling_is_reproducible(space: SearchSpace) -> None:
    first = [space.sample(random.Random(7)) for _ in range(3)]
    rng_a, rng_b = random.Random(7), random.Random(7)
    assert [space.sample(rng_a) for _ in range(20)] == [space.sample(rng_b) for _ in range(20)]
    assert first[0] == first[1] == first[2]
    rng_c = random.Random(8)
    assert [space.sample(rng_c) for _ in range(20)] != [space.sample(random.Random(7)) for _ in range(20)]


MIXED = SearchSpace(
    params={
        "lr": FloatParam(low=1e-5, high=0.3, log=True),
        "x": FloatParam(low=-5.0, high=10.0),
        "tiny": FloatParam(low=2.5, high=2.5),
        "units": IntParam(low=8, high=1024, log=True),
        "depth": IntParam(low=1, high=3),
        "act": CategoricalParam(choices=("relu", "gelu", 0.1, 3, True)),
    }
)


@settings(max_examples=50, deadline=None, database=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_samples_are_always_valid(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(5):
        config = MIXED.sample(rng)
        assert list(config) == list(MIXED.params)
        assert MIXED.validate_config(config) == config
        assert isinstance(config["units"], int) and isinstance(config["depth"], int)
        assert isinstance(config["lr"], float)


def test_log_sampling_stays_in_range_and_is_log_uniform() -> None:
    space = SearchSpace(
        params={"lr": FloatParam(low=1e-4, high=1.0, log=True), "n": IntParam(low=1, high=1000, log=True)}
    )
    rng = random.Random(0)
    samples = [space.sample(rng) for _ in range(2000)]
    assert all(1e-4 <= s["lr"] <= 1.0 for s in samples)
    assert all(1 <= s["n"] <= 1000 for s in samples)
    # Log-uniform: half the mass below the geometric midpoint (1e-2), not 1% as a linear draw would give.
    below = sum(s["lr"] < 1e-2 for s in samples) / len(samples)
    assert 0.45 < below < 0.55
    below_n = sum(s["n"] < 32 for s in samples) / len(samples)
    assert 0.4 < below_n < 0.6


class _ExtremeRandom(random.Random):
    """An RNG whose ``random()`` returns a fixed value: the ends of [0, 1) that a real RNG can reach."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        1.0 - 2**-53,
    ],
)
def test_log_sampling_stays_in_range_at_the_rng_extremes(value: float) -> None:
    space = SearchSpace(params={"lr": FloatParam(low=1e-5, high=0.1, log=True)})
    config = space.sample(_ExtremeRandom(value))
    assert 1e-5 <= config["lr"] <= 0.1
    assert space.validate_config(config) == config


def test_linear_sampling_at_the_rng_extremes() -> None:
    space = SearchSpace(params={"x": FloatParam(low=-5.0, high=10.0), "n": IntParam(low=2, high=9, log=True)})
    for value in (0.0, 1.0 - 2**-53):
        config = space.sample(_ExtremeRandom(value))
        assert space.validate_config(config) == config


# ---- validate_config ----------------------------------------------------------------------------------


def test_valid_config_comes_back_canonical(space: SearchSpace, good: dict[str, Any]) -> None:
    assert space.validate_config(good) == good
    out = space.validate_config({**good, "momentum": 1, "batch": 64.0})
    assert out["momentum"] == 1.0 and isinstance(out["momentum"], float)
    assert out["batch"] == 64 and type(out["batch"]) is int
    assert list(out) == list(space.params)


def test_bounds_are_inclusive(space: SearchSpace, good: dict[str, Any]) -> None:
    assert space.validate_config({**good, "lr": 1e-4, "batch": 16})["batch"] == 16
    assert space.validate_config({**good, "lr": 0.1, "batch": 256})["lr"] == 0.1


def test_missing_parameter(space: SearchSpace, good: dict[str, Any]) -> None:
    del good["lr"]
    err = _only_error(space, good)
    assert err["loc"] == ["lr"]
    assert err["msg"].startswith("missing")
    assert "a number in [0.0001, 0.1], log scale" in err["msg"]


def test_missing_categorical_names_its_choices(space: SearchSpace, good: dict[str, Any]) -> None:
    del good["optimizer"]
    assert _only_error(space, good)["msg"] == 'missing; one of "adam", "sgd"'


def test_extra_parameter(space: SearchSpace, good: dict[str, Any]) -> None:
    err = _only_error(space, {**good, "dropout": 0.1})
    assert err["loc"] == ["dropout"]
    assert "unknown parameter" in err["msg"]
    assert "'lr', 'momentum', 'batch', 'optimizer'" in err["msg"]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("lr", "0.1", "must be a JSON number, got str '0.1'"),
        ("batch", "64", "must be a JSON integer, got str '64'"),
        ("lr", [0.1], "must be a JSON number, got list"),
        ("lr", {"value": 0.1}, "must be a JSON number, got dict"),
        ("lr", None, "must be a JSON number, got NoneType"),
        ("lr", True, "must be a JSON number, got bool"),
        ("batch", False, "must be a JSON integer, got bool"),
        ("momentum", math.nan, "must be finite"),
        ("momentum", math.inf, "must be finite"),
        ("momentum", -math.inf, "must be finite"),
        ("batch", math.inf, "must be finite"),
        ("lr", 1.0, "out of range: must be in [0.0001, 0.1], got 1"),
        ("lr", 0.0, "out of range"),
        ("momentum", -0.01, "out of range: must be in [0, 1], got -0.01"),
        ("batch", 512, "out of range: must be in [16, 256], got 512"),
        ("batch", 8.0, "out of range"),
        ("batch", 64.5, "must be an integer, got 64.5"),
        ("optimizer", "Adam", "not one of the choices ['adam', 'sgd']"),
        ("optimizer", 1, "not one of the choices"),
        ("optimizer", None, "not one of the choices"),
    ],
)
def test_per_field_errors(space: SearchSpace, good: dict[str, Any], field: str, value: Any, fragment: str) -> None:
    err = _only_error(space, {**good, field: value})
    assert err["loc"] == [field]
    assert fragment in err["msg"]
    json.dumps(err)  # errors go back to the model and into the events log


def test_every_bad_field_is_reported_at_once(space: SearchSpace) -> None:
    with pytest.raises(InvalidSuggestion) as info:
        space.validate_config({"lr": "fast", "batch": 1000, "optimizer": "adamw", "extra": 1})
    locs = [e["loc"] for e in info.value.errors]
    assert sorted(locs) == sorted([["extra"], ["lr"], ["momentum"], ["batch"], ["optimizer"]])
    text = str(info.value)
    for name in ("lr:", "momentum:", "batch:", "optimizer:", "extra:"):
        assert name in text


@pytest.mark.parametrize("config", [[0.1, 0.9], None, "lr=0.1", 3])
def test_config_must_be_an_object(space: SearchSpace, config: Any) -> None:
    err = _only_error(space, config)
    assert err["loc"] == []
    assert "expected an object with keys ['lr', 'momentum', 'batch', 'optimizer']" in err["msg"]


def test_error_input_is_shortened(space: SearchSpace, good: dict[str, Any]) -> None:
    err = _only_error(space, {**good, "optimizer": "x" * 10_000})
    assert isinstance(err["input"], str) and len(err["input"]) <= 80
    assert len(err["msg"]) < 200


@pytest.mark.parametrize("field", ["momentum", "batch"])
def test_huge_integer_is_an_invalid_suggestion(space: SearchSpace, good: dict[str, Any], field: str) -> None:
    err = _only_error(space, {**good, field: 10**400})
    assert err["loc"] == [field]


# ---- categorical membership ---------------------------------------------------------------------------


def test_float_choices_match_within_tolerance_and_return_the_choice() -> None:
    space = SearchSpace(params={"lr": CategoricalParam(choices=(1e-5, 1e-3, 0.1))})
    near = 0.1 * (1 + 1e-12)
    assert near != 0.1
    out = space.validate_config({"lr": near})
    assert out["lr"] == 0.1
    assert out["lr"] is space.params["lr"].choices[2]  # type: ignore[union-attr]
    assert space.validate_config({"lr": 1e-3 * (1 - 5e-10)})["lr"] == 1e-3
    _only_error(space, {"lr": 0.1 * (1 + 1e-6)})
    _only_error(space, {"lr": "0.1"})


def test_int_choices() -> None:
    space = SearchSpace(params={"width": CategoricalParam(choices=(64, 128))})
    assert space.validate_config({"width": 64}) == {"width": 64}
    out = space.validate_config({"width": 128.0})
    assert out["width"] == 128 and type(out["width"]) is int  # the choice itself
    for bad in ("64", 64.5, True, None):
        err = _only_error(space, {"width": bad})
        assert "not one of the choices [64, 128]" in err["msg"]


def test_bool_is_not_a_number_choice_and_vice_versa() -> None:
    numbers = SearchSpace(params={"flag": CategoricalParam(choices=(0, 1))})
    assert numbers.validate_config({"flag": 1}) == {"flag": 1}
    _only_error(numbers, {"flag": True})
    _only_error(numbers, {"flag": False})
    bools = SearchSpace(params={"flag": CategoricalParam(choices=(True, False))})
    assert bools.validate_config({"flag": True})["flag"] is True
    _only_error(bools, {"flag": 1})
    _only_error(bools, {"flag": 0.0})
    _only_error(bools, {"flag": "true"})


def test_string_one_is_not_the_number_one() -> None:
    mixed = SearchSpace(params={"v": CategoricalParam(choices=(1, "2"))})
    _only_error(mixed, {"v": "1"})
    _only_error(mixed, {"v": 2})
    assert mixed.validate_config({"v": "2"}) == {"v": "2"}


# ---- json_schema, Optuna, key -------------------------------------------------------------------------


def test_json_schema_shape() -> None:
    space = SearchSpace(
        params={
            "lr": FloatParam(low=1e-4, high=0.1, log=True, description="learning rate"),
            "batch": IntParam(low=16, high=256),
            "optimizer": CategoricalParam(choices=("adam", "sgd")),
        }
    )
    assert space.json_schema() == {
        "type": "object",
        "properties": {
            "lr": {"type": "number", "minimum": 1e-4, "maximum": 0.1, "description": "learning rate"},
            "batch": {"type": "integer", "minimum": 16, "maximum": 256},
            "optimizer": {"enum": ["adam", "sgd"]},
        },
        "required": ["lr", "batch", "optimizer"],
        "additionalProperties": False,
    }
    json.dumps(space.json_schema())


def test_json_schema_agrees_with_validate_config(space: SearchSpace, good: dict[str, Any]) -> None:
    schema = space.json_schema()
    jsonschema.validate(good, schema)
    for bad in ({**good, "lr": 1.0}, {**good, "batch": "64"}, {**good, "x": 1}, {"lr": 0.01}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(InvalidSuggestion):
            space.validate_config(bad)


def test_to_optuna(space: SearchSpace) -> None:
    dists = space.to_optuna()
    assert dists == {
        "lr": od.FloatDistribution(1e-4, 0.1, log=True),
        "momentum": od.FloatDistribution(0.0, 1.0),
        "batch": od.IntDistribution(16, 256),
        "optimizer": od.CategoricalDistribution(("adam", "sgd")),
    }


def test_optuna_round_trip(space: SearchSpace) -> None:
    assert SearchSpace.from_optuna(space.to_optuna()) == space
    assert SearchSpace.from_optuna(MIXED.to_optuna()) == MIXED
    assert SearchSpace.from_optuna(EXPECTED.to_optuna()).to_optuna() == EXPECTED.to_optuna()


def test_from_optuna_drops_none_choices() -> None:
    space = SearchSpace.from_optuna({"act": od.CategoricalDistribution(("relu", None))})
    assert space.params["act"] == CategoricalParam(choices=("relu",))


def test_key_is_equal_for_equal_configs(space: SearchSpace, good: dict[str, Any]) -> None:
    reordered = dict(reversed(list(good.items())))
    assert space.key(good) == space.key(reordered)
    assert space.key(good) == space.key({**good, "lr": good["lr"] * (1 + 1e-9)})  # 6 significant digits
    assert space.key(good) != space.key({**good, "lr": 0.02})
    assert space.key(good) != space.key({**good, "optimizer": "sgd"})
    assert space.key(good) == space.key(space.validate_config(good))
    json.loads(space.key(good))


def test_describe_param_reads_as_a_prompt_shows_it() -> None:
    space = SearchSpace(
        params={
            "lr": FloatParam(low=1e-4, high=0.1, log=True),
            "act": CategoricalParam(choices=("relu", 0.5, True)),
        }
    )
    assert space.describe_param("lr") == "a number in [0.0001, 0.1], log scale"
    assert space.describe_param("act") == 'one of "relu", 0.5, true'


# ---- the grid vocabulary and the unit cube ----------------------------------------------------------------


def test_an_ordinal_grid_is_three_or_more_increasing_numbers() -> None:
    assert is_ordinal(CategoricalParam(choices=(1, 2, 4)))
    assert is_ordinal(CategoricalParam(choices=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1)))
    assert is_ordinal(CategoricalParam(choices=(-0.1, 0, 0.1)))
    assert not is_ordinal(CategoricalParam(choices=(4, 2, 1)))  # the user's order is not a scale
    assert not is_ordinal(CategoricalParam(choices=("a", "b", "c")))
    assert not is_ordinal(CategoricalParam(choices=(1, "b", 3)))
    assert not is_ordinal(CategoricalParam(choices=(0, True, 2)))  # a bool is not a number here
    assert not is_ordinal(CategoricalParam(choices=(1, 2)))  # two values: nothing between them to learn


def test_numbers_read_on_a_log_scale_when_positive_and_spanning_more_than_the_ratio() -> None:
    assert reads_log(1.0, LOG_RATIO * 1.01) and reads_log(1e-5, 1e-1)
    assert not reads_log(1.0, LOG_RATIO)  # exactly the ratio: linear
    assert not reads_log(0.0, 1e6) and not reads_log(-1.0, 100.0)  # not all positive


def test_the_nearest_choice_is_measured_on_the_grids_own_scale() -> None:
    wide = CategoricalParam(choices=(1, 10, 100))  # spans 100x: log
    narrow = CategoricalParam(choices=(1, 2, 3, 4))  # spans 4x: linear
    assert nearest_index(wide, 40) == 2  # log: 40 is 2.5x from 100, 4x from 10 (linear would say 10)
    assert nearest_index(wide, 3) == 0 and nearest_index(wide, 3.5) == 1  # the log midpoint is sqrt(10)
    assert nearest_index(narrow, 2.4) == 1 and nearest_index(narrow, 2.6) == 2
    unordered = CategoricalParam(choices=(100, 1, 10))  # numbers in any order (a mapping's target)
    assert unordered.choices[nearest_index(unordered, 40)] == 100


def test_a_tie_goes_to_the_first_choice() -> None:
    assert nearest_index(CategoricalParam(choices=(0, 1, 2)), 0.5) == 0
    assert nearest_index(CategoricalParam(choices=(0, 1, 2)), 1.5) == 1
    assert nearest_index(CategoricalParam(choices=(1, 4, 16, 64)), 2.0) == 0  # 2x from 1, 2x from 4


def test_a_value_off_the_grid_lies_nearest_the_end_it_passed() -> None:
    wide = CategoricalParam(choices=(1e-5, 1e-3, 1e-1))
    assert nearest_index(wide, 1e-12) == 0 and nearest_index(wide, -1.0) == 0 and nearest_index(wide, 0.0) == 0
    assert nearest_index(wide, 50.0) == 2 and nearest_index(wide, math.inf) == 2
    assert nearest_index(wide, -math.inf) == 0
    with pytest.raises(ValueError):
        nearest_index(wide, math.nan)
    with pytest.raises(ValueError):
        nearest_index(CategoricalParam(choices=(1, "b", 3)), 2.0)


GRIDS = SearchSpace(
    params={
        "lr": CategoricalParam(choices=(1e-5, 1e-4, 1e-3, 1e-2)),
        "units": IntParam(low=8, high=256, log=True),
        "depth": IntParam(low=1, high=4),
        "drop": FloatParam(low=0.0, high=0.5),
        "wd": FloatParam(low=1e-6, high=1e-2, log=True),
        "act": CategoricalParam(choices=("relu", "tanh", "gelu")),
        "one": FloatParam(low=3.0, high=3.0),
    }
)


def test_the_unit_encoder_puts_each_kind_of_parameter_in_its_column() -> None:
    encoder = UnitEncoder(GRIDS)
    x = encoder(
        [
            {"lr": 1e-5, "units": 8, "depth": 1, "drop": 0.0, "wd": 1e-6, "act": "relu", "one": 3.0},
            {"lr": 1e-2, "units": 256, "depth": 4, "drop": 0.5, "wd": 1e-2, "act": "gelu", "one": 3.0},
            {"lr": 1e-3, "units": 64, "depth": 2, "drop": 0.25, "wd": 1e-4, "act": "tanh", "one": 3.0},
        ]
    )
    assert np.allclose(x[:, 0], [0.125, 0.875, 0.625])  # a grid's index, centred in its cell
    low, high = math.log(7.5), math.log(256.5)  # an integer's range widened by half a unit at each end
    assert np.allclose(x[:, 1], [(math.log(n) - low) / (high - low) for n in (8, 256, 64)])
    assert np.allclose(x[:, 2], [0.125, 0.875, 0.375])
    assert np.allclose(x[:, 3], [0.0, 1.0, 0.5]) and np.allclose(x[:, 4], [0.0, 1.0, 0.5])
    assert x[:, 5].tolist() == [0.0, 2.0, 1.0] and x[:, 6].tolist() == [0.5] * 3
    assert encoder.is_categorical.tolist() == [False, False, False, False, False, True, False]
    assert encoder.names == tuple(GRIDS.params)


def test_the_unit_encoder_covers_a_subset_and_reads_values_off_the_grid_by_the_nearest_choice() -> None:
    part = UnitEncoder(GRIDS, ["drop", "lr"])
    assert part.names == ("drop", "lr") and part.is_categorical.tolist() == [False, False]
    # 3e-4 lies nearer 1e-3 than 1e-4 on the log scale the grid reads on (on a linear one, nearer 1e-4).
    assert part([{"drop": 0.1, "lr": 3.5e-4}]).tolist() == [[0.2, 0.625]]
