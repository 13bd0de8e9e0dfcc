"""Test doubles for the agent loop (no model, no network): a provider that plays back scripted answers, one that
answers a random valid instance of whatever JSON schema it is sent, and one that answers configurations of a
known quality."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, ChatMessage, Completion, Provider, Usage

__all__ = ["ConfigProvider", "RandomAnswerProvider", "ScriptedCall", "ScriptedProvider", "schema_instance"]

Answer = str | Callable[[Sequence[ChatMessage]], str]


@dataclass(frozen=True)
class ScriptedCall:
    """What the loop sent on one call."""

    messages: list[ChatMessage]
    json_schema: dict[str, Any] | None
    temperature: float
    max_tokens: int
    seed: int | None


class ScriptedProvider(Provider):
    """Answers each call with the next scripted answer (a string, or a function of the messages).

    Every call is recorded in :attr:`calls`. Running out of answers raises ``AssertionError`` naming how
    many were scripted, so a test that asks more often than it planned fails loudly.
    """

    name = "scripted"

    def __init__(self, answers: Iterable[Answer], model: str = "scripted") -> None:
        self._answers = list(answers)
        self.model = model
        self.calls: list[ScriptedCall] = []
        self.closed = False

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        seed: int | None = None,
    ) -> Completion:
        index = len(self.calls)
        self.calls.append(ScriptedCall(list(messages), json_schema, temperature, max_tokens, seed))
        if index >= len(self._answers):
            raise AssertionError(f"ScriptedProvider: call {index + 1} but only {len(self._answers)} answers scripted")
        answer = self._answers[index]
        text = answer(messages) if callable(answer) else answer
        prompt_chars = sum(len(m.content) for m in messages)
        usage = Usage(
            provider=self.name,
            model=self.model,
            prompt_tokens=prompt_chars // 4,
            completion_tokens=len(text) // 4,
            latency_s=0.0,
        )
        return Completion(text=text, usage=usage)

    async def aclose(self) -> None:
        self.closed = True

    @staticmethod
    def call(tool: str, **arguments: Any) -> str:
        """Spell a well-formed answer: ``ScriptedProvider.call("evaluate_toy", x1=1.0, x2=2.0)``."""
        return json.dumps({"tool": tool, "arguments": arguments})


class RandomAnswerProvider(Provider):
    """Answers every call with a random instance of the JSON schema the agent sends: a valid tool call (or a
    batch of them) with a random configuration, whatever the tools and the search space. For running any
    model-driven strategy where the answers' content does not matter (Optuna's sampler contract tests).
    Every call is recorded in :attr:`calls`; a call without a schema raises ``AssertionError``."""

    name = "random-answers"

    def __init__(self, seed: int = 0, model: str = "random-answers") -> None:
        self._rng = random.Random(seed)
        self.model = model
        self.calls: list[ScriptedCall] = []
        self.closed = False

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        seed: int | None = None,
    ) -> Completion:
        self.calls.append(ScriptedCall(list(messages), json_schema, temperature, max_tokens, seed))
        if json_schema is None:
            raise AssertionError("RandomAnswerProvider answers calls that send a JSON schema only")
        text = json.dumps(schema_instance(json_schema, self._rng))
        usage = Usage(provider=self.name, model=self.model, prompt_tokens=0, completion_tokens=len(text) // 4)
        return Completion(text=text, usage=usage)

    async def aclose(self) -> None:
        self.closed = True


def schema_instance(schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A random value valid under ``schema`` (the subset the agent's schemas use: anyOf/oneOf, const, enum,
    objects, arrays, numbers and integers with bounds, strings, booleans, null)."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return schema_instance(rng.choice(schema[key]), rng)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: schema_instance(sub, rng) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        low = int(schema.get("minItems", 0))
        count = rng.randint(low, int(schema.get("maxItems", max(low, 1))))
        return [schema_instance(schema.get("items", {}), rng) for _ in range(count)]
    if kind == "integer":
        return rng.randint(int(schema.get("minimum", -10)), int(schema.get("maximum", 10)))
    if kind == "number":
        return rng.uniform(float(schema.get("minimum", -1.0)), float(schema.get("maximum", 1.0)))
    if kind == "string":
        return "".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 8)))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    raise ValueError(f"RandomAnswerProvider cannot answer the schema {dict(schema)!r:.200}")


class ConfigProvider(Provider):
    """Answers every call with a configuration ``draw`` returns, as a call of ``tool``: a stand-in model of a
    known quality, for tests and benchmarks only. Random configurations of a task make a useless model; the
    task's best configurations (known to a benchmark from its table, never to a strategy) a strong one.
    Every call is recorded in :attr:`calls`, like :class:`ScriptedProvider`'s."""

    name = "scripted"

    def __init__(
        self, tool: str, draw: Callable[[random.Random], dict[str, Any]], seed: int = 0, model: str = ""
    ) -> None:
        self.tool = tool
        self._draw = draw
        self._rng = random.Random(seed)
        self.model = model or "config-double"
        self.calls: list[ScriptedCall] = []

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        seed: int | None = None,
    ) -> Completion:
        self.calls.append(ScriptedCall(list(messages), json_schema, temperature, max_tokens, seed))
        text = ScriptedProvider.call(self.tool, **self._draw(self._rng))
        usage = Usage(provider=self.name, model=self.model, completion_tokens=len(text) // 4)
        return Completion(text=text, usage=usage)
