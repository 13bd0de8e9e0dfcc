"""Search spaces: float and int (linear or log) and categorical parameters.

A :class:`SearchSpace` samples seeded configurations, validates proposed ones with precise per-field errors,
gives the JSON schema of a configuration (sent to providers that constrain decoding), converts to Optuna
distributions, and loads from a JSON or YAML file::

    {"learning_rate": {"type": "float", "low": 1e-4, "high": 0.1, "log": true},
     "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]}}

The grid vocabulary, defined once here: a categorical whose choices are numbers in increasing order is an
*ordinal grid* (:func:`is_ordinal`); numbers that are all positive and span more than a factor of
:data:`LOG_RATIO` read on a log scale (:func:`reads_log`); a value's nearest choice is measured on that scale
(:func:`nearest_index`). :class:`UnitEncoder` maps configurations into the unit cube on those terms, column by
column, for every Gaussian process of the package.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import numpy as np
import numpy.typing as npt
import optuna.distributions as od
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent._space_check import problems
from agent.errors import InvalidSuggestion, UserError, field_error

__all__ = [
    "LOG_RATIO",
    "CategoricalParam",
    "Choice",
    "FloatParam",
    "IntParam",
    "Param",
    "SearchSpace",
    "UnitEncoder",
    "is_ordinal",
    "nearest_index",
    "reads_log",
    "short_number",
]

Choice = str | int | float | bool


class _ParamBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""


class _RangeParam(_ParamBase):
    """A number between ``low`` and ``high`` (on a log scale when ``log``)."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_range(self.low, self.high, self.log)
        return self


class FloatParam(_RangeParam):
    type: Literal["float"] = "float"


class IntParam(_RangeParam):
    type: Literal["int"] = "int"
    low: int
    high: int


class CategoricalParam(_ParamBase):
    type: Literal["categorical"] = "categorical"
    choices: tuple[Choice, ...]

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        if not self.choices:
            raise ValueError("a categorical parameter needs at least one choice")
        if len({json.dumps(c) for c in self.choices}) != len(self.choices):
            raise ValueError(f"choices must be distinct, got {list(self.choices)}")
        return self


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


def short_number(x: float, digits: int = 6) -> str:
    """``1e-5``, not ``1e-05``: a model copies the prompt's style, and llama.cpp's JSON grammar forbids a
    leading zero in an exponent, so a copied ``1e-05`` would be cut to ``1e-0``. ``digits`` significant."""
    return re.sub(r"e([-+]?)0+(\d)", r"e\1\2", f"{x:.{digits}g}")


