"""The model's answer, parsed as untrusted text: one call ``{"tool": NAME, "arguments": {...}}``, or a batch
``{"calls": [{"tool": NAME, "arguments": {...}}, ...]}`` of evaluation calls (``--batch``).

Nothing is repaired and nothing is evaluated: the text must be exactly one JSON object (whitespace around it
is fine). Code fences, prose around the object, single quotes, trailing commas, NaN/Infinity, an exponent
cut to 0 by a grammar (``1e-0``), duplicate keys, missing or extra keys, unknown tools and invalid arguments
all raise :class:`InvalidSuggestion` (or, in a batch, come back as errors beside the valid calls) with
per-field errors, which the loop sends back to the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import InvalidSuggestion, field_error
from tools.base import ConfigTool, Tool

__all__ = ["MAX_ANSWER_CHARS", "ToolCall", "answer_schema", "batch_schema", "parse_answer", "parse_batch"]

MAX_ANSWER_CHARS = 20_000


@dataclass(frozen=True)
class ToolCall:
    tool: Tool
    arguments: dict[str, Any]

    @property
    def configuration(self) -> dict[str, Any] | None:
        """The configuration the call names (its validated arguments), when the tool names one."""
        return self.arguments if isinstance(self.tool, ConfigTool) else None


def answer_schema(tools: Mapping[str, Tool]) -> dict[str, Any]:
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


def batch_schema(tool: ConfigTool, k: int) -> dict[str, Any]:
    """The JSON schema of a batch answer: exactly ``k`` calls of the evaluation tool."""
    return {
        "type": "object",
        "properties": {
            "calls": {"type": "array", "items": answer_schema({tool.name: tool}), "minItems": k, "maxItems": k}
        },
        "required": ["calls"],
        "additionalProperties": False,
    }


def parse_answer(text: str, tools: Mapping[str, Tool]) -> ToolCall:
    """Parse and validate one answer; raise :class:`InvalidSuggestion` saying what to fix."""
    return _parse_call(_load_json_object(text), tools)


def parse_batch(text: str, tool: ConfigTool, k: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The valid configurations of a batch answer (in order), and the errors of the rest (``loc`` starting at
    ``calls``). Raises :class:`InvalidSuggestion` when the answer is not a JSON object at all."""
    obj = _load_json_object(text)
    calls = obj.get("calls")
    if not isinstance(calls, list):
        return [], [field_error(["calls"], 'expected {"calls": [...]} with a list of tool calls')]
    errors = [
        field_error([key], 'unexpected key; the answer has exactly one key, "calls"') for key in obj if key != "calls"
    ]
    if len(calls) != k:
        errors.append(field_error(["calls"], f"expected exactly {k} calls, got {len(calls)}"))
    configs: list[dict[str, Any]] = []
    for i, item in enumerate(calls[:k]):
        try:
            if not isinstance(item, dict):
                raise InvalidSuggestion("not an object", [field_error([], "each call is a JSON object")])
            configs.append(_parse_call(item, {tool.name: tool}).arguments)
        except InvalidSuggestion as exc:
            errors.extend(_under(["calls", i], exc.errors))
    return configs, errors


def _under(loc: Sequence[Any], errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{**e, "loc": [*loc, *e.get("loc", [])]} for e in errors]


def _parse_call(obj: Mapping[str, Any], tools: Mapping[str, Tool]) -> ToolCall:
    errors: list[dict[str, Any]] = []
    for key in obj:
        if key not in ("tool", "arguments"):
            errors.append(field_error([key], 'unexpected key; the answer has exactly "tool" and "arguments"'))
    for key in ("tool", "arguments"):
        if key not in obj:
            errors.append(field_error([key], "missing"))
    if errors:
        raise InvalidSuggestion('the answer must be {"tool": ..., "arguments": {...}}', errors)
    name = obj["tool"]
    if not isinstance(name, str) or name not in tools:
        raise InvalidSuggestion(
            f"unknown tool {json.dumps(name)[:60]}",
            [field_error(["tool"], f"unknown tool {json.dumps(name)[:60]}; valid tools: {sorted(tools)}")],
        )
    tool = tools[name]
    try:
        arguments = tool.validate_arguments(obj["arguments"])
    except InvalidSuggestion as exc:
        raise InvalidSuggestion(str(exc), _under(["arguments"], exc.errors)) from None
    return ToolCall(tool=tool, arguments=arguments)


def _load_json_object(text: str) -> dict[str, Any]:
    stripped = text.strip()
    if not stripped:
        raise InvalidSuggestion("empty answer", [field_error([], "the answer was empty; answer with one JSON object")])
    if len(stripped) > MAX_ANSWER_CHARS:
        raise InvalidSuggestion(
            "answer too long",
            [field_error([], f"the answer has {len(stripped)} characters; answer with the JSON object only")],
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
            "not valid JSON", [field_error([], f"not valid JSON ({exc.msg} at char {exc.pos}); {hint}")]
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidSuggestion("not valid JSON", [field_error([], str(exc)[:200])]) from None
    if not isinstance(obj, dict):
        raise InvalidSuggestion(
            "not a JSON object", [field_error([], f"expected a JSON object, got a JSON {type(obj).__name__}")]
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
