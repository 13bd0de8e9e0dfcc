"""How an earlier study's parameters map into the new study's space: names, scales, what a missing one becomes.

A :class:`Mapping` says, for each parameter of the new space, which parameter of the earlier study means the
same (or none) and by what factor its values convert (units: a percentage into a fraction, milliseconds into
seconds). A source with the same parameter names and domains maps to itself without a model
(:func:`identity`); the model answers the others through the :class:`MapStudy` tool, whose answer is
validated like every other: a name the earlier study lacks, a number where the new study has labels, or
values that land outside the new space for most of the earlier study's best trials are errors sent back to the
model (:func:`check`), and a pairing rejected once is no longer offered to it. :func:`apply` turns a source's
trials into the new space's terms (:class:`~agent.records.SourceData`): values clipped into range and moved
onto grids, labels matched, trials whose labels match nothing left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from typing import Any

from agent.errors import InvalidSuggestion
from agent.records import SourceData
from agent.space import CategoricalParam, Choice, FloatParam, IntParam, SearchSpace
from tools.base import Tool

from .reading import SourceStudy

__all__ = ["NONE", "Mapping", "MapStudy", "apply", "check", "identity"]

#: What the model answers for a parameter the earlier study did not have.
NONE = "none"
#: Of the earlier study's trials, the best ones a mapping is checked against (and the model is shown).
CHECKED = 10
_LOG_RATIO = 20.0
_SLACK = 0.1  # a mapped value this far (a share of the range, of its log where wide) outside still counts in


@dataclass(frozen=True)
class Mapping:
    """``params[new] = earlier`` (None: the earlier study had no such parameter); ``scale[new]``: the factor
    turning the earlier study's value into the new one's (1 when absent). ``relevant``: the model's judgment."""

    relevant: bool
    params: dict[str, str | None]
    scale: dict[str, float] = field(default_factory=dict)

    @property
    def mapped(self) -> list[str]:
        return [new for new, old in self.params.items() if old is not None]

    def to_dict(self) -> dict[str, Any]:
        return {"relevant": self.relevant, "params": dict(self.params), "scale": dict(self.scale)}

    @classmethod
    def from_dict(cls, data: AnyMapping[str, Any]) -> Mapping:
        return cls(bool(data["relevant"]), dict(data["params"]), {k: float(v) for k, v in data["scale"].items()})


def identity(source: SearchSpace, target: SearchSpace) -> Mapping | None:
    """The mapping of a source with the same parameter names and domains, which needs no model; else None."""
    same = set(source.params) == set(target.params) and all(
        source.params[n].model_dump() == target.params[n].model_dump() for n in target.params
    )
    return Mapping(True, {n: n for n in target.params}) if same else None


