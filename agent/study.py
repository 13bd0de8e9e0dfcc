"""Study storage: an Optuna study (SQLite by default) plus per-trial JSON files and an events log.

Everything a run learns lands in the Optuna storage first: parameters, value, state, the model's raw answer,
the round's conversation, reasks and usage (as trial user attributes). The JSON file per trial under
``save_dir/trials/`` and ``save_dir/events.jsonl`` are written after it, for people and scripts.

Resuming: finished trials (complete, pruned, failed) count toward the budget; a trial left RUNNING by a
process that died is *adopted* (re-evaluated with the same parameters and finished under the same number),
so a crash never loses nor duplicates a trial.

Several processes on one study (same storage, same study name) share the budget through :meth:`StudyStore.claim`:

- a *slot* of the budget is a WAITING trial (``study.enqueue_trial({})``); a worker holding a proposal claims
  one by writing its owner on it and moving it WAITING -> RUNNING with ``storage.set_trial_state_values``,
  the call ``study.ask()`` uses to pop enqueued trials: of two workers racing for one slot exactly one gets
  ``True`` (on SQLite only with ``BEGIN IMMEDIATE`` transactions, which :func:`open_storage` sets). The owner
  is written before the state changes, so no RUNNING trial of ours is ever without an owner (an ownerless
  one is stale at once);
- topping up the slots (counting the trials, then enqueueing one more while fewer than ``budget`` exist) is
  the one read-then-write step, so it runs under a study-wide mutex: a lock study ``<name>.lock`` that only
  one worker can create (``create_new_study`` raises ``DuplicatedStudyError`` for the others, in RDB and
  journal storages alike) and that its holder deletes. A lock whose holder died (same host: its process is
  gone; another host: older than ``_LOCK_STALE_S``) is broken by deleting it by id. Adopting a stale trial
  takes the mutex too, so two workers never adopt the same trial.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, get_args

import optuna
import optuna.storages.journal
import sqlalchemy
import structlog
from optuna.trial import FrozenTrial, TrialState

from evaluators.base import EvalResult

from .errors import StudyError, UserError
from .memory import Round, load_parts
from .records import ProposalSource, TrialRecord
from .space import Choice, SearchSpace

__all__ = ["StudyStore", "default_storage_url", "open_storage"]

_STATE = {
    TrialState.COMPLETE: "complete",
    TrialState.FAIL: "fail",
    TrialState.PRUNED: "pruned",
    TrialState.RUNNING: "running",
}
_FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
_MAX_ATTR_CHARS = 20_000
_LOCK_STALE_S = 120.0  # a lock of another host older than this is taken to be abandoned

optuna.logging.set_verbosity(optuna.logging.WARNING)


def default_storage_url(save_dir: Path) -> str:
    return f"sqlite:///{save_dir.resolve() / 'study.db'}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; SQLite waits on locks instead of failing when workers share it."""
    try:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.parent.is_dir():
                raise UserError(f"--storage {url}: the folder {path.parent} does not exist; create it first")
            storage = _retry_schema_race(
                lambda: optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
            )
            sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
            sqlalchemy.event.listen(storage.engine, "begin", _sqlite_begin_immediate)
            storage.engine.dispose()  # connections made before the listener get the pragmas too
            return storage
        if url.endswith(".log") or url.startswith("journal:"):
            file = url.removeprefix("journal:")
            backend = optuna.storages.journal.JournalFileBackend(file)
            return optuna.storages.JournalStorage(backend)
        return _retry_schema_race(lambda: optuna.storages.RDBStorage(url))
    except UserError:
        raise
    except Exception as exc:  # SQLAlchemy raises many kinds; all mean the same to a user
        raise UserError(f"--storage {url}: cannot open the study storage: {exc}") from exc


def _sqlite_begin_immediate(connection: Any) -> None:
    """Every transaction takes SQLite's write lock when it begins (SQLAlchemy's pysqlite recipe).

    pysqlite otherwise begins a transaction only at the first write, so the read in Optuna's
    ``set_trial_state_values`` (is the trial still WAITING?) runs outside it, and two workers could both move
    one WAITING trial to RUNNING (seen in 2 of 6 two-worker runs before this).
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _retry_schema_race(make: Callable[[], optuna.storages.RDBStorage]) -> optuna.storages.RDBStorage:
    """Workers starting at once on a new database race to create its tables; the loser finds them made."""
    for attempt in range(5):
        try:
            return make()
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError) as exc:
            if not ("already exists" in str(exc) or "alembic_version" in str(exc)) or attempt == 4:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL with synchronous=NORMAL: a commit costs microseconds instead of an fsync (Optuna commits ~25
    times a trial), and a killed process still loses nothing; only a power cut may drop the last commits."""
    connection.isolation_level = None  # pysqlite's own BEGIN comes too late; _sqlite_begin_immediate does it
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@dataclass(frozen=True)
class _Worker:
    """Who runs a trial: host, process id and the process's start time (so a reused pid is not mistaken)."""

    host: str
    pid: int
    started: int | None
    token: str

    @classmethod
    def me(cls) -> _Worker:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _process_start(pid), uuid.uuid4().hex)

    def as_attr(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "started": self.started, "token": self.token}

    def owns_stale(self, attr: Any) -> bool:
        """Is a RUNNING trial with owner ``attr`` abandoned (its process is gone)?

        Trials of another host are never judged from here: their worker may well be alive.
        """
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


