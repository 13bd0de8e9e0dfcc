"""Test doubles for the agent loop (no model, no network): a provider that plays back scripted answers, and
one that answers configurations of a known quality."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .base import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, ChatMessage, Completion, Provider, Usage

__all__ = ["ConfigProvider", "ScriptedCall", "ScriptedProvider"]

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
