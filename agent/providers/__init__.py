"""LLM providers behind one interface, chosen by name: ``embedded`` (default), ``openai``, ``ollama``, and any an
installed package registers (:mod:`agent.providers.registry`).

``get_provider()`` reads ``AGENT_PROVIDER``, ``AGENT_MODEL`` and ``AGENT_PROVIDER_TIMEOUT`` when no name,
model or call timeout is given (flags override env). Backends are imported only when chosen, so xllamacpp
loads only for ``embedded``. :class:`~agent.providers.breaker.CircuitBreaker` wraps any of them for a long
study.
"""

from __future__ import annotations

import math
import os
from typing import Any

from agent.errors import UserError
from agent.providers.base import ChatMessage, Completion, Provider, Usage

from .registry import DEFAULT_PROVIDER, ProviderSpec, get_spec, list_providers

__all__ = [
    "DEFAULT_PROVIDER",
    "ChatMessage",
    "Completion",
    "Provider",
    "ProviderSpec",
    "Usage",
    "get_provider",
    "list_providers",
]


def get_provider(
    name: str | None = None, model: str | None = None, *, call_timeout_s: float | None = None, **kwargs: Any
) -> Provider:
    """The provider called ``name`` (else ``AGENT_PROVIDER``, else ``embedded``) for ``model``.

    ``model`` (else ``AGENT_MODEL``) is a model name for ``openai`` and ``ollama`` and a GGUF file path
    for ``embedded`` (which otherwise uses ``AGENT_EMBEDDED_MODEL`` or its bundled model).
    ``call_timeout_s`` (else ``AGENT_PROVIDER_TIMEOUT``, else the provider's default: 120 s for ``openai``,
    600 s for ``ollama``, 900 s for ``embedded``) is the most one call may take, retries included. ``kwargs``
    go to the provider's constructor. An unknown name raises a ``UserError`` listing the valid ones.
    """
    chosen = (name if name is not None else os.environ.get("AGENT_PROVIDER", "")).strip().lower()
    spec = get_spec(chosen or DEFAULT_PROVIDER, "--provider" if name is not None else "AGENT_PROVIDER")
    timeout = call_timeout_s if call_timeout_s is not None else _timeout_from_env()
    if timeout is not None:
        if not timeout > 0:
            raise UserError(f"--provider-timeout must be a positive number of seconds, got {timeout:g}")
        kwargs["call_timeout_s"] = timeout
    model_source = "--model"
    if model is None:
        model, model_source = os.environ.get("AGENT_MODEL") or None, "AGENT_MODEL"
    return spec.build(model, model_source, kwargs)


def _timeout_from_env() -> float | None:
    text = os.environ.get("AGENT_PROVIDER_TIMEOUT", "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UserError(f"AGENT_PROVIDER_TIMEOUT must be a positive number of seconds, got {text!r}")
    return seconds
