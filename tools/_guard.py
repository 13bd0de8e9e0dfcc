"""Runs a trial's command so that nothing it starts outlives the study.

    python -I _guard.py PARENT_PID GRACE_S -- PROGRAM ARGS...

The runner starts this guard in a session of its own (so a Ctrl-C on the terminal reaches the runner, which
stops trials its own way); the guard starts the command in a process group of its own, waits for it, and
stops that whole group (SIGTERM, then SIGKILL after GRACE_S seconds) when

- it is told to (SIGTERM, SIGINT or SIGHUP: the runner cancelled the trial, it timed out or was pruned);
- its parent dies, however it dies, SIGKILL included: Linux signals the guard at once
  (``prctl(PR_SET_PDEATHSIG)``), and on every platform the guard sees within 0.2 s that its parent changed.

When the command exits by itself, whatever it started and left running in its group is killed too (it would
otherwise hold the command's output open). The guard exits with the command's status, re-raising the signal
that killed it. It uses the standard library only and runs as a plain script with ``-I``, so it imports
nothing of the agent and does not depend on the folder it runs in.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
from types import FrameType

_POLL_S = 0.2
_PR_SET_PDEATHSIG = 1
_stop_requested = False


def _request_stop(signum: int, frame: FrameType | None) -> None:
    global _stop_requested
    _stop_requested = True


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (elsewhere the polling below serves)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl: polling remains
        pass


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_group(child: subprocess.Popen[bytes], grace_s: float) -> None:
    _signal_group(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(child.pid, signal.SIGKILL)
    child.wait()


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: _guard.py PARENT_PID GRACE_S -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    parent, grace_s, command = int(argv[1]), float(argv[2]), argv[4:]
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _request_stop)
    _die_with_parent()
    if os.getppid() != parent or _stop_requested:  # the runner died, or stopped the trial, before it began
        return 1
    try:
        child = subprocess.Popen(command, process_group=0)
    except OSError as exc:
        print(f"cannot run {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    while True:
        try:
            code = child.wait(timeout=_POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
        if _stop_requested or os.getppid() != parent:
            _stop_group(child, grace_s)
            return 128 + int(signal.SIGTERM)
    _signal_group(child.pid, signal.SIGKILL)  # what the command left running in its group
    if code < 0:  # killed by a signal: die the same way (leaving no core file), so the runner sees it
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL and SIGSTOP have no handler to reset
            pass
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
