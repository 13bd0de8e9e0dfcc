"""What is wrong with a search space a person wrote (a ``--search_space`` file, a task file's ``space:``), in
words: ``alpha: low 100 is above high 0.0001``, ``alpha: unknown type 'floaty'; use float, int or categorical``.

:meth:`agent.space.SearchSpace.from_dict` asks this first, so a definition pydantic would refuse with its own
wording (``params.alpha.float: Value error, ...``, ``Input tag 'floaty' found using 'type' ...``) is refused
here, one short sentence per problem, naming the parameter.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["problems"]

_TYPES = ("float", "int", "categorical")
_KEYS = {
    "float": ("type", "low", "high", "log", "description"),
    "int": ("type", "low", "high", "log", "description"),
    "categorical": ("type", "choices", "description"),
}
_EXAMPLE = {
    "float": "{type: float, low: 1.0e-4, high: 0.1, log: true}",
    "int": "{type: int, low: 1, high: 8}",
    "categorical": "{type: categorical, choices: [adam, sgd]}",
}


def problems(body: Any) -> list[str]:
    """Every problem of ``{name: definition}``, one sentence each; empty when pydantic will accept it."""
    if not isinstance(body, Mapping):
        return [f"must map each parameter's name to its definition, such as lr: {_EXAMPLE['float']}"]
    if not body:
        return [f"no parameters; give at least one, such as lr: {_EXAMPLE['float']}"]
    found: list[str] = []
    for name, definition in body.items():
        if not isinstance(name, str) or not name:
            found.append(f"{name!r}: a parameter's name must be text")
        elif not isinstance(definition, Mapping):
            found.append(f"{name}: must be a definition such as {_EXAMPLE['float']}, got {_show(definition)}")
        else:
            found += [f"{name}: {problem}" for problem in _param_problems(definition)]
    return found


def _param_problems(definition: Mapping[str, Any]) -> list[str]:
    kind = definition.get("type")
    if kind is None:
        return ["missing 'type'; use float, int or categorical"]
    if kind not in _TYPES:
        return [f"unknown type {_show(kind)}; use float, int or categorical"]
    allowed = _KEYS[kind]
    unknown = [str(key) for key in definition if key not in allowed]
    if unknown:
        takes = ", ".join(k for k in allowed if k != "type")
        return [f"unknown key {_show(key)} for a {kind} parameter; it takes {takes}" for key in unknown]
    found = []
    description = definition.get("description", "")
    if not isinstance(description, str):
        found.append(f"description must be text, got {_show(description)}")
    if kind == "categorical":
        return found + _choice_problems(definition)
    return found + _range_problems(kind, definition)


def _range_problems(kind: str, definition: Mapping[str, Any]) -> list[str]:
    missing = [key for key in ("low", "high") if key not in definition]
    if missing:
        return [f"missing {' and '.join(repr(k) for k in missing)}, such as {_EXAMPLE[kind]}"]
    log = definition.get("log", False)
    found = [] if isinstance(log, bool) else [f"log must be true or false, got {_show(log)}"]
    bounds: dict[str, float] = {}
    for key in ("low", "high"):
        value, problem = _number(definition[key], whole=kind == "int")
        if problem is None:
            bounds[key] = value
        else:
            found.append(f"{key} {problem}")
    if len(bounds) < 2:
        return found
    low, high = bounds["low"], bounds["high"]
    if low > high:
        found.append(f"low {_num(low)} is above high {_num(high)}")
    elif log is True and low <= 0:
        found.append(f"a log scale needs low above 0, got low {_num(low)}; use a positive low or drop log")
    return found


def _number(value: Any, *, whole: bool) -> tuple[float, str | None]:
    """The number ``value`` holds, or why it is none (text reading as a number is taken, as pydantic does)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return 0.0, f"must be a number, got {_show(value)}"
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0, f"must be a number, got {_show(value)}"
    else:
        number = float(value)
    if not math.isfinite(number):
        return 0.0, f"must be a finite number, got {_show(value)}"
    if whole and not number.is_integer():
        return 0.0, f"must be a whole number for an int parameter, got {_show(value)}"
    return number, None


def _choice_problems(definition: Mapping[str, Any]) -> list[str]:
    if "choices" not in definition:
        return [f"missing 'choices', such as {_EXAMPLE['categorical']}"]
    choices = definition["choices"]
    if not isinstance(choices, list | tuple):
        return [f"choices must be a list of values, such as [adam, sgd], got {_show(choices)}"]
    if not choices:
        return ["choices is empty; give at least one value"]
    found, seen = [], set()
    for choice in choices:
        if isinstance(choice, bool | int | float | str):
            key = json.dumps(choice)
            if key in seen:
                found.append(f"choice {_show(choice)} is listed twice")
            seen.add(key)
        else:
            found.append(f"choice {_show(choice)} is not text, a number or true/false")
    return found


def _num(x: float) -> str:
    """``100``, ``0.0001``, ``1e-5``: as a person wrote it."""
    return re.sub(r"e([-+]?)0+(\d)", r"e\1\2", f"{x:.6g}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
