"""What a study is made for and what a resumed study keeps: stored with the study, checked on every later run
before anything is written. The one place that says it (the README's "What a resumed study keeps" repeats
this table):

==================================  ======================  ==================================================
attribute                           stored                  a later run of the study
==================================  ======================  ==================================================
``task``, ``space``, direction      when it is created      must be the same; else refused, one line naming
                                                            both (:class:`~agent.errors.StudyError`, exit 2)
``metric``                          when it is created      the same once the study has trials; a study whose
                                                            only trials are setup failures (its metric was
                                                            wrong: the program did not print it) takes the new
``learn_from`` (the sources)        by the first run that   kept: the same sources or none; others are refused;
                                    names them, while the   a study that has trials and no sources refuses new
                                    study has no trial      ones (their openers would land mid-study)
the task's command or objective     not stored              a change resumes (the user fixed a bug)
``scheduler`` (``--pruner`` and     when it is created      kept; a run asking another (another ``--pruner``,
the task's steps)                   (older studies: by the  other steps) is refused, one line naming both
                                    next run)
``budget``                          the latest asked        a larger one extends the study
``time_budget`` (``--time-budget``) the latest asked        kept when none is asked; another one replaces it
                                                            (a longer one extends the study, as ``budget``)
``time_used`` (seconds)             after every trial       the clock goes on from it: a resumed study has the
                                                            time left
==================================  ======================  ==================================================

A study stored without an attribute (written by an older version: no ``metric``) is not refused for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import StudyError
from agent.records import Direction
from agent.space import SearchSpace

from .scheduler import Scheduler

__all__ = [
    "LEARN_FROM",
    "METRIC",
    "SCHEDULER",
    "SPACE",
    "TASK",
    "TIME_BUDGET",
    "TIME_USED",
    "StudyTerms",
    "kept_sources",
    "kept_time_budget",
    "time_used",
]

TASK = "task"
SPACE = "space"
METRIC = "metric"
#: The sources a study learns from (written by :func:`agent.sources.experience.gather` too).
LEARN_FROM = "learn_from"
#: Which trials stop early (:meth:`agent.study.scheduler.Scheduler.to_dict`).
SCHEDULER = "scheduler"
#: The study's time budget in seconds (``--time-budget``), and the seconds its runs have used of it.
TIME_BUDGET = "time_budget"
TIME_USED = "time_used"


@dataclass(frozen=True, kw_only=True)
class StudyTerms:
    """What this run asks of the study it opens (None: not checked, as for a study opened only to be read)."""

    space: SearchSpace
    direction: Direction = "minimize"
    task: str | None = None
    metric: str | None = None
    #: Storage URLs of the earlier studies to learn from (``--learn-from``); empty: whatever the study keeps.
    sources: tuple[str, ...] = ()
    #: The study's scheduler (:meth:`~agent.study.scheduler.Scheduler.to_dict`); None: not checked.
    scheduler: Mapping[str, Any] | None = None
    #: The time budget in seconds (``--time-budget``); None: whatever the study keeps, if any.
    time_budget_s: float | None = None

    def new_study(self) -> dict[str, Any]:
        """The attributes a new study stores (its direction is Optuna's own)."""
        attrs: dict[str, Any] = {SPACE: self.space.to_dict()}
        if self.task is not None:
            attrs[TASK] = self.task
        if self.metric is not None:
            attrs[METRIC] = self.metric
        if self.sources:
            attrs[LEARN_FROM] = list(self.sources)
        if self.scheduler is not None:
            attrs[SCHEDULER] = dict(self.scheduler)
        if self.time_budget_s is not None:
            attrs[TIME_BUDGET] = self.time_budget_s
        return attrs

    def resume(
        self, stored: Mapping[str, Any], direction: Direction, *, has_trials: bool, where: str
    ) -> dict[str, Any]:
        """Check a stored study (its attributes ``stored``, its ``direction``) against these terms; what to
        store on it now (the sources a study without trials takes), or :class:`StudyError`."""
        fix = "use a new --save_dir (or --study-name)"
        if SPACE in stored and _canon(stored[SPACE]) != _canon(self.space.to_dict()):
            raise StudyError(f"{where} was created with another search space; {fix}")
        if self.task is not None and stored.get(TASK) not in (None, self.task):
            raise StudyError(f"{where} belongs to task {stored.get(TASK)!r}, not {self.task!r}; {fix}")
        if direction != self.direction:
            raise StudyError(f"{where} {direction}s its objective, this task {self.direction}s it; {fix}")
        store = self._sources(stored, has_trials=has_trials, where=where)
        if self.metric is not None and stored.get(METRIC) not in (None, self.metric):
            if has_trials:
                raise StudyError(
                    f"{where} measures metric {stored.get(METRIC)!r}, this task measures {self.metric!r}; the two "
                    f"would mix in one column of results: {fix}"
                )
            store[METRIC] = self.metric  # it measured nothing yet (setup failures only): the metric was wrong
        if self.scheduler is not None:
            stored_scheduler = stored.get(SCHEDULER)
            if stored_scheduler is None:
                store[SCHEDULER] = dict(self.scheduler)  # an older study: it keeps this one from now on
            elif _canon(stored_scheduler) != _canon(self.scheduler):
                raise StudyError(
                    f"{where} stops trials early with {Scheduler.describe(stored_scheduler)}, this run asks for "
                    f"{Scheduler.describe(self.scheduler)}; run it with the same --pruner and steps "
                    f"(--num_train_epochs for CIFAR, `steps` in a task file), or {fix}"
                )
        if self.time_budget_s is not None and stored.get(TIME_BUDGET) != self.time_budget_s:
            store[TIME_BUDGET] = self.time_budget_s  # the latest asked, as --budget: a longer one extends the study
        return store

    def _sources(self, stored: Mapping[str, Any], *, has_trials: bool, where: str) -> dict[str, Any]:
        kept = kept_sources(stored)
        if not self.sources or tuple(self.sources) == kept:
            return {}
        if kept:
            raise StudyError(
                f"{where} learns from {', '.join(kept)}; run it again without --learn-from (it keeps its sources), "
                "or start a new study (--save_dir or --study-name) to learn from others"
            )
        if has_trials:
            raise StudyError(
                f"{where} already has trials and learns from no earlier study; to learn from "
                f"{', '.join(self.sources)}, start a new study: use a new --save_dir (or --study-name)"
            )
        return {LEARN_FROM: list(self.sources)}


def kept_sources(attrs: Mapping[str, Any]) -> tuple[str, ...]:
    """The sources a study keeps (its attributes ``attrs``); empty when it learns from none."""
    return tuple(attrs.get(LEARN_FROM) or ())


def kept_time_budget(attrs: Mapping[str, Any]) -> float | None:
    """The time budget a study keeps, in seconds (its attributes ``attrs``); None when it has none."""
    value = attrs.get(TIME_BUDGET)
    return float(value) if isinstance(value, int | float) and value > 0 else None


def time_used(attrs: Mapping[str, Any]) -> float:
    """The seconds a study's runs have used (its attributes ``attrs``): 0 for a new one."""
    value = attrs.get(TIME_USED)
    return float(value) if isinstance(value, int | float) and value >= 0 else 0.0


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