class MapStudy(Tool):
    """The model's answer about one earlier study: is it relevant, and how do its parameters map."""

    name = "map_study"
    description = (
        "Say whether the earlier study is relevant to the new one and, for each parameter of the new study, "
        "which parameter of the earlier study means the same (or none)."
    )

    def __init__(self, source: SourceStudy, target: SearchSpace) -> None:
        self.source = source
        self.target = target
        #: (new, earlier) pairs an answer gave and the check rejected: the schema no longer offers them, so a
        #: model under constrained decoding cannot answer a reask with the same mistake.
        self.rejected: set[tuple[str, str]] = set()
        #: What an answer settled, kept through the reasks (which sample, to get another answer for what was
        #: wrong): the judgment of relevance (the first answer's, at temperature 0; measured: a reask that only
        #: had to fix ``weight_decay`` turned a right mapping "not relevant") and the pairings that passed.
        self.relevant: bool | None = None
        self.kept: dict[str, str] = {}

    def arguments_schema(self) -> dict[str, Any]:
        def names(new: str) -> list[str]:
            if new in self.kept:
                return [self.kept[new]]
            return [old for old in self.source.space.params if (new, old) not in self.rejected] + [NONE]

        relevant: dict[str, Any] = {"type": "boolean"} if self.relevant is None else {"enum": [self.relevant]}
        return {
            "type": "object",
            "properties": {
                "relevant": relevant,
                "parameters": {
                    "type": "object",
                    "properties": {n: {"enum": names(n)} for n in self.target.params},
                    "required": list(self.target.params),
                    "additionalProperties": False,
                },
                "scale": {
                    "type": "object",
                    "properties": {n: {"type": "number", "exclusiveMinimum": 0} for n in self.target.params},
                    "additionalProperties": False,
                },
            },
            "required": ["relevant", "parameters"],
            "additionalProperties": False,
        }

    def example_arguments(self) -> dict[str, Any] | None:
        first = next(iter(self.target.params))
        return {"relevant": True, "parameters": {first: next(iter(self.source.space.params))}}

    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        """The mapping as data (:meth:`Mapping.to_dict`); every problem an error the model is shown."""
        errors: list[dict[str, Any]] = []
        if not isinstance(arguments, dict):
            raise InvalidSuggestion("not an object", [_err([], 'expected {"relevant": ..., "parameters": {...}}')])
        for key in arguments:
            if key not in ("relevant", "parameters", "scale"):
                errors.append(_err([key], 'unexpected key; the arguments are "relevant", "parameters" and "scale"'))
        relevant = arguments.get("relevant") if self.relevant is None else self.relevant
        if not isinstance(relevant, bool):
            errors.append(_err(["relevant"], "must be true or false"))
        params: dict[str, str | None] = {}
        given = arguments.get("parameters")
        if not isinstance(given, dict):
            errors.append(_err(["parameters"], f"must be an object with one key per new parameter: {self._new()}"))
            given = {}
        for name in given:
            if name not in self.target.params:
                errors.append(_err(["parameters", name], f"not a parameter of the new study ({self._new()})"))
        for name in self.target.params:
            old = given.get(name)
            if name not in given:
                errors.append(_err(["parameters", name], f'missing: name a parameter of the earlier study or "{NONE}"'))
            elif old == NONE:
                params[name] = None
            elif isinstance(old, str) and old in self.source.space.params:
                params[name] = old
            else:
                known = ", ".join([*self.source.space.params, NONE])
                errors.append(
                    _err(["parameters", name], f"{_json(old)} is not a parameter of the earlier study: {known}")
                )
        scale: dict[str, float] = {}
        raw_scale = arguments.get("scale", {})
        if not isinstance(raw_scale, dict):
            errors.append(_err(["scale"], "must be an object: new parameter -> factor"))
            raw_scale = {}
        for name, factor in raw_scale.items():
            if name not in self.target.params:
                errors.append(_err(["scale", name], f"not a parameter of the new study ({self._new()})"))
            elif isinstance(factor, bool) or not isinstance(factor, int | float) or not (0 < factor < math.inf):
                errors.append(_err(["scale", name], "must be a positive number"))
            elif factor != 1:
                scale[name] = float(factor)
        if not errors and isinstance(relevant, bool):
            mapping = Mapping(relevant, params, scale)
            errors = check(mapping, self.source, self.target)
            if not errors:
                return mapping.to_dict()
            wrong = {e["loc"][-1] for e in errors}
            for new, old in params.items():
                if old is None or new in scale:
                    continue
                if new in wrong:
                    self.rejected.add((new, old))
                else:
                    self.kept[new] = old
        if isinstance(relevant, bool):
            self.relevant = relevant
        shown = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        raise InvalidSuggestion(f"invalid mapping: {shown}", errors)

    def _new(self) -> str:
        return ", ".join(self.target.params)


def check(mapping: Mapping, source: SourceStudy, target: SearchSpace) -> list[dict[str, Any]]:
    """What is wrong with ``mapping`` as errors for the model: a kind that cannot convert, or values that land
    outside the new space for most of the earlier study's best trials."""
    errors = []
    best = [config for config, _ in source.best(CHECKED)]
    for new in mapping.mapped:
        old = mapping.params[new]
        assert old is not None
        p, q = target.params[new], source.space.params[old]
        factor = mapping.scale.get(new, 1.0)
        if _numeric(p) != _numeric(q):
            what = "a number" if _numeric(p) else f"one of {_choices(p)}"
            were = "numbers" if _numeric(q) else f"one of {_choices(q)}"
            errors.append(_err(["parameters", new], f"{new} is {what}, but {old} was {were}; choose another or {NONE}"))
            continue
        values = [config[old] for config in best]
        if _numeric(p):
            if 2 * sum(_inside(p, float(v) * factor) for v in values) < len(values):
                shown = sorted(float(v) * factor for v in values)
                low, high = _bounds(p)
                fit = [n for n, q in source.space.params.items() if _numeric(q) and _fits(p, [c[n] for c in best])]
                taken = {o for n, o in mapping.params.items() if o is not None and n != new}
                free = [n for n in fit if n not in taken]  # a parameter usually maps from one earlier parameter
                which = "of the earlier parameters no other maps from" if free else "of the earlier parameters"
                hint = f"; {which}, these have values in that range: {', '.join(free or fit)}" if fit else ""
                errors.append(
                    _err(
                        ["parameters", new],
                        f"{old}{'' if factor == 1 else f' x {factor:g}'} gives {shown[0]:.3g} to {shown[-1]:.3g} for "
                        f"the earlier study's best trials, outside {new}'s range {low:.3g} to {high:.3g}{hint}. Name "
                        f'the parameter that means the same, give a "scale", or answer "{NONE}"',
                    )
                )
        elif not any(_label(p, v) is not None for v in values):
            errors.append(
                _err(
                    ["parameters", new], f"{old}'s values {sorted({str(v) for v in values})} are none of {_choices(p)}"
                )
            )
    return errors


