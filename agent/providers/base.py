"""The provider interface: one async method, messages and a JSON schema in, text and usage out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from pydantic import BaseModel

from agent.messages import ChatMessage, Usage

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_TEMPERATURE", "ChatMessage", "Completion", "Provider", "Usage"]

#: Answer length limit and sampling temperature when the caller names none (the CLI's --max-tokens and
#: --temperature defaults too).
DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 0.7


class Completion(BaseModel):
    """The model's raw text (untrusted: the loop validates it) and the call's usage."""

    text: str
    usage: Usage


class Provider(ABC):
    """A chat model behind one async method.

    Providers own their transport (an HTTP client, a subprocess, an embedded server) and retry transport
    faults themselves, for a bounded time per call, then raise :class:`~agent.errors.ProviderUnavailable`;
    what no retry fixes is a :class:`~agent.errors.UserError` at once. They never judge the answer's
    content. Use them as async context managers so that whatever they started (a client, a server) is
    closed when the run ends.
    """

    name: str = "provider"
    model: str = ""

    @abstractmethod
    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        seed: int | None = None,
    ) -> Completion:
        """Send ``messages``; constrain the answer to ``json_schema`` where the backend can."""

    async def probe(self) -> None:  # noqa: B027 (optional hook: a test double has nothing to check)
        """Check cheaply, before a study starts and without loading a model, that calls can succeed.

        Raises :class:`~agent.errors.UserError` for what no retry fixes (a refused key, an unknown model, a
        missing executable, a corrupt model file) and :class:`~agent.errors.ProviderUnavailable` when the
        backend cannot be reached right now. Default: nothing to check.
        """

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
