"""Who runs a trial, whether that process is still alive, and a study-wide lock for the rare exclusive step.

Several processes (on one machine or many) may run one study. Each trial records its owner (host, pid, the
process's start time, a random token). A RUNNING trial whose owner is dead is *stale*: another worker adopts
it and re-runs it under the same number.

Why not Optuna's heartbeats (``RDBStorage(heartbeat_interval=...)`` with ``RetryFailedTrialCallback``): a
heartbeat declares a trial dead only after its grace period (a minute or more), fails it and retries a copy
under a new number; journal files would need their own. Owners on the same host are judged at once from
``/proc`` (the process is gone, or its pid was reused by a process started later), so a crashed run resumes
its own trials the moment it restarts, under their numbers. Owners on another host are never judged from
here: their worker may well be alive.

:class:`StudyMutex` is a lock study ``<name>.lock`` that only one worker can create (``create_new_study``
raises ``DuplicatedStudyError`` for the others, in RDB and journal storages alike) and that its holder
deletes. A lock whose holder died (same host: its process is gone; another host: older than
``LOCK_STALE_S``) is broken by deleting it by id. Adopting a stale trial takes it, so a trial is adopted
once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from agent.events import EventSink

__all__ = ["LOCK_STALE_S", "StudyMutex", "Worker"]

LOCK_STALE_S = 120.0  # a lock of another host older than this is taken to be abandoned


@dataclass(frozen=True)
class Worker:
    """Who runs a trial: host, process id and the process's start time (so a reused pid is not mistaken)."""

    host: str
    pid: int
    started: int | None
    token: str

    @classmethod
    def me(cls) -> Worker:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _process_start(pid), uuid.uuid4().hex)

    def as_attr(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "started": self.started, "token": self.token}

    def owns_stale(self, attr: Any) -> bool:
        """Is a RUNNING trial with owner ``attr`` abandoned (its process is gone)?"""
        if not isinstance(attr, Mapping):
            return True  # no owner recorded: nobody will finish it
        if attr.get("host") != self.host or attr.get("token") == self.token:
            return False
        pid = attr.get("pid")
        if not isinstance(pid, int):
            return True
        started = attr.get("started")
        now = _process_start(pid)
        if now is None:  # with /proc: the process is gone; without (macOS): ask the pid alone
            return _HAVE_PROC or not _pid_alive(pid)
        return started is not None and started != now


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":  # a zombie: killed, not yet reaped
        return None
    return int(fields[19])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_HAVE_PROC = os.path.isdir("/proc/self")


class StudyMutex:
    """The study-wide lock (see the module docstring)."""

    def __init__(self, storage: optuna.storages.BaseStorage, study_name: str, worker: Worker, events: EventSink):
        self._storage = storage
        self._name = f"{study_name}.lock"
        self._worker = worker
        self._events = events

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        seen_ownerless: dict[int, float] = {}
        while True:
            try:
                lock_id = self._storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], self._name)
            except optuna.exceptions.DuplicatedStudyError:
                self._maybe_break(seen_ownerless)
                time.sleep(0.005 + 0.02 * (os.getpid() % 7) / 7)
                continue
            self._storage.set_study_user_attr(lock_id, "worker", {**self._worker.as_attr(), "at": time.time()})
            break
        try:
            yield
        finally:
            with contextlib.suppress(KeyError):
                self._storage.delete_study(lock_id)

    def _maybe_break(self, seen_ownerless: dict[int, float]) -> None:
        try:
            lock_id = self._storage.get_study_id_from_name(self._name)
            owner = self._storage.get_study_user_attrs(lock_id).get("worker")
        except KeyError:
            return  # released meanwhile
        if owner is None:  # created, owner not written yet (or its creator died right then)
            first = seen_ownerless.setdefault(lock_id, time.monotonic())
            stale = time.monotonic() - first > 10.0
        elif owner.get("host") == self._worker.host:
            stale = self._worker.owns_stale(owner)
        else:
            stale = time.time() - float(owner.get("at", 0.0)) > LOCK_STALE_S
        if stale:
            with contextlib.suppress(KeyError):
                self._storage.delete_study(lock_id)  # by id: a lock taken since then is not touched
            self._events.info("lock_broken", lock=self._name, owner=owner)
