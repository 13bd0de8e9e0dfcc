"""One study: its Optuna storage, its trial lifecycle, its files.

Everything a run learns lands in the Optuna storage first: parameters, value, state, and as trial user
attributes how the trial was proposed and what it measured (:mod:`agent.study.codec`). A JSON file per trial
under ``save_dir/trials/`` and ``save_dir/events.jsonl`` are written after it, for people and scripts.

The runner asks for one :meth:`StudyStore.snapshot` per iteration: every trial decoded once (a finished
trial never changes, so its record is kept), with the counts and the best trial derived from that one read.

Claiming a trial of the budget (:meth:`StudyStore.claim`) is one storage call: the trial is created RUNNING
with its configuration (when the strategy named one), its owner and how it was proposed. Every trial counts
toward the budget, and Optuna numbers trials 0, 1, 2... in the order they are created, so a trial numbered
below the budget is surely within it; only one numbered at or past it (workers racing for the last places)
is checked, and if the budget is already full it is marked ``surplus``, failed and never evaluated. That
keeps the budget exact with any number of workers and no lock on the common path.

Resuming: finished trials (complete, pruned, failed) count toward the budget; a trial left RUNNING by a
process that died is *adopted* (:mod:`agent.study.workers`): re-evaluated with the same parameters and
finished under the same number, so a crash never loses nor duplicates a trial.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import optuna
import structlog
from optuna.trial import FrozenTrial, TrialState

from agent._optuna import new_trial, storage_of, study_id_of, tell, trial_id_of, trial_number
from agent.errors import StudyError, UserError
from agent.records import Direction, ProposalInfo, TrialRecord
from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult

from . import codec
from .storage import close_storage, default_storage_url, open_storage
from .workers import StudyMutex, Worker

__all__ = ["OWNERLESS_GRACE_S", "PROMPTS", "PROMPTS_LATER", "StudySnapshot", "StudyStore"]

#: A RUNNING trial without an owner is taken for abandoned only this long after it started.
OWNERLESS_GRACE_S = 10.0
#: The study attributes holding the prompts its runs sent (:meth:`StudyStore.record_prompts`).
PROMPTS = "prompts"
PROMPTS_LATER = "prompts_later"


@dataclass(frozen=True)
class StudySnapshot:
    """The study as one read of its trials saw it."""

    #: Every trial of the budget, running ones included, in number order.
    records: tuple[TrialRecord, ...]
    #: RUNNING trials whose owner is dead (see :mod:`agent.study.workers`), to adopt.
    stale: tuple[FrozenTrial, ...]
    best: TrialRecord | None
    running: int
    #: RUNNING trials with no owner yet, too young to call abandoned: being claimed by a live worker, or left
    #: by one that died right then (adopted when the grace period ends).
    unowned: int = 0
    #: Failed trials of a broken start (:attr:`TrialRecord.setup_failure`): kept, but not in ``records``.
    setup_failures: int = 0

    @property
    def used(self) -> int:
        """Trials that use the budget."""
        return len(self.records)

    @property
    def finished(self) -> int:
        return len(self.records) - self.running


@dataclass
class _Live:
    """A trial of this process being evaluated."""

    trial_id: int
    config: dict[str, Choice]
    info: ProposalInfo
    started_at: str
    trial: optuna.trial.Trial | None = None  # made on demand: only reporting to a pruner needs it
    resumed: int = 0


class StudyStore:
    """One study: its Optuna storage, its folder, its events log."""

    def __init__(
        self,
        study: optuna.Study,
        save_dir: Path,
        space: SearchSpace,
        events_file: TextIO,
        direction: Direction = "minimize",
        opened: optuna.storages.BaseStorage | None = None,
    ) -> None:
        """``opened``: the storage this store opened, closed with it (None: the caller's, left open)."""
        self.study = study
        self._opened = opened
        #: The storage's URL, when this store opened it.
        self.url: str | None = None
        self.storage = storage_of(study)
        self.save_dir = save_dir
        self.space = space
        self.direction: Direction = direction
        self._distributions = space.to_optuna()
        self._worker = Worker.me()
        self._live: dict[int, _Live] = {}
        self._finished: dict[int, TrialRecord | None] = {}  # decoded finished trials by id (None: not counted)
        self._prefix: list[TrialRecord | None] = []  # the decoded trials 0..k-1, all finished
        self._best: TrialRecord | None = None
        self._failed_setup = codec.setup_failures(study.user_attrs)  # trial numbers of a broken start
        self._events_file = events_file
        self.events = structlog.wrap_logger(
            structlog.WriteLogger(events_file),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(default=str),
            ],
            context_class=dict,
            # Explicit: whatever structlog's global configuration is, the events log keeps every event.
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        )
        self._mutex = StudyMutex(self.storage, study.study_name, self._worker, self.events)
        self._study_id = study_id_of(study)

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
        direction: Direction = "minimize",
    ) -> StudyStore:
        """Create the study or load it to resume; refuse one made for another task, space or direction."""
        save_dir = Path(save_dir)
        try:
            (save_dir / "trials").mkdir(parents=True, exist_ok=True)
            events_file = open(save_dir / "events.jsonl", "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise UserError(f"--save_dir {save_dir}: cannot write there ({exc.strerror}); choose another") from exc
        opened: optuna.storages.BaseStorage | None = None
        try:
            url = storage or default_storage_url(save_dir)
            opened = open_storage(url)
            study = optuna.create_study(
                storage=opened,
                study_name=study_name,
                direction=direction,
                sampler=sampler,
                load_if_exists=True,
            )
            _check_matches(study, url, space, meta, direction)
        except BaseException:
            events_file.close()
            if opened is not None:
                close_storage(opened)
            raise
        store = cls(study, save_dir, space, events_file, direction, opened)
        store.url = url
        return store

    @classmethod
    def attach(cls, study: optuna.Study, space: SearchSpace) -> StudyStore:
        """A store over a study that Optuna itself runs (the agent's Optuna samplers): its records, and an
        events log that goes nowhere. It has no folder: it is for reading, never for claiming or finishing."""
        direction: Direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "minimize"
        return cls(study, Path(os.devnull), space, _Discard(), direction)

    def close(self) -> None:
        """Close the events log and the storage this store opened: a SQLite ``study.db`` then holds every
        trial on its own (its write-ahead log is checkpointed). Safe to call twice."""
        self._events_file.close()
        if self._opened is not None:
            close_storage(self._opened)

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def meta(self) -> dict[str, Any]:
        """What the study records about itself (task, strategy, seed, budget, prompts, final test)."""
        return dict(self.study.user_attrs)

    def set_meta(self, key: str, value: Any) -> None:
        self.study.set_user_attr(key, codec.bounded(value))

    def record_prompts(self, prompts: Mapping[str, str], trial: int) -> None:
        """Keep the prompts a run sent, as sent (the study's report shows them), the run's first model round being
        trial ``trial``: the study's first under ``prompts``; a later run's, when they differ (a resumed study
        whose budget changed), under ``prompts_later``, each with the trial from which they were sent."""
        sent = codec.bounded(dict(prompts))
        meta = self.study.user_attrs
        first = meta.get(PROMPTS)
        if not isinstance(first, Mapping):
            self.set_meta(PROMPTS, sent)
            return
        later = [p for p in meta.get(PROMPTS_LATER) or [] if isinstance(p, Mapping)]
        latest = later[-1] if later else first
        if any(latest.get(key) != text for key, text in sent.items()):
            self.set_meta(PROMPTS_LATER, [*later, {"trial": trial, **sent}])

    # ---- reading ------------------------------------------------------------------------------------

    def snapshot(self) -> StudySnapshot:
        """One read of the study's trials. A finished trial never changes: it is decoded once, and the
        leading run of finished trials is kept as it was, so only the trials after it are looked at again."""
        trials = self.study.get_trials(deepcopy=False)  # in number order
        prefix = self._prefix
        while len(prefix) < len(trials) and trials[len(prefix)].state.is_finished():
            t = trials[len(prefix)]
            record = self._decode_finished(t)
            prefix.append(record)
        records = [r for r in prefix if r is not None]  # surplus claims and WAITING trials are not records
        stale: list[FrozenTrial] = []
        running = unowned = 0
        setup_failures = sum(r.setup_failure for r in records)
        for t in trials[len(prefix) :]:
            if t.state.is_finished():
                record = self._decode_finished(t)
            elif t.state == TrialState.RUNNING:
                record = codec.decode(t)
                running += record is not None
                if self._is_stale(t):
                    stale.append(t)
                elif codec.WORKER not in t.user_attrs:
                    unowned += 1
            else:
                continue  # WAITING: enqueued by hand or left by an older version; not ours to count
            if record is not None:
                setup_failures += record.setup_failure
                records.append(record)
        counted = tuple(r for r in records if not r.setup_failure) if setup_failures else tuple(records)
        return StudySnapshot(counted, tuple(stale), self._best, running, unowned, setup_failures)

    def _decode_finished(self, trial: FrozenTrial) -> TrialRecord | None:
        key = trial_id_of(trial)
        if key not in self._finished:
            record = self._finished[key] = codec.decode(trial, self._failed_setup)
            if record is not None:
                self._best = self.best_of([record] if self._best is None else [self._best, record])
        return self._finished[key]

    def _is_stale(self, trial: FrozenTrial) -> bool:
        """A RUNNING trial whose owner is dead; one with no owner yet only once its creator had ample time to
        write it (a claim creates the trial, then names its owner)."""
        owner = trial.user_attrs.get(codec.WORKER)
        if owner is None and trial.datetime_start is not None:
            if (datetime.now() - trial.datetime_start).total_seconds() < OWNERLESS_GRACE_S:
                return False
        return self._worker.owns_stale(owner)

    def records(self) -> list[TrialRecord]:
        return list(self.snapshot().records)

    def best_of(self, records: Any) -> TrialRecord | None:
        """The best complete trial (lowest value, or highest for a maximized study; the earliest on ties)."""
        sign = -1.0 if self.direction == "maximize" else 1.0
        best: TrialRecord | None = None
        for r in records:
            if r.state == "complete" and r.value is not None:
                if best is None or sign * r.value < sign * (best.value or 0.0):
                    best = r
        return best

    # ---- writing ------------------------------------------------------------------------------------

    def claim(
        self, config: Mapping[str, Choice] | None, info: ProposalInfo, budget: int
    ) -> tuple[int, dict[str, Choice]] | None:
        """Start a trial of the budget with ``config`` (None: the study's sampler draws it), or None when the
        budget is full (taken by this worker or others). Safe with any number of workers.

        A configuration the sampler draws comes through Optuna's ``Trial``, as in ``study.ask()`` (what the
        sampler sees of the study is refreshed first); a given one is written as the trial's parameters.
        """
        trial: optuna.trial.Trial | None = None
        if config is None:
            trial = new_trial(self.study)
            trial_id = trial_id_of(trial)
        else:
            trial_id = self.storage.create_new_trial(self._study_id)
        self.storage.set_trial_user_attr(trial_id, codec.WORKER, self._worker.as_attr())
        number = trial_number(self.storage, trial_id)
        if number >= budget and not self._within_budget(number, budget):
            self.storage.set_trial_user_attr(trial_id, codec.SURPLUS, True)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
            self.events.info("claim_surplus", trial=number, budget=budget)
            return None
        for key, value in codec.encode_proposal(info).items():
            self.storage.set_trial_user_attr(trial_id, key, value)
        if trial is not None:
            chosen = {name: _suggest(trial, name, dist) for name, dist in self._distributions.items()}
        else:
            assert config is not None
            chosen = dict(config)
            for name, dist in self._distributions.items():
                self.storage.set_trial_param(trial_id, name, dist.to_internal_repr(chosen[name]), dist)
        self._live[number] = _Live(trial_id, chosen, info, _now(), trial)
        self.events.info("trial_started", trial=number, source=info.source, config=chosen)
        return number, chosen

    def _within_budget(self, number: int, budget: int) -> bool:
        """Are fewer than ``budget`` trials of the budget numbered below ``number``? (A fresh read.)"""
        earlier = [
            t
            for t in self.study.get_trials(deepcopy=False)
            if t.number < number
            and t.state != TrialState.WAITING
            and not codec.is_surplus(t)
            and t.number not in self._failed_setup
        ]
        return len(earlier) < budget

    def adopt(self, stale: FrozenTrial) -> tuple[int, dict[str, Choice]] | None:
        """Take over a trial whose process died; fill any parameter it had not got yet.

        None when another worker adopted it first (the check and the new owner are written under the mutex).
        """
        trial_id = trial_id_of(stale)
        with self._mutex.held():
            current = self.storage.get_trial(trial_id)
            if current.state != TrialState.RUNNING or not self._is_stale(current):
                return None
            self.storage.set_trial_user_attr(trial_id, codec.WORKER, self._worker.as_attr())
        resumed = int(current.user_attrs.get(codec.RESUMED, 0)) + 1
        self.storage.set_trial_user_attr(trial_id, codec.RESUMED, resumed)
        record = codec.decode(current)
        info = record.proposal if record is not None else ProposalInfo()
        if not current.params:  # its claim never got as far as a configuration: nobody proposed it
            info = ProposalInfo(source="resumed")
            for key, value in codec.encode_proposal(info).items():
                self.storage.set_trial_user_attr(trial_id, key, value)
        trial = optuna.trial.Trial(self.study, trial_id)
        config = {name: _suggest(trial, name, dist) for name, dist in self._distributions.items()}
        self._live[stale.number] = _Live(trial_id, config, info, _now(), trial, resumed)
        self.events.info("trial_adopted", trial=stale.number, config=config)
        return stale.number, config

    def reporter(self, number: int) -> Callable[[int, float], bool]:
        """``report(step, value) -> should_prune`` for a running trial: Optuna's ``report`` and pruner."""
        live = self._live[number]
        if live.trial is None:
            live.trial = optuna.trial.Trial(self.study, live.trial_id)
        trial = live.trial

        def report(step: int, value: float) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        return report

    def finish(self, number: int, result: EvalResult, seconds: float) -> TrialRecord:
        """Record the evaluation, then write the trial's JSON file."""
        live = self._live.pop(number)
        self.storage.set_trial_user_attr(
            live.trial_id, codec.RESULT, codec.encode_result(result.metrics, result.error, seconds)
        )
        self._tell(number, result)
        record = TrialRecord(
            number=number,
            config=live.config,
            state=result.state,
            value=result.value if result.state == "complete" else None,
            metrics=dict(result.metrics),
            error=result.error,
            proposal=live.info,
            seconds=round(seconds, 4),
            resumed=live.resumed,
        )
        self._write_trial_json(record, live.started_at, _now(), self._worker.as_attr())
        self.events.info(
            "trial_finished",
            trial=number,
            state=record.state,
            value=record.value,
            error=record.error,
            seconds=round(seconds, 4),
        )
        return record

    def _tell(self, number: int, result: EvalResult) -> None:
        value = result.value if result.value is not None and math.isfinite(result.value) else None
        if result.state == "complete" and value is not None:
            tell(self.study, number, value, TrialState.COMPLETE)
        elif result.state == "pruned":  # Optuna keeps the last intermediate value of a pruned trial
            tell(self.study, number, None, TrialState.PRUNED)
        else:
            tell(self.study, number, None, TrialState.FAIL)

    def mark_setup_failures(self, numbers: list[int], reason: str) -> None:
        """Mark the failed trials ``numbers`` as the setup failures of a broken start: kept in the study and
        their files, left out of the budget (a fixed setup then runs its whole budget). The study lists them
        (:data:`codec.SETUP_FAILURES`): Optuna changes nothing of a finished trial."""
        self._failed_setup = self._failed_setup | set(numbers)
        self.study.set_user_attr(codec.SETUP_FAILURES, sorted(self._failed_setup))
        for t in self.study.get_trials(deepcopy=False):
            if t.number not in numbers or not t.state.is_finished():
                continue
            record = codec.decode(t, self._failed_setup)
            if record is None:
                continue
            self._finished[trial_id_of(t)] = record
            if t.number < len(self._prefix):
                self._prefix[t.number] = record
            path = self._trial_path(t.number)
            if path.exists():
                self._write_json(t.number, {**json.loads(path.read_text()), "setup_failure": record.setup_failure})
        self.events.error("setup_broken", trials=sorted(numbers), error=reason)

    def sync_files(self) -> int:
        """Write the JSON file of any finished trial that lacks one (a crash between storage and file)."""
        written = 0
        for t in self.study.get_trials(deepcopy=False):
            if not t.state.is_finished() or self._trial_path(t.number).exists():
                continue
            record = codec.decode(t, self._failed_setup)
            if record is not None:
                worker = t.user_attrs.get(codec.WORKER)
                self._write_trial_json(record, _iso(t.datetime_start), _iso(t.datetime_complete), worker)
                written += 1
        return written

    def trial_directory(self, number: int) -> Path:
        """A folder of the trial's own, next to its JSON file (created here)."""
        path = self.save_dir / "trials" / f"trial_{number:04d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _trial_path(self, number: int) -> Path:
        return self.save_dir / "trials" / f"trial_{number:04d}.json"

    def _write_trial_json(
        self, record: TrialRecord, started_at: str | None, finished_at: str | None, worker: Any
    ) -> None:
        proposal = codec.encode_proposal(record.proposal)
        body = {
            "study": self.study.study_name,
            "trial": record.number,
            "state": record.state,
            "value": record.value,
            "hyperparameters": record.config,
            "metrics": record.metrics,
            "error": record.error,
            "source": proposal.pop("source", "sampler"),
            "started_at": started_at,
            "finished_at": finished_at,
            "seconds": record.seconds,
            **proposal,
            "worker": worker,
            "resumed": record.resumed,
            **({"setup_failure": True} if record.setup_failure else {}),
        }
        self._write_json(record.number, body)

    def _write_json(self, number: int, body: Mapping[str, Any]) -> None:
        path = self._trial_path(number)
        tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body, indent=2, default=str))
        os.replace(tmp, path)


class _Discard(io.StringIO):
    """An events file that keeps nothing."""

    def write(self, text: str) -> int:
        return len(text)


def _check_matches(
    study: optuna.Study, url: str, space: SearchSpace, meta: Mapping[str, Any], direction: Direction
) -> None:
    """A new study gets the space and ``meta``; an existing one must have been made for the same task."""
    stored_space = study.user_attrs.get("space")
    if stored_space is None:
        study.set_user_attr("space", space.to_dict())
        for key, value in meta.items():
            study.set_user_attr(key, value)
        return
    where = f"study {study.study_name!r} in {url}"
    if _canon(stored_space) != _canon(space.to_dict()):
        raise StudyError(f"{where} was created with another search space; use a new --save_dir (or --study-name)")
    if "task" in meta and study.user_attrs.get("task") not in (None, meta["task"]):
        raise StudyError(
            f"{where} belongs to task {study.user_attrs.get('task')!r}, not {meta['task']!r}; "
            "use a new --save_dir (or --study-name)"
        )
    stored_direction = study.direction.name.lower()
    if stored_direction != direction:
        raise StudyError(f"{where} {stored_direction}s its objective, this task {direction}s it; use a new --save_dir")


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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat(timespec="milliseconds")
