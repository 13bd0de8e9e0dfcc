"""The provider interface: one async method, messages and a JSON schema in, text and usage out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict

__all__ = ["ChatMessage", "Completion", "Provider", "Usage"]


class ChatMessage(BaseModel):
    """One message of a chat prompt, as every chat API spells it."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class Usage(BaseModel):
    """What one call cost."""

    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


class Completion(BaseModel):
    """The model's raw text (untrusted: the loop validates it) and the call's usage."""

    text: str
    usage: Usage


class Provider(ABC):
    """A chat model behind one async method.

    Providers own their transport (an HTTP client, a subprocess, an embedded server) and retry transport
    faults themselves; they never judge the answer's content. Use them as async context managers so that
    whatever they started (a client, a server) is closed when the run ends.
    """

    name: str = "provider"
    model: str = ""

    @abstractmethod
    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.7,
        max_tokens: int = 512,
        seed: int | None = None,
    ) -> Completion:
        """Send ``messages``; constrain the answer to ``json_schema`` where the backend can."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook: most providers hold nothing)
        """Release what the provider holds. Default: nothing."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
