"""How an earlier study's parameters map into the new study's space: names, scales, what a missing one becomes.

A :class:`SpaceMapping` says, for each parameter of the new space, which parameter of the earlier study means
the same (or none) and by what factor its values convert (units: a percentage into a fraction, milliseconds
into seconds); it is the one form of a mapping, passed as it is and stored as it is. A source with the same
parameter names and domains maps to itself without a model (:func:`identity`); the model answers the others
(:mod:`agent.sources.map_study`), and :func:`check` says what is wrong with its answer: a number where the new
study has labels, labels that match none, values none of which lands in the new range, or one earlier
parameter given to several new ones (asked once: kept where the model confirms they are the same). A right
pairing over a range that merely differs is kept, its values clipped into the new range (:func:`clipped`
counts them). :func:`apply` turns a source's trials into the new space's terms
(:class:`~agent.records.SourceData`): values clipped into range and moved onto grids, labels matched, trials
whose labels match nothing left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agent.records import SourceData
from agent.space import CategoricalParam, Choice, FloatParam, IntParam, SearchSpace, reads_log

from .reading import SourceStudy

__all__ = ["CHECKED", "NONE", "Problem", "SpaceMapping", "apply", "check", "clipped", "identity"]

#: What the model answers for a parameter the earlier study did not have.
NONE = "none"
#: Of the earlier study's trials, the best ones a mapping is checked against (and the model is shown).
CHECKED = 10
_SLACK = 0.1  # a mapped value this far (a share of the range, of its log where wide) outside still counts in


class SpaceMapping(BaseModel):
    """``params[new] = earlier`` (None: the earlier study had no such parameter); ``scale[new]``: the factor
    turning the earlier study's value into the new one's (1 when absent). ``relevant``: the model's judgment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    relevant: bool
    params: dict[str, str | None]
    scale: dict[str, float] = {}

    @property
    def mapped(self) -> list[str]:
        return [new for new, old in self.params.items() if old is not None]

    def shown(self) -> str:
        """``n_units <- width, init_lr <- lr x 0.01``: the pairings, for a line."""
        return ", ".join(
            f"{new} <- {old}{'' if new not in self.scale else f' x {self.scale[new]:g}'}"
            for new, old in self.params.items()
            if old is not None
        )


def identity(source: SearchSpace, target: SearchSpace) -> SpaceMapping | None:
    """The mapping of a source with the same parameter names and domains, which needs no model; else None."""
    same = set(source.params) == set(target.params) and all(
        source.params[n].model_dump() == target.params[n].model_dump() for n in target.params
    )
    return SpaceMapping(relevant=True, params={n: n for n in target.params}) if same else None


@dataclass(frozen=True)
class Problem:
    """What is wrong with the pairings ``new <- old`` for each of ``news``: ``pairing``, it cannot be (the kinds
    or the values do not fit: not offered again); ``shared``, ``old`` is given to several new parameters, the
    ``news`` (asked once)."""

    news: tuple[str, ...]
    old: str
    kind: Literal["pairing", "shared"]
    message: str


def check(
    mapping: SpaceMapping, source: SourceStudy, target: SearchSpace, *, confirmed: Collection[str] = ()
) -> list[Problem]:
    """What is wrong with ``mapping``: a kind that cannot convert, values of which none lands in the new range
    (for the earlier study's best trials), labels of which none matches, or an earlier parameter given to
    several new ones that the model has not confirmed (``confirmed``: the earlier parameters it was asked about
    once already)."""
    problems: list[Problem] = []
    best = [config for config, _ in source.best(CHECKED)]
    fine: dict[str, list[str]] = {}  # earlier parameter -> the new ones its pairing passed for
    for new in mapping.mapped:
        old = mapping.params[new]
        assert old is not None
        message = _pairing(mapping, new, old, source, target, best)
        if message is not None:
            problems.append(Problem((new,), old, "pairing", message))
        else:
            fine.setdefault(old, []).append(new)
    for old, news in fine.items():
        if len(news) > 1 and old not in confirmed:
            listed = f"{', '.join(news[:-1])} and {news[-1]}"
            problems.append(Problem(tuple(news), old, "shared", f"{old} is given to {listed}"))
    return problems


def _pairing(
    mapping: SpaceMapping,
    new: str,
    old: str,
    source: SourceStudy,
    target: SearchSpace,
    best: list[dict[str, Choice]],
) -> str | None:
    """Why ``new <- old`` cannot be, or None."""
    p, q = target.params[new], source.space.params[old]
    factor = mapping.scale.get(new, 1.0)
    if _numeric(p) != _numeric(q):
        what = "a number" if _numeric(p) else f"one of {_choices(p)}"
        were = "numbers" if _numeric(q) else f"one of {_choices(q)}"
        return f"{new} is {what}, but {old} was {were}; choose another or {NONE}"
    values = [config[old] for config in best]
    if not _numeric(p):
        if any(_label(p, v) is not None for v in values):
            return None
        return f"{old}'s values {sorted({str(v) for v in values})} are none of {_choices(p)}"
    if _overlaps(p, values, factor):
        return None  # a range that merely differs: the values outside are clipped into it
    shown = sorted(float(v) * factor for v in values)
    low, high = _bounds(p)
    fit = [n for n, q in source.space.params.items() if _numeric(q) and _overlaps(p, [c[n] for c in best], 1.0)]
    taken = {o for n, o in mapping.params.items() if o is not None and n != new}
    free = [n for n in fit if n not in taken]  # a parameter usually maps from one earlier parameter
    which = "of the earlier parameters no other maps from" if free else "of the earlier parameters"
    hint = f"; {which}, these have values in that range: {', '.join(free or fit)}" if fit else ""
    return (
        f"{old}{'' if factor == 1 else f' x {factor:g}'} gives {shown[0]:.3g} to {shown[-1]:.3g} for the earlier "
        f"study's best trials, all outside {new}'s range {low:.3g} to {high:.3g}{hint}. Name the parameter that "
        f'means the same, give a "scale", or answer "{NONE}"'
    )


def clipped(mapping: SpaceMapping, source: SourceStudy, target: SearchSpace) -> dict[str, int]:
    """For each mapped number, how many of the source's trials have a value outside the new range (clipped into
    it when carried over); parameters with none are left out."""
    out = {}
    for new in mapping.mapped:
        p, old = target.params[new], mapping.params[new]
        assert old is not None
        if not _numeric(p):
            continue
        factor = mapping.scale.get(new, 1.0)
        low, high = _bounds(p)
        outside = sum(
            isinstance(v, int | float) and not isinstance(v, bool) and not low <= float(v) * factor <= high
            for v in (config[old] for config, _ in source.trials)
        )
        if outside:
            out[new] = outside
    return out


def apply(mapping: SpaceMapping, source: SourceStudy, target: SearchSpace, name: str) -> SourceData | None:
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
    """Read on a log scale: a positive log parameter, or numbers that read on one (:func:`agent.space.reads_log`)."""
    low, high = _bounds(p)
    return (low > 0 and getattr(p, "log", False)) or reads_log(low, high)


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


def _overlaps(p: FloatParam | IntParam | CategoricalParam, values: list[Any], factor: float) -> bool:
    """Does any of ``values`` (times ``factor``) lie in ``p``'s range (as a mapping's must)?"""
    return any(isinstance(v, int | float) and not isinstance(v, bool) and _inside(p, float(v) * factor) for v in values)


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