class StudyStore:
    """One study: its Optuna storage, its folder, its events log."""

    def __init__(
        self,
        study: optuna.Study,
        save_dir: Path,
        space: SearchSpace,
        events_file: TextIO,
        storage: optuna.storages.BaseStorage | None = None,
    ) -> None:
        self.study = study
        self.storage = storage if storage is not None else study._storage
        self.save_dir = save_dir
        self.space = space
        self._distributions = space.to_optuna()
        self._worker = _Worker.me()
        self._live: dict[int, optuna.trial.Trial] = {}
        #: Slots enqueued per top-up: more means fewer mutex rounds, but more WAITING trials left behind when
        #: a run is interrupted (they are claimed by the next run).
        self.slot_chunk = 1
        self._events_file = events_file
        self.events = structlog.wrap_logger(
            structlog.WriteLogger(events_file),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(default=str),
            ],
            context_class=dict,
            # Explicit: the CLI filters the global structlog config to warnings, not our event log.
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        )

    # ---- opening ------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        *,
        save_dir: Path,
        study_name: str,
        space: SearchSpace,
        meta: Mapping[str, Any],
        storage: str | None = None,
        sampler: optuna.samplers.BaseSampler | None = None,
    ) -> StudyStore:
        """Create the study or load it to resume; refuse one made for another task or search space."""
        save_dir = Path(save_dir)
        try:
            (save_dir / "trials").mkdir(parents=True, exist_ok=True)
            events_file = open(save_dir / "events.jsonl", "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise UserError(f"--save_dir {save_dir}: cannot write there ({exc.strerror}); choose another") from exc
        try:
            url = storage or default_storage_url(save_dir)
            backend = open_storage(url)
            study = optuna.create_study(
                storage=backend,
                study_name=study_name,
                direction="minimize",
                sampler=sampler,
                load_if_exists=True,
            )
            stored_space = study.user_attrs.get("space")
            current_space = space.to_dict()
            if stored_space is None:
                study.set_user_attr("space", current_space)
                for key, value in meta.items():
                    study.set_user_attr(key, value)
            else:
                if _canon(stored_space) != _canon(current_space):
                    raise StudyError(
                        f"study {study_name!r} in {url} was created with another search space; "
                        "use a new --save_dir (or --study-name) for a new space"
                    )
                for key in ("task",):
                    if key in meta and study.user_attrs.get(key) not in (None, meta[key]):
                        raise StudyError(
                            f"study {study_name!r} in {url} belongs to task {study.user_attrs.get(key)!r}, "
                            f"not {meta[key]!r}; use a new --save_dir (or --study-name)"
                        )
        except BaseException:
            events_file.close()
            raise
        return cls(study, save_dir, space, events_file, backend)

    def close(self) -> None:
        self._events_file.close()

    # ---- reading ------------------------------------------------------------------------------------

    def _trials(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def records(self) -> list[TrialRecord]:
        return [_record(t) for t in self._trials() if t.state in _STATE]

    def used_count(self) -> int:
        """Trials that use the budget: every trial but the WAITING slots not yet claimed."""
        return sum(1 for t in self._trials() if t.state != TrialState.WAITING)

    def finished_count(self) -> int:
        return sum(1 for t in self._trials() if t.state in _FINISHED)

    def live_running_count(self) -> int:
        """RUNNING trials whose owner is alive (another worker's, or ours)."""
        return sum(
            1
            for t in self._trials()
            if t.state == TrialState.RUNNING and not self._worker.owns_stale(t.user_attrs.get("worker"))
        )

    def stale_trials(self) -> list[FrozenTrial]:
        return [
            t
            for t in self._trials()
            if t.state == TrialState.RUNNING and self._worker.owns_stale(t.user_attrs.get("worker"))
        ]

    def rounds(self) -> list[Round]:
        """The stored conversation, one round per trial that has one."""
        out = []
        for t in self._trials():
            parts = t.user_attrs.get("conversation")
            if parts:
                out.append(Round(trial=t.number, parts=tuple(load_parts(parts))))
        return out

    def best(self) -> TrialRecord | None:
        done = [r for r in self.records() if r.state == "complete" and r.value is not None]
        return min(done, key=lambda r: (r.value, r.number)) if done else None

    # ---- writing ------------------------------------------------------------------------------------

    def claim(
        self,
        config: Mapping[str, Choice] | None,
        source: ProposalSource,
        attrs: Mapping[str, Any],
        budget: int,
    ) -> tuple[int, dict[str, Choice]] | None:
        """Start a trial of the budget with ``config`` (None: the study's sampler draws it), or None when every
        slot of ``budget`` is taken (by this worker or another). Safe with any number of workers."""
        trial_id = self._claim_slot(budget)
        if trial_id is None:
            return None
        trial = optuna.trial.Trial(self.study, trial_id)
        trial.set_user_attr("source", source)
        trial.set_user_attr("started_at", _now())
        for key, value in attrs.items():
            trial.set_user_attr(key, _bounded(value))
        with self._fixed(config):
            chosen = {name: _suggest(trial, name, dist) for name, dist in self._distributions.items()}
        self._live[trial.number] = trial
        self.events.info("trial_started", trial=trial.number, source=source, config=chosen)
        return trial.number, chosen

    def _claim_slot(self, budget: int) -> int | None:
        while True:
            if self.used_count() >= budget:  # slots left over from a larger budget stay unclaimed
                return None
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                if self._pop(t._trial_id):  # Optuna exposes no public id accessor
                    return t._trial_id
            with self._mutex():  # no slot left: top up to the budget, once, whoever gets here first
                trials = self._trials()
                used = sum(1 for t in trials if t.state != TrialState.WAITING)
                missing = budget - len(trials)
                if used >= budget:
                    return None
                for _ in range(min(missing, self.slot_chunk)):
                    self.study.enqueue_trial({})
                self.events.info("slots_enqueued", n=min(max(missing, 0), self.slot_chunk), budget=budget)

    def _pop(self, trial_id: int) -> bool:
        """WAITING -> RUNNING, atomically: True for exactly one of the workers that try."""
        owner = self._worker.as_attr()
        try:
            self.storage.set_trial_user_attr(trial_id, "worker", owner)  # before RUNNING: never ownerless
            if not self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                return False
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            return False  # another worker claimed and finished it meanwhile
        # A worker that lost the race may have written its name after ours: write ours again.
        self.storage.set_trial_user_attr(trial_id, "worker", owner)
        return True

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        """The study-wide lock: a study named ``<name>.lock`` exists while a worker holds it."""
        name = f"{self.study.study_name}.lock"
        seen_ownerless: dict[int, float] = {}
        while True:
            try:
                lock_id = self.storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], name)
            except optuna.exceptions.DuplicatedStudyError:
                self._maybe_break_lock(name, seen_ownerless)
                time.sleep(0.005 + 0.02 * (os.getpid() % 7) / 7)
                continue
            self.storage.set_study_user_attr(lock_id, "worker", {**self._worker.as_attr(), "at": time.time()})
            break
        try:
            yield
        finally:
            with contextlib.suppress(KeyError):
                self.storage.delete_study(lock_id)

    def _maybe_break_lock(self, name: str, seen_ownerless: dict[int, float]) -> None:
        try:
            lock_id = self.storage.get_study_id_from_name(name)
            owner = self.storage.get_study_user_attrs(lock_id).get("worker")
        except KeyError:
            return  # released meanwhile
        if owner is None:  # created, owner not written yet (or its creator died right then)
            first = seen_ownerless.setdefault(lock_id, time.monotonic())
            stale = time.monotonic() - first > 10.0
        elif owner.get("host") == self._worker.host:
            stale = self._worker.owns_stale(owner)
        else:
            stale = time.time() - float(owner.get("at", 0.0)) > _LOCK_STALE_S
        if stale:
            with contextlib.suppress(KeyError):
                self.storage.delete_study(lock_id)  # by id: a lock taken since then is not touched
            self.events.info("lock_broken", lock=name, owner=owner)

    def adopt(self, stale: FrozenTrial) -> tuple[int, dict[str, Choice]] | None:
        """Take over a trial whose process died; fill any parameter it had not got yet.

        None when another worker adopted it first (the check and the new owner are written under the mutex).
        """
        with self._mutex():
            current = self.storage.get_trial(stale._trial_id)  # Optuna exposes no public id accessor
            if current.state != TrialState.RUNNING or not self._worker.owns_stale(current.user_attrs.get("worker")):
                return None
            self.storage.set_trial_user_attr(stale._trial_id, "worker", self._worker.as_attr())
        trial = optuna.trial.Trial(self.study, stale._trial_id)
        chosen = {name: _suggest(trial, name, dist) for name, dist in self._distributions.items()}
        self._live[stale.number] = trial
        trial.set_user_attr("resumed", int(stale.user_attrs.get("resumed", 0)) + 1)
        if "source" not in stale.user_attrs:
            trial.set_user_attr("source", "resumed")
        self.events.info("trial_adopted", trial=stale.number, config=chosen)
        return stale.number, chosen

    def reporter(self, number: int) -> Callable[[int, float], bool]:
        """``report(step, value) -> should_prune`` for a running trial: Optuna's ``report`` and pruner."""
        trial = self._live[number]

        def report(step: int, value: float) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        return report

    def finish(self, number: int, result: EvalResult, seconds: float) -> TrialRecord:
        """Record the evaluation, then write the trial's JSON file."""
        trial = self._live.pop(number)
        trial.set_user_attr("metrics", _bounded(result.metrics))
        trial.set_user_attr("error", result.error)
        trial.set_user_attr("seconds", round(seconds, 4))
        trial.set_user_attr("finished_at", _now())
        state = {"complete": TrialState.COMPLETE, "fail": TrialState.FAIL, "pruned": TrialState.PRUNED}[result.state]
        self.study.tell(trial, result.value if state == TrialState.COMPLETE else None, state=state)
        final = next(t for t in self._trials() if t.number == number)
        record = _record(final)
        self._write_trial_json(final)
        self.events.info(
            "trial_finished",
            trial=number,
            state=record.state,
            value=record.value,
            error=record.error,
            seconds=round(seconds, 4),
        )
        return record

    def sync_files(self) -> int:
        """Write the JSON file of any finished trial that lacks one (a crash between storage and file)."""
        written = 0
        for t in self._trials():
            if t.state in _FINISHED and not self._trial_path(t.number).exists():
                self._write_trial_json(t)
                written += 1
        return written

    def _trial_path(self, number: int) -> Path:
        return self.save_dir / "trials" / f"trial_{number:04d}.json"

    def _write_trial_json(self, t: FrozenTrial) -> None:
        attrs = dict(t.user_attrs)
        body = {
            "study": self.study.study_name,
            "trial": t.number,
            "state": _STATE.get(t.state, str(t.state)),
            "value": t.value,
            "hyperparameters": t.params,
            "metrics": attrs.pop("metrics", {}),
            "error": attrs.pop("error", None),
            "source": attrs.pop("source", None),
            "started_at": attrs.pop("started_at", None),
            "finished_at": attrs.pop("finished_at", None),
            "seconds": attrs.pop("seconds", None),
            **attrs,
        }
        path = self._trial_path(t.number)
        tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body, indent=2, default=str))
        os.replace(tmp, path)

    @contextlib.contextmanager
    def _fixed(self, config: Mapping[str, Choice] | None) -> Iterator[None]:
        if config is None:
            yield
            return
        base = self.study.sampler
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.sampler = optuna.samplers.PartialFixedSampler(dict(config), base)
        try:
            yield
        finally:
            self.study.sampler = base


