"""One study: its Optuna storage, its trial lifecycle, its files.

Everything a run learns lands in the Optuna storage first: parameters, value, state, and as trial user
attributes how the trial was proposed and what it measured (:mod:`agent.study.codec`). A JSON file per trial
under ``save_dir/trials/`` and ``save_dir/events.jsonl`` are written after it, for people and scripts.

Opening a study checks it against what this run asks (:mod:`agent.study.terms`: the task, space, metric,
direction and sources) before anything is written: a refused study leaves no folder, file or attribute.

The runner asks for one :meth:`StudyStore.snapshot` per iteration: every trial decoded once (a finished
trial never changes, so its record is kept), with the counts and the best trial derived from that one read.

Claiming a trial of the budget (:meth:`StudyStore.claim`) first passes its configuration through the door
(:mod:`agent.study.door`); then a configuration the strategy named is written in one storage call: the
trial is created RUNNING with its whole configuration, its owner and how it was proposed, so a kill cannot
leave half of it. A configuration the study's sampler draws comes through Optuna's ``Trial`` (the sampler
needs the trial), parameter by parameter, and is admitted once drawn. Every trial counts toward the budget,
and Optuna numbers trials 0, 1, 2... in the order they are created, so a trial numbered below the budget is
surely within it; only one numbered at or past it (workers racing for the last places; probes and setup
failures, which do not count, moving the numbers on) is checked, and if the budget is already full it is
marked ``surplus``, failed and never evaluated. That keeps the budget exact with any number of workers and
no lock on the common path.

Resuming: finished trials (complete, pruned, failed) count toward the budget; a trial left RUNNING by a
process that died is *adopted* (:mod:`agent.study.workers`): re-evaluated with exactly its configuration and
finished under the same number, so a crash never loses nor duplicates a trial. A RUNNING trial whose
configuration is not whole and valid (a draw cut short by a kill, a claim of an older version that wrote
parameters one by one) ran nothing anybody proposed: it is marked ``void`` (failed, not counted) and the
round is proposed again.
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

from agent._log import get_logger
from agent._optuna import new_trial, storage_of, study_id_of, tell, trial_id_of, trial_number
from agent.errors import InvalidSuggestion, UserError
from agent.records import Direction, ProposalInfo, TrialRecord
from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult

from . import codec
from .door import admit
from .reporting import StepReporter
from .storage import close_storage, default_storage_url, open_storage, point_to
from .terms import StudyTerms
from .workers import StudyMutex, Worker

__all__ = ["OWNERLESS_GRACE_S", "PROMPTS", "PROMPTS_LATER", "StudySnapshot", "StudyStore"]

_log = get_logger(__name__)

#: A RUNNING trial without an owner is taken for abandoned only this long after it started.
OWNERLESS_GRACE_S = 10.0
#: The study attributes holding the prompts its runs sent (:meth:`StudyStore.record_prompts`).
PROMPTS = "prompts"
PROMPTS_LATER = "prompts_later"


@dataclass(frozen=True)
class StudySnapshot:
    """The study as one read of its trials saw it."""

    #: Every trial of the budget and every probe (outside it), running ones included, in number order.
    records: tuple[TrialRecord, ...]
    #: RUNNING trials whose owner is dead (see :mod:`agent.study.workers`), to adopt.
    stale: tuple[FrozenTrial, ...]
    best: TrialRecord | None
    #: Running trials of the budget.
    running: int
    #: RUNNING trials with no owner yet, too young to call abandoned: being claimed by a live worker, or left
    #: by one that died right then (adopted when the grace period ends).
    unowned: int = 0
    #: Failed trials of a broken start (:attr:`TrialRecord.setup_failure`): kept, but not in ``records``.
    setup_failures: int = 0
    #: Probes of the setup among ``records`` (:attr:`TrialRecord.probe`): seen, but outside the budget.
    probes: int = 0
    #: Every trial the study holds, whatever it is: each was a draw of its sampler.
    created: int = 0

    @property
    def used(self) -> int:
        """Trials that use the budget."""
        return len(self.records) - self.probes

    @property
    def finished(self) -> int:
        """Finished trials of the budget."""
        return self.used - self.running


@dataclass
class _Live:
    """A trial of this process being evaluated."""

    trial_id: int
    config: dict[str, Choice]
    info: ProposalInfo
    started_at: str
    trial: optuna.trial.Trial | None = None  # a sampler's draw: the trial it was drawn through
    resumed: int = 0
    scheduled: bool = False  # it reports its steps to the study's scheduler


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
        sources: tuple[str, ...] = (),
        scheduler: Mapping[str, Any] | None = None,
        time_budget_s: float | None = None,
    ) -> StudyStore:
        """Create the study or load it to resume; a study made for another task (:mod:`agent.study.terms`:
        the ``task`` and ``metric`` of ``meta``, ``space``, ``direction``, ``sources``) is refused before
        anything is written. ``meta``: more attributes a new study stores (strategy, seed, description);
        ``scheduler``: which trials stop early (:mod:`agent.study.scheduler`), kept with the study;
        ``time_budget_s``: the time budget asked (``--time-budget``; None: the one the study keeps, if any)."""
        save_dir = Path(save_dir)
        terms = StudyTerms(
            space=space,
            direction=direction,
            task=meta.get("task"),
            metric=meta.get("metric"),
            sources=sources,
            scheduler=scheduler,
            time_budget_s=time_budget_s,
        )
        url = storage or default_storage_url(save_dir)
        if _lives_in(url, save_dir):  # the default storage (or a file the user put there) needs the folder
            _make_folder(save_dir)
        opened = open_storage(url)
        events_file: TextIO | None = None
        try:
            study = _load_or_create(opened, study_name, url, terms, meta, sampler)
            _make_folder(save_dir / "trials", flag_path=save_dir)
            point_to(url, save_dir, default_storage_url(save_dir))
            events_file = open(save_dir / "events.jsonl", "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        except BaseException:
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
        records = [r for r in prefix if r is not None]  # surplus, void and WAITING trials are not records
        stale: list[FrozenTrial] = []
        running = unowned = 0
        for t in trials[len(prefix) :]:
            if t.state.is_finished():
                record = self._decode_finished(t)
            elif t.state == TrialState.RUNNING:
                record = codec.decode(t)
                running += record is not None and not record.probe
                if self._is_stale(t):
                    stale.append(t)
                elif codec.WORKER not in t.user_attrs:
                    unowned += 1
            else:
                continue  # WAITING: enqueued by hand or left by an older version; not ours to count
            if record is not None:
                records.append(record)
        setup_failures = sum(r.setup_failure for r in records)
        counted = tuple(r for r in records if not r.setup_failure) if setup_failures else tuple(records)
        probes = sum(r.probe for r in counted)
        return StudySnapshot(counted, tuple(stale), self._best, running, unowned, setup_failures, probes, len(trials))

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
        self, config: Mapping[str, Any] | None, info: ProposalInfo, budget: int | None
    ) -> tuple[int, dict[str, Choice]] | None:
        """Start a trial of the budget with ``config`` (None: the study's sampler draws it), or None when the
        budget is full (taken by this worker or others). Safe with any number of workers. ``budget`` None: a
        trial outside the budget (a probe of the setup).

        The configuration passes the door first (:func:`~agent.study.door.admit`): one that breaks the space
        raises :class:`~agent.errors.InvalidSuggestion` and is not a trial (a given one: nothing is written;
        a drawn one: its trial is marked ``void``). A given configuration is written with the trial, its owner
        and ``info`` in one storage call; a drawn one comes through Optuna's ``Trial``, as in ``study.ask()``
        (what the sampler sees of the study is refreshed first).
        """
        if config is None:
            return self._claim_drawn(info, budget)
        chosen = admit(self.space, config)
        attrs = {codec.WORKER: self._worker.as_attr(), **codec.encode_proposal(info)}
        template = optuna.trial.create_trial(
            state=TrialState.RUNNING, params=chosen, distributions=self._distributions, user_attrs=attrs
        )
        trial_id = self.storage.create_new_trial(self._study_id, template_trial=template)
        number = trial_number(self.storage, trial_id)
        if not self._kept(trial_id, number, budget):
            return None
        return self._started(trial_id, number, chosen, info, None)

    def _claim_drawn(self, info: ProposalInfo, budget: int | None) -> tuple[int, dict[str, Choice]] | None:
        trial = new_trial(self.study)
        trial_id = trial_id_of(trial)
        self.storage.set_trial_user_attr(trial_id, codec.WORKER, self._worker.as_attr())
        number = trial_number(self.storage, trial_id)
        if not self._kept(trial_id, number, budget):
            return None
        for key, value in codec.encode_proposal(info).items():
            self.storage.set_trial_user_attr(trial_id, key, value)
        drawn = {name: _suggest(trial, name, dist) for name, dist in self._distributions.items()}
        try:
            chosen = admit(self.space, drawn)  # a sampler of an installed package may draw outside the space
        except InvalidSuggestion as exc:
            self._void(trial_id, number, f"the sampler drew a configuration that breaks the space: {exc}")
            raise
        return self._started(trial_id, number, chosen, info, trial)

    def _kept(self, trial_id: int, number: int, budget: int | None) -> bool:
        """Is the trial just created within ``budget``? If not, it is marked surplus and failed."""
        if budget is None or number < budget or self._within_budget(number, budget):
            return True
        self.storage.set_trial_user_attr(trial_id, codec.SURPLUS, True)
        self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        self.events.info("claim_surplus", trial=number, budget=budget)
        return False

    def _started(
        self,
        trial_id: int,
        number: int,
        config: dict[str, Choice],
        info: ProposalInfo,
        trial: optuna.trial.Trial | None,
        resumed: int = 0,
    ) -> tuple[int, dict[str, Choice]]:
        self._live[number] = _Live(trial_id, config, info, _now(), trial, resumed)
        event = "trial_adopted" if resumed else "trial_started"
        self.events.info(event, trial=number, source=info.source, config=config)
        return number, config

    def _void(self, trial_id: int, number: int, reason: str) -> None:
        """A RUNNING trial that is no trial of the study: failed, left out of every record, never evaluated."""
        self.storage.set_trial_user_attr(trial_id, codec.VOID, codec.bounded(reason))
        self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        self.events.warning("trial_void", trial=number, reason=reason)

    def _within_budget(self, number: int, budget: int) -> bool:
        """Are fewer than ``budget`` trials of the budget numbered below ``number``? (A fresh read.)"""
        earlier = [
            t
            for t in self.study.get_trials(deepcopy=False)
            if t.number < number
            and t.state != TrialState.WAITING
            and not codec.is_void(t)
            and t.number not in self._failed_setup
            and not codec.is_probe(t)
        ]
        return len(earlier) < budget

    def adopt(self, stale: FrozenTrial) -> tuple[int, dict[str, Choice]] | None:
        """Take over a trial whose process died, to run exactly its configuration.

        None when another worker adopted it first (the check and the new owner are written under the mutex),
        or when its configuration is not whole and valid (see the module docstring): then it is marked void.
        """
        trial_id = trial_id_of(stale)
        with self._mutex.held():
            current = self.storage.get_trial(trial_id)
            if current.state != TrialState.RUNNING or not self._is_stale(current):
                return None
            self.storage.set_trial_user_attr(trial_id, codec.WORKER, self._worker.as_attr())
        try:
            config = admit(self.space, current.params)
        except InvalidSuggestion as exc:
            self._void(trial_id, stale.number, f"left running without a whole configuration: {exc}")
            return None
        resumed = int(current.user_attrs.get(codec.RESUMED, 0)) + 1
        self.storage.set_trial_user_attr(trial_id, codec.RESUMED, resumed)
        record = codec.decode(current)
        info = record.proposal if record is not None else ProposalInfo()
        return self._started(trial_id, stale.number, config, info, None, resumed)

    def reporter(
        self,
        number: int,
        pruner: optuna.pruners.BasePruner,
        max_step: int | None = None,
        also_stop: tuple[Callable[[], bool], ...] = (),
    ) -> StepReporter:
        """``report(step, value) -> should_stop`` for a running trial, scheduled by ``pruner`` (the study's)
        and stopped too when one of ``also_stop`` says so: picklable to another process when the storage has a
        URL (:mod:`agent.study.reporting`)."""
        live = self._live[number]
        live.scheduled = True
        return StepReporter(
            study_name=self.study.study_name,
            trial_id=live.trial_id,
            number=number,
            pruner=pruner,
            url=self.url,
            max_step=max_step,
            also_stop=also_stop,
            study=self.study,
        )

    def finish(self, number: int, result: EvalResult, seconds: float) -> TrialRecord:
        """Record the evaluation, then write the trial's JSON file. A pruned trial that a stop check other
        than the pruner stopped (the deadline) says so: its reporter wrote who (``stopped_by``)."""
        live = self._live.pop(number)
        curve, stopped_by = self._reported(live, number) if live.scheduled else ({}, None)
        stopped_by = stopped_by if result.state == "pruned" else None
        encoded = codec.encode_result(
            result.metrics, result.error, seconds, cost_s=result.cost_s, stopped_by=stopped_by
        )
        self.storage.set_trial_user_attr(live.trial_id, codec.RESULT, encoded)
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
            cost_s=encoded.get("cost_s"),
            stopped_by=stopped_by,
            resumed=live.resumed,
            curve=curve,
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

    def _reported(self, live: _Live, number: int) -> tuple[dict[int, float], str | None]:
        """What a scheduled trial reported, step -> value, and who stopped it besides the pruner (None: nobody);
        a warning when it went on unscheduled (bad steps)."""
        stored = self.storage.get_trial(live.trial_id)
        unscheduled = stored.user_attrs.get(codec.UNSCHEDULED)
        if unscheduled:
            _log.warning(unscheduled)
            self.events.warning("trial_unscheduled", trial=number, reason=unscheduled)
        stopped_by = stored.user_attrs.get(codec.STOPPED_BY)
        return dict(sorted(stored.intermediate_values.items())), stopped_by if isinstance(stopped_by, str) else None

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
            **({"cost_s": record.cost_s} if record.cost_s is not None else {}),
            **({"stopped_by": record.stopped_by} if record.stopped_by else {}),
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


def _lives_in(url: str, folder: Path) -> bool:
    """Is the storage at ``url`` a file inside ``folder``?"""
    path = url.removeprefix("sqlite:///").removeprefix("journal:")
    if path == url and not url.endswith(".log"):
        return False  # a database server
    return folder.resolve() in Path(path).resolve().parents


def _make_folder(path: Path, flag_path: Path | None = None) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = flag_path or path
        raise UserError(f"--save_dir {where}: cannot write there ({exc.strerror}); choose another") from exc


def _load_or_create(
    storage: optuna.storages.BaseStorage,
    name: str,
    url: str,
    terms: StudyTerms,
    meta: Mapping[str, Any],
    sampler: optuna.samplers.BaseSampler | None,
) -> optuna.Study:
    """The study ``name``: an existing one checked against ``terms`` first (a refusal writes nothing), or a new
    one with ``terms`` and ``meta`` stored."""
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        study = optuna.create_study(
            storage=storage, study_name=name, direction=terms.direction, sampler=sampler, load_if_exists=True
        )
        return _resumed(study, url, terms, meta)  # new, or made by another worker meanwhile
    return _resumed(optuna.load_study(study_name=name, storage=storage, sampler=sampler), url, terms, meta)


def _resumed(study: optuna.Study, url: str, terms: StudyTerms, meta: Mapping[str, Any]) -> optuna.Study:
    attrs = study.user_attrs
    direction: Direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "minimize"
    failed = codec.setup_failures(attrs)
    decoded = (codec.decode(t, failed) for t in study.get_trials(deepcopy=False))
    has_trials = any(r is not None and not r.setup_failure for r in decoded)  # setup failures measured nothing
    where = f"study {study.study_name!r} in {url}"
    for key, value in terms.resume(attrs, direction, has_trials=has_trials, where=where).items():
        study.set_user_attr(key, value)
    if "space" not in attrs:  # new (or its creator was killed before it stored what the study is for)
        for key, value in {**meta, **terms.new_study()}.items():
            study.set_user_attr(key, value)
    return study


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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat(timespec="milliseconds")