def apply(mapping: Mapping, source: SourceStudy, target: SearchSpace, name: str) -> SourceData | None:
    """The source's trials in the new space's terms, over the parameters it maps; None when it maps none."""
    mapped = mapping.mapped
    if not mapped:
        return None
    configs, values = [], []
    for config, value in source.trials:
        out: dict[str, Choice] = {}
        for new in mapped:
            old = mapping.params[new]
            assert old is not None
            moved = _into(target.params[new], config[old], mapping.scale.get(new, 1.0))
            if moved is None:
                break
            out[new] = moved
        else:
            configs.append(out)
            values.append(value)
    if not configs:
        return None
    return SourceData(name=name, configs=tuple(configs), values=tuple(values), direction=source.direction)


# ---- values --------------------------------------------------------------------------------------------


def _numeric(p: FloatParam | IntParam | CategoricalParam) -> bool:
    if isinstance(p, CategoricalParam):
        return all(isinstance(c, int | float) and not isinstance(c, bool) for c in p.choices)
    return True


def _bounds(p: FloatParam | IntParam | CategoricalParam) -> tuple[float, float]:
    if isinstance(p, CategoricalParam):
        numbers = [float(c) for c in p.choices]
        return min(numbers), max(numbers)
    return float(p.low), float(p.high)


def _log_scale(p: FloatParam | IntParam | CategoricalParam) -> bool:
    """Read on a log scale: a log parameter, or a positive grid spanning more than a factor of 20."""
    low, high = _bounds(p)
    return low > 0 and (getattr(p, "log", False) or high / low > _LOG_RATIO)


def _inside(p: FloatParam | IntParam | CategoricalParam, value: float) -> bool:
    if not math.isfinite(value):
        return False
    low, high = _bounds(p)
    if _log_scale(p):
        if value <= 0:
            return False
        span = math.log(high) - math.log(low)
        return math.log(low) - _SLACK * span <= math.log(value) <= math.log(high) + _SLACK * span
    span = high - low
    return low - _SLACK * span <= value <= high + _SLACK * span


def _fits(p: FloatParam | IntParam | CategoricalParam, values: list[Any]) -> bool:
    """Do most of ``values`` lie in ``p``'s range (as a mapping must)?"""
    inside = sum(isinstance(v, int | float) and not isinstance(v, bool) and _inside(p, float(v)) for v in values)
    return 2 * inside >= len(values)


def _into(p: FloatParam | IntParam | CategoricalParam, value: Any, factor: float) -> Choice | None:
    """``value`` (times ``factor`` for numbers) as a value of ``p``: clipped, rounded, moved to the nearest
    grid value, or the label it matches; None when it matches no label."""
    if not _numeric(p):
        return _label(p, value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    x = float(value) * factor
    low, high = _bounds(p)
    x = min(max(x, low), high)
    if isinstance(p, FloatParam):
        return x
    if isinstance(p, IntParam):
        return int(min(max(round(x), p.low), p.high))
    from agent.space import nearest_index  # the one nearest-grid rule (log where the grid reads so)

    assert isinstance(p, CategoricalParam)
    return None if math.isnan(x) else p.choices[nearest_index(p, x)]


def _label(p: FloatParam | IntParam | CategoricalParam, value: Any) -> Choice | None:
    assert isinstance(p, CategoricalParam)
    for choice in p.choices:
        if choice == value or str(choice).strip().lower() == str(value).strip().lower():
            return choice
    return None


def _choices(p: FloatParam | IntParam | CategoricalParam) -> str:
    if isinstance(p, CategoricalParam):
        return ", ".join(_json(c) for c in p.choices)
    return "numbers"


def _json(value: Any) -> str:
    return json.dumps(value, default=str)[:60]


def _err(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "input": None}