def _record(t: FrozenTrial) -> TrialRecord:
    source = t.user_attrs.get("source", "sampler")
    return TrialRecord(
        number=t.number,
        config=dict(t.params),
        state=_STATE[t.state],  # type: ignore[arg-type]
        value=t.value if t.state == TrialState.COMPLETE else None,
        metrics=dict(t.user_attrs.get("metrics") or {}),
        error=t.user_attrs.get("error"),
        source=source if source in get_args(ProposalSource) else "sampler",
    )


def _suggest(trial: optuna.trial.Trial, name: str, dist: optuna.distributions.BaseDistribution) -> Choice:
    """Suggest through the public API; an already-set parameter comes back unchanged."""
    if isinstance(dist, optuna.distributions.FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    assert isinstance(dist, optuna.distributions.CategoricalDistribution)
    value = trial.suggest_categorical(name, dist.choices)
    assert value is not None, f"{name}: None is not a choice of our spaces"
    return value


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def _bounded(value: Any) -> Any:
    """Keep attributes storable: an enormous model answer is cut, with a note of its real length."""
    if isinstance(value, str) and len(value) > _MAX_ATTR_CHARS:
        return value[:_MAX_ATTR_CHARS] + f"... [cut: {len(value)} characters in all]"
    if isinstance(value, list):
        return [_bounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _bounded(v) for k, v in value.items()}
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
