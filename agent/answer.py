"""The model's answer: one JSON object ``{"tool": NAME, "arguments": {...}}``, parsed as untrusted text.

Nothing is repaired and nothing is evaluated: the text must be exactly one JSON object (whitespace around it
is fine). Code fences, prose around the object, single quotes, trailing commas, NaN/Infinity, duplicate keys,
missing or extra keys, unknown tools and invalid arguments all raise :class:`InvalidSuggestion` with
per-field errors, which the loop sends back to the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import InvalidSuggestion
from tools.base import EvaluationTool, Tool

__all__ = ["MAX_ANSWER_CHARS", "ToolCall", "answer_schema", "parse_answer"]

MAX_ANSWER_CHARS = 20_000
AnyTool = Tool | EvaluationTool


@dataclass(frozen=True)
class ToolCall:
    tool: AnyTool
    arguments: dict[str, Any]

    @property
    def is_evaluation(self) -> bool:
        return isinstance(self.tool, EvaluationTool)


def answer_schema(tools: Mapping[str, AnyTool]) -> dict[str, Any]:
    """The JSON schema of a valid answer, for providers that constrain decoding."""
    variants = [
        {
            "type": "object",
            "properties": {"tool": {"const": name}, "arguments": tool.arguments_schema()},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for name, tool in tools.items()
    ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def parse_answer(text: str, tools: Mapping[str, AnyTool]) -> ToolCall:
    """Parse and validate one answer; raise :class:`InvalidSuggestion` saying what to fix."""
    obj = _load_json_object(text)
    errors: list[dict[str, Any]] = []
    for key in obj:
        if key not in ("tool", "arguments"):
            errors.append(_err([key], 'unexpected key; the answer has exactly "tool" and "arguments"'))
    for key in ("tool", "arguments"):
        if key not in obj:
            errors.append(_err([key], "missing"))
    if errors:
        raise InvalidSuggestion('the answer must be {"tool": ..., "arguments": {...}}', errors)
    name = obj["tool"]
    if not isinstance(name, str) or name not in tools:
        raise InvalidSuggestion(
            f"unknown tool {json.dumps(name)[:60]}",
            [_err(["tool"], f"unknown tool {json.dumps(name)[:60]}; valid tools: {sorted(tools)}")],
        )
    tool = tools[name]
    try:
        arguments = tool.validate_arguments(obj["arguments"])
    except InvalidSuggestion as exc:
        nested = [{**e, "loc": ["arguments", *e.get("loc", [])]} for e in exc.errors]
        raise InvalidSuggestion(str(exc), nested) from None
    return ToolCall(tool=tool, arguments=arguments)


def _load_json_object(text: str) -> dict[str, Any]:
    stripped = text.strip()
    if not stripped:
        raise InvalidSuggestion("empty answer", [_err([], "the answer was empty; answer with one JSON object")])
    if len(stripped) > MAX_ANSWER_CHARS:
        raise InvalidSuggestion(
            "answer too long",
            [_err([], f"the answer has {len(stripped)} characters; answer with the JSON object only")],
        )
    try:
        obj = json.loads(
            stripped,
            parse_constant=_reject_constant,
            parse_float=_reject_cut_exponent,
            object_pairs_hook=_reject_duplicates,
        )
    except json.JSONDecodeError as exc:
        hint = "no code fence, no text before or after it, double quotes, no trailing commas"
        if stripped.startswith("```"):
            hint = "remove the ``` code fence: answer with the bare JSON object"
        elif "{" in stripped and not stripped.startswith("{"):
            hint = "remove the text around the JSON object: answer with the JSON object only"
        raise InvalidSuggestion(
            "not valid JSON", [_err([], f"not valid JSON ({exc.msg} at char {exc.pos}); {hint}")]
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidSuggestion("not valid JSON", [_err([], str(exc)[:200])]) from None
    if not isinstance(obj, dict):
        raise InvalidSuggestion(
            "not a JSON object", [_err([], f"expected a JSON object, got a JSON {type(obj).__name__}")]
        )
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; use a finite number")


_CUT_EXPONENT = re.compile(r"[eE][-+]?0$")


def _reject_cut_exponent(literal: str) -> float:
    """``1e-0``: a model meaning ``1e-05`` whose constrained decoder allows no leading zero in an exponent
    (llama.cpp's JSON grammar) ends up writing 1.0, five orders of magnitude off. Reask, never guess."""
    if _CUT_EXPONENT.search(literal):
        raise ValueError(
            f"the number {literal} has an exponent of 0 (= {float(literal):g}), most likely a cut-off 1e-05; "
            "write small numbers without a leading zero in the exponent (1e-5) or as decimals (0.00001)"
        )
    return float(literal)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _err(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "input": None}
