"""What is said to and by a model, as data: chat messages, usage, and the parts of a conversation.

Pure pydantic types and nothing else (pydantic-ai's ``messages.py``): providers send :class:`ChatMessage`
lists and report :class:`Usage`; the loop records a round's :data:`Part` list; trial records carry both, so
a stored study holds its whole conversation. :func:`dump_parts` and :func:`load_parts` are the one
serialisation of a conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "AnswerPart",
    "ChatMessage",
    "Part",
    "ReaskPart",
    "ToolReturnPart",
    "Usage",
    "UserPart",
    "dump_parts",
    "load_parts",
]


class ChatMessage(BaseModel):
    """One message of a chat prompt, as every chat API spells it."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class Usage(BaseModel):
    """What one call cost. ``cached_tokens``: prompt tokens the server reused from its cache (llama.cpp's
    prompt cache, OpenAI's cached tokens) and did not process again; 0 where the server does not say."""

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    latency_s: float = 0.0


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True)


class UserPart(_Part):
    """A prompt the agent sent (a batch request, the optimizer's state shown to the model)."""

    kind: Literal["user"] = "user"
    content: str


class AnswerPart(_Part):
    """The model's raw answer, kept verbatim (truncated only when enormous)."""

    kind: Literal["answer"] = "answer"
    content: str
    usage: Usage | None = None


class ReaskPart(_Part):
    """The validation errors sent back with the request to fix them."""

    kind: Literal["reask"] = "reask"
    content: str
    errors: list[dict[str, Any]] = []


class ToolReturnPart(_Part):
    """What a non-evaluating tool (``read_history``) returned."""

    kind: Literal["tool_return"] = "tool_return"
    tool: str
    content: str


Part = Annotated[UserPart | AnswerPart | ReaskPart | ToolReturnPart, Field(discriminator="kind")]
_PARTS = TypeAdapter(list[Part])


def dump_parts(parts: Sequence[Part]) -> list[dict[str, Any]]:
    dumped: list[dict[str, Any]] = _PARTS.dump_python(list(parts), mode="json")
    return dumped


def load_parts(data: Any) -> list[Part]:
    return _PARTS.validate_python(data or [])
