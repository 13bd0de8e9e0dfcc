"""Every provider by name, declared once: the built-in ones, then those installed packages register.

Each :class:`ProviderSpec` says what the provider is, which environment variables it reads, its default model
and call timeout, and how to build it; ``--provider``'s help, ``python -m agent providers`` and the error for
an unknown name are generated from this table. Backends are imported only when built, so xllamacpp loads only
for ``embedded``.

A package registers a provider under the entry-point group ``llm_hpo.providers``::

    [project.entry-points."llm_hpo.providers"]
    my-llm = "my_package.llm:provider"

``provider(*, model, **kwargs)`` is called with the model name (None when neither ``--model`` nor
``AGENT_MODEL`` gives one) and keyword arguments such as ``call_timeout_s`` (so it must accept ``**kwargs``),
and returns a :class:`~agent.providers.base.Provider`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Any

from agent._plugins import Plugin, registered
from agent.errors import AgentError, UserError

from .base import Provider

__all__ = ["BUILTIN", "DEFAULT_PROVIDER", "ENTRY_POINT_GROUP", "ProviderSpec", "get_spec", "list_providers"]

ENTRY_POINT_GROUP = "llm_hpo.providers"
DEFAULT_PROVIDER = "embedded"


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    #: One line of help.
    summary: str
    #: ``build(model, model_source, kwargs)``: ``model_source`` names where the model came from (for errors).
    build: Callable[[str | None, str, dict[str, Any]], Provider]
    #: The environment variables it reads besides AGENT_PROVIDER, AGENT_MODEL and AGENT_PROVIDER_TIMEOUT.
    variables: tuple[str, ...] = ()
    default_model: str | None = None
    #: The most one call may take, retries included, unless --provider-timeout says otherwise.
    timeout_s: float | None = None
    origin: str = "built-in"


def _embedded(model: str | None, source: str, kwargs: dict[str, Any]) -> Provider:
    from .embedded import EmbeddedProvider

    if model is not None and not model.lower().endswith(".gguf") and not os.path.isfile(model):
        raise UserError(
            f"the embedded provider runs a GGUF file, but {source} is {model!r}. Give a .gguf path "
            "with --model or AGENT_EMBEDDED_MODEL, leave both unset for the bundled model, or choose "
            f"another provider with --provider/AGENT_PROVIDER ({', '.join(_names())})."
        )
    return EmbeddedProvider(model, **kwargs)


def _openai(model: str | None, source: str, kwargs: dict[str, Any]) -> Provider:
    from .openai_compat import OpenAICompatProvider

    return OpenAICompatProvider(model or "gpt-4o-mini", **kwargs)


def _ollama(model: str | None, source: str, kwargs: dict[str, Any]) -> Provider:
    from .ollama_cli import OllamaCLIProvider

    # The bundled model's Ollama tag: the natural counterpart of the embedded default.
    return OllamaCLIProvider(model or "qwen2.5-coder:1.5b", **kwargs)


BUILTIN: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            "embedded",
            "llama.cpp in this process (xllamacpp), offline; the bundled Qwen2.5-Coder-1.5B or any GGUF file",
            _embedded,
            variables=("AGENT_EMBEDDED_MODEL",),
            default_model="Qwen2.5-Coder-1.5B-Instruct (bundled)",
            timeout_s=900.0,
        ),
        ProviderSpec(
            "openai",
            "any OpenAI-compatible endpoint over HTTP (OpenAI, vLLM, llama.cpp's server, Ollama's /v1)",
            _openai,
            variables=("OPENAI_BASE_URL", "OPENAI_API_KEY"),
            default_model="gpt-4o-mini",
            timeout_s=120.0,
        ),
        ProviderSpec(
            "ollama",
            "the Ollama command line (`ollama run`), one process per call",
            _ollama,
            variables=("OLLAMA_EXECUTABLE",),
            default_model="qwen2.5-coder:1.5b",
            timeout_s=600.0,
        ),
    )
}


def list_providers() -> list[ProviderSpec]:
    """The built-in providers, then those installed packages register."""
    return [*BUILTIN.values(), *(_plugin_spec(ep) for ep in _plugins().values())]


def _names() -> list[str]:
    return [*BUILTIN, *_plugins()]


def get_spec(name: str, origin: str) -> ProviderSpec:
    """The provider called ``name`` (``origin``: the flag or variable that named it, for the error)."""
    if name in BUILTIN:
        return BUILTIN[name]
    plugins = _plugins()
    if name in plugins:
        return _plugin_spec(plugins[name])
    raise UserError(
        f"unknown provider {name!r} (from {origin}); choose one of {', '.join(_names())} "
        "with --provider or AGENT_PROVIDER"
    )


def _plugins() -> dict[str, EntryPoint]:
    return registered(ENTRY_POINT_GROUP, taken=BUILTIN)


def _plugin_spec(ep: EntryPoint) -> ProviderSpec:
    plugin = Plugin.load(ep, ENTRY_POINT_GROUP)
    where = f"provider {plugin.where}"

    def build(model: str | None, source: str, kwargs: dict[str, Any]) -> Provider:
        if plugin.factory is None:
            raise UserError(f"{where}: cannot load it: {plugin.summary}")
        try:
            made = plugin.factory(model=model, **kwargs)
        except AgentError:
            raise
        except Exception as exc:
            raise UserError(f"{where}: cannot build it: {type(exc).__name__}: {exc}") from exc
        if not isinstance(made, Provider):
            raise UserError(f"{where}: its factory returned a {type(made).__name__}, not a Provider")
        return made

    return ProviderSpec(ep.name, plugin.summary, build, origin=plugin.package)
