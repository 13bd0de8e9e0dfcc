"""Processes in tests: how to start the agent, and whether processes still run, read from /proc (no psutil), for
tests that nothing is left running."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path

#: ``python -c`` code running ``python -m agent`` with SIGINT raising KeyboardInterrupt, whatever this process
#: inherited: pytest started from a background job or under nohup ignores SIGINT, a child inherits an ignored
#: signal, and Python then installs no handler of its own.
_WITH_SIGINT = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('agent', run_name='__main__', alter_sys=True)"
)


def agent_argv(*args: str) -> list[str]:
    """The command line of ``python -m agent ARGS`` that Ctrl-C (SIGINT) stops as it stops a user's."""
    return [sys.executable, "-c", _WITH_SIGINT, *args]


def alive(pid: int) -> bool:
    """Is ``pid`` a running process (a zombie, dead but not yet reaped, is not)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[1].split()[0] != "Z"


def wait_gone(pids: Iterable[int], timeout: float = 15.0) -> list[int]:
    """Wait until none of ``pids`` runs; the ones still running after ``timeout`` seconds."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def read_pids(folder: Path, pattern: str = "*.pid") -> list[int]:
    return [int(p.read_text()) for p in sorted(folder.glob(pattern)) if p.read_text().strip()]


def wait_for_pids(folder: Path, count: int, timeout: float = 30.0, pattern: str = "*.pid") -> list[int]:
    """Wait until ``count`` pid files are written in ``folder``; their pids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = read_pids(folder, pattern) if folder.is_dir() else []
        if len(pids) >= count:
            return pids
        time.sleep(0.05)
    raise TimeoutError(f"{count} pid files did not appear in {folder} within {timeout} s")