def _check_range(low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("low and high must be finite")
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log-scaled parameter needs low > 0, got {low}")


def _same_choice(a: Any, b: Choice) -> bool:
    """Categorical membership without Python's 1 == True == 1.0 conflation across kinds."""
    if isinstance(b, bool) or isinstance(a, bool):
        return type(a) is type(b) and a == b
    if isinstance(b, int | float) and isinstance(a, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0) if isinstance(b, float) else a == b
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class SearchSpace(BaseModel):
    """An ordered mapping of parameter name to parameter definition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: dict[str, Param]

    @model_validator(mode="after")
    def _check(self) -> SearchSpace:
        if not self.params:
            raise ValueError("a search space needs at least one parameter")
        return self

    # ---- construction -------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "search space") -> SearchSpace:
        """Build from ``{name: {"type": ..., ...}}`` (or ``{"params": {...}}``). A definition that is wrong is a
        :class:`UserError` saying what, in words, per parameter, after ``where`` (the file, the key)."""
        body = data.get("params", data) if isinstance(data, Mapping) else data
        found = problems(body)
        if found:
            raise UserError(f"{where}: {'; '.join(found)}")
        try:
            return cls.model_validate({"params": body})
        except ValidationError as exc:  # what the checks above missed; still one line naming the parameter
            raise UserError(f"{where}: {_format_errors(exc.errors(), prefix='params.')}") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        """Load a JSON or YAML file (the reference's ``--search_space FILE``); errors name the file."""
        p = Path(path)
        where = f"--search_space {p}"
        try:
            text = p.read_text()
        except OSError as exc:
            raise UserError(f"{where}: cannot read it ({exc.strerror})") from exc
        try:
            data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise UserError(f"{where}: not valid {p.suffix.lstrip('.').upper() or 'YAML'}: {exc}") from exc
        if not isinstance(data, Mapping):
            raise UserError(f"{where}: must hold a mapping of parameter names to definitions")
        return cls.from_dict(data, where=where)

    @classmethod
    def from_optuna(cls, distributions: Mapping[str, od.BaseDistribution]) -> SearchSpace:
        params: dict[str, FloatParam | IntParam | CategoricalParam] = {}
        for name, dist in distributions.items():
            if isinstance(dist, od.FloatDistribution):
                params[name] = FloatParam(low=dist.low, high=dist.high, log=dist.log)
            elif isinstance(dist, od.IntDistribution):
                params[name] = IntParam(low=dist.low, high=dist.high, log=dist.log)
            elif isinstance(dist, od.CategoricalDistribution):
                choices = tuple(c for c in dist.choices if c is not None)
                params[name] = CategoricalParam(choices=choices)
            else:
                raise UserError(f"unsupported Optuna distribution for {name!r}: {dist!r}")
        return cls(params=params)

    def to_optuna(self) -> dict[str, od.BaseDistribution]:
        out: dict[str, od.BaseDistribution] = {}
        for name, p in self.params.items():
            if isinstance(p, FloatParam):
                out[name] = od.FloatDistribution(p.low, p.high, log=p.log)
            elif isinstance(p, IntParam):
                out[name] = od.IntDistribution(p.low, p.high, log=p.log)
            else:
                out[name] = od.CategoricalDistribution(p.choices)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {name: p.model_dump(exclude_defaults=True) | {"type": p.type} for name, p in self.params.items()}

    # ---- sampling -----------------------------------------------------------------------------------

    def sample(self, rng: random.Random) -> dict[str, Choice]:
        """One configuration drawn uniformly (log-uniformly for log parameters)."""
        config: dict[str, Choice] = {}
        for name, p in self.params.items():
            if isinstance(p, FloatParam):
                if p.log:
                    v = math.exp(rng.uniform(math.log(p.low), math.log(p.high)))
                else:
                    v = rng.uniform(p.low, p.high)
                config[name] = min(max(v, p.low), p.high)  # exp(log(low)) may round just below low
            elif isinstance(p, IntParam):
                if p.log:
                    v = round(math.exp(rng.uniform(math.log(p.low), math.log(p.high))))
                    config[name] = min(max(v, p.low), p.high)
                else:
                    config[name] = rng.randint(p.low, p.high)
            else:
                config[name] = rng.choice(p.choices)
        return config

    # ---- validation ---------------------------------------------------------------------------------

    def validate_config(self, config: Any) -> dict[str, Choice]:
        """Return the canonical configuration or raise :class:`InvalidSuggestion` listing every bad field.

        Numbers must be JSON numbers (not strings), finite and in range; an int parameter accepts a float
        with no fractional part (``64.0``); categorical values must be one of the choices (numeric choices
        compare with a 1e-9 relative tolerance and come back as the choice itself).
        """
        if not isinstance(config, Mapping):
            raise InvalidSuggestion(
                "the configuration must be a JSON object",
                [field_error((), f"expected an object with keys {list(self.params)}", config)],
            )
        errors: list[dict[str, Any]] = []
        out: dict[str, Choice] = {}
        for name in config:
            if name not in self.params:
                errors.append(field_error((name,), f"unknown parameter; valid parameters: {list(self.params)}", None))
        for name, p in self.params.items():
            if name not in config:
                errors.append(field_error((name,), f"missing; {self.describe_param(name)}", None))
                continue
            value = config[name]
            problem, canonical = _check_value(p, value)
            if problem:
                errors.append(field_error((name,), problem, value))
            else:
                out[name] = canonical
        if errors:
            raise InvalidSuggestion(f"invalid configuration: {_format_errors(errors)}", errors)
        return out

    def describe_param(self, name: str) -> str:
        p = self.params[name]
        if isinstance(p, CategoricalParam):
            return "one of " + ", ".join(json.dumps(c) for c in p.choices)
        kind = "a number" if isinstance(p, FloatParam) else "an integer"
        scale = ", log scale" if p.log else ""
        return f"{kind} in [{short_number(p.low)}, {short_number(p.high)}]{scale}"

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of one configuration (every key required, nothing else allowed)."""
        props: dict[str, Any] = {}
        for name, p in self.params.items():
            if isinstance(p, CategoricalParam):
                prop: dict[str, Any] = {"enum": list(p.choices)}
            else:
                prop = {
                    "type": "number" if isinstance(p, FloatParam) else "integer",
                    "minimum": p.low,
                    "maximum": p.high,
                }
            if p.description:
                prop["description"] = p.description
            props[name] = prop
        return {
            "type": "object",
            "properties": props,
            "required": list(self.params),
            "additionalProperties": False,
        }

    def key(self, config: Mapping[str, Any]) -> str:
        """A canonical string for a configuration, to detect repeated proposals."""
        parts = {}
        for name, p in self.params.items():
            v = config.get(name)
            parts[name] = float(f"{v:.6g}") if isinstance(p, FloatParam) and _is_number(v) else v
        return json.dumps(parts, sort_keys=True)


def _check_value(p: FloatParam | IntParam | CategoricalParam, value: Any) -> tuple[str | None, Choice]:
    if isinstance(p, CategoricalParam):
        for choice in p.choices:
            if _same_choice(value, choice):
                return None, choice
        return f"not one of the choices {[c for c in p.choices]}", value
    if not _is_number(value):
        kind = "number" if isinstance(p, FloatParam) else "integer"
        return f"must be a JSON {kind}, got {type(value).__name__} {value!r:.60}", value
    if isinstance(value, float) and not math.isfinite(value):
        return "must be finite (NaN and Infinity are not allowed)", value
    if isinstance(value, int) and not p.low <= value <= p.high:  # exact: a 400-digit int overflows a float
        shown = str(value) if len(str(value)) <= 20 else f"{str(value)[:20]}... ({len(str(value))} digits)"
        return f"out of range: must be in [{p.low:g}, {p.high:g}], got {shown}", value
    if isinstance(p, IntParam):
        if isinstance(value, float):
            if not value.is_integer():
                return f"must be an integer, got {value}", value
            value = int(value)
    else:
        value = float(value)
    if not p.low <= value <= p.high:
        return f"out of range: must be in [{p.low:g}, {p.high:g}], got {value:g}", value
    return None, value


def _format_errors(errors: list[Any], prefix: str = "") -> str:
    parts = []
    for e in errors:
        loc = ".".join(str(x) for x in e.get("loc", ())).removeprefix(prefix) or "(root)"
        parts.append(f"{loc}: {str(e.get('msg')).removeprefix('Value error, ')}")
    return "; ".join(parts)


# ---- the grid vocabulary and the unit cube ----------------------------------------------------------------

#: Numbers, all positive, spanning more than this factor read on a log scale (a grid of learning rates).
LOG_RATIO = 20.0


def reads_log(low: float, high: float) -> bool:
    """Do numbers from ``low`` to ``high`` read on a log scale (all positive, spanning more than LOG_RATIO)?"""
    return low > 0 and high / low > LOG_RATIO


def is_ordinal(param: CategoricalParam) -> bool:
    """An ordinal grid: three or more numeric choices in strictly increasing order, whose neighbours are alike."""
    numbers = [float(c) for c in param.choices if _is_number(c)]
    if len(numbers) != len(param.choices) or len(numbers) < 3:
        return False
    return all(a < b for a, b in zip(numbers, numbers[1:], strict=False))


def nearest_index(param: CategoricalParam, value: float) -> int:
    """The index of the numeric choice nearest ``value``, measured on a log scale where the choices read so
    (:func:`reads_log` of their smallest and largest); a value beyond the choices lies nearest the end it
    passed; of two choices equally near, the first. Every choice must be a number and ``value`` not NaN."""
    numbers = [float(c) for c in param.choices if _is_number(c)]
    if len(numbers) != len(param.choices) or math.isnan(value):
        raise ValueError(f"no nearest choice of {list(param.choices)} to {value!r}")
    low, high = min(numbers), max(numbers)
    x = min(max(float(value), low), high)
    if reads_log(low, high):
        return min(range(len(numbers)), key=lambda i: abs(math.log(numbers[i]) - math.log(x)))
    return min(range(len(numbers)), key=lambda i: abs(numbers[i] - x))


class UnitEncoder:
    """Configurations of ``space``, restricted to ``names`` (all by default, in the space's order), as rows of
    numbers, one column per parameter, each in [0, 1] but a label's: an ordinal grid's choice index centred in
    its cell, ``(i + 0.5) / n``; a number's position in its range, on its log where declared (an integer's
    range widened by half a unit at each end); a categorical's choice index, compared by equality only
    (:attr:`is_categorical`). This is how Optuna's ``GPSampler`` normalizes the same parameters (an ordinal
    grid given to it as the integer index of its choice), so a model fitted here and one fitted there read
    the same points. A value off an ordinal grid takes its nearest choice's cell (:func:`nearest_index`)."""

    def __init__(self, space: SearchSpace, names: Sequence[str] | None = None) -> None:
        self.names = tuple(space.params if names is None else names)
        params = [space.params[n] for n in self.names]
        self._columns = [_column(p) for p in params]
        self.is_categorical: npt.NDArray[np.bool_] = np.array(
            [isinstance(p, CategoricalParam) and not is_ordinal(p) for p in params], dtype=bool
        )

    def __call__(self, configs: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float64]:
        out = np.empty((len(configs), len(self.names)), dtype=np.float64)
        for j, (name, column) in enumerate(zip(self.names, self._columns, strict=True)):
            out[:, j] = [column(c[name]) for c in configs]
        return out


def _column(p: FloatParam | IntParam | CategoricalParam) -> Callable[[Any], float]:
    """One parameter's map from its values to its column of :class:`UnitEncoder`."""
    if isinstance(p, CategoricalParam):
        n = len(p.choices)
        if is_ordinal(p):
            cells = {float(c): (i + 0.5) / n for i, c in enumerate(p.choices)}

            def grid(value: Any) -> float:
                cell = cells.get(float(value))
                return cell if cell is not None else (nearest_index(p, float(value)) + 0.5) / n

            return grid
        index = {json.dumps(c): float(i) for i, c in enumerate(p.choices)}
        return lambda value: index[json.dumps(value)]
    low, high = float(p.low), float(p.high)
    if isinstance(p, IntParam):
        low, high = low - 0.5, high + 0.5
    if p.log:
        low, high = math.log(low), math.log(high)
    log = p.log

    def number(value: Any) -> float:
        x = math.log(float(value)) if log else float(value)
        return 0.5 if high <= low else (x - low) / (high - low)

    return number
