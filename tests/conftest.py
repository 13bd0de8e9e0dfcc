"""Fixtures shared by the whole suite.

One embedded llama.cpp server serves every test that needs a real model (loading it takes seconds).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Before anything imports xllamacpp: OpenMP spinning starves generation on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from agent.providers.embedded import EmbeddedServer, ServerSettings, default_threads  # noqa: E402
from agent.providers.gguf import DEFAULT_MODEL_NAME, prepare_default_model  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    """The agent targets asyncio; run every ``@pytest.mark.anyio`` test on it."""
    return "asyncio"


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``spawn(argv, **popen_kwargs)`` starts a process that is killed and reaped when the test ends, whatever
    its outcome: a failed assertion must not leave a study running after pytest."""
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def xllamacpp_missing() -> str | None:
    """Why xllamacpp cannot be imported, or None when it can."""
    try:
        import xllamacpp  # noqa: F401
    except ImportError as exc:
        return f"xllamacpp is not importable ({exc}); install the `embedded` extra: pip install -e '.[embedded]'"
    return None


@pytest.fixture(scope="session")
def needs_xllamacpp() -> None:
    """Skip, saying why, where xllamacpp cannot be imported (CI installs the `embedded` extra)."""
    reason = xllamacpp_missing()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def embedded_server(needs_xllamacpp: None) -> Iterator[EmbeddedServer]:
    """The bundled model served on 127.0.0.1 (joined into the user's cache on first use)."""
    path = prepare_default_model()
    settings = ServerSettings(path, n_ctx=4096, n_threads=default_threads(), alias=DEFAULT_MODEL_NAME)
    with EmbeddedServer(settings) as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many hostile answers the corpus test ran (issue: reliability figures)."""
    import sys

    module = sys.modules.get("tests.agent.test_hostile_answers")
    if module is not None and getattr(module, "RAN", None):
        terminalreporter.write_line(f"hostile answers corpus: {len(module.RAN)} cases reasked to a valid config")
