"""A running trial's intermediate values, reported to its study from wherever the trial runs.

:class:`StepReporter` is the ``TrialContext.report(step, value) -> should_stop`` of a scheduled trial. It
writes the value to the trial in the study's storage and asks the study's pruner (Optuna's pruners read
every trial's intermediate values from the storage), so the decision is the same in the study's process, in
a local worker process and in a Ray task: it pickles as the storage's URL, the study's name, the trial's id
and the pruner, and the process it lands in opens the storage itself on its first report. A study in memory
(no URL) cannot be opened from another process: such a reporter does not cross (:attr:`crosses_processes`
is False), and the local executor then runs the trial in a thread of the study's process, while a Ray task
gets no reporter (its trial is not scheduled).

Bad steps do not fail a trial: a step that does not come after the last one, or one without a finite value
of the metric, is named in one line, kept on the trial (the study logs it as a warning, in its log and its
events, when the trial finishes), and the trial goes on unscheduled: no more reports to the pruner. The last
step (``max_step``) is recorded but never stops a trial: it has done all its work. A trial re-run after a
kill does not report again a step its first run reported.

Other stop conditions compose in: ``also_stop`` is a tuple of picklable no-argument callables, asked after
each report but the last (even once the trial is unscheduled), when the pruner did not stop the trial; any
True stops it as the pruner would, and a check that has a ``name`` (the time budget's
:class:`~agent.deadline.Deadline`: ``deadline``) is recorded on the trial as who stopped it
(:data:`codec.STOPPED_BY`, read back as ``TrialRecord.stopped_by``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from agent._optuna import storage_of

from . import codec
from .storage import open_storage

__all__ = ["StepReporter"]


@dataclass
class StepReporter:
    """``report(step, value) -> should_stop`` for trial ``number`` (storage id ``trial_id``) of a study."""

    study_name: str
    trial_id: int
    number: int
    pruner: optuna.pruners.BasePruner
    #: The storage's URL (None: a study in memory, reachable only through ``study``).
    url: str | None = None
    #: The step a trial that runs to its end reports last: recorded, never stopped at.
    max_step: int | None = None
    #: More stop checks (picklable, no arguments), asked after every report.
    also_stop: tuple[Callable[[], bool], ...] = ()
    #: The study, in the process that opened it (not pickled: another process opens ``url``).
    study: optuna.Study | None = field(default=None, repr=False)
    _trial: optuna.trial.Trial | None = field(default=None, init=False, repr=False)
    _last_step: int = field(default=-1, init=False)
    _unscheduled: str | None = field(default=None, init=False)
    _earlier: frozenset[int] = field(default=frozenset(), init=False)  # steps a killed run of it reported

    @property
    def crosses_processes(self) -> bool:
        """Can another process report through it (its storage has a URL)?"""
        return self.url is not None

    def __getstate__(self) -> dict[str, Any]:
        if self.url is None:
            raise TypeError("a reporter of a study in memory cannot leave its process")
        fresh: dict[str, Any] = {"study": None, "_trial": None, "_earlier": frozenset()}
        fresh |= {"_last_step": -1, "_unscheduled": None}
        return {**self.__dict__, **fresh}  # the process it lands in opens the storage and reads the trial anew

    def __call__(self, step: int, value: float) -> bool:
        at_end = self.max_step is not None and step >= self.max_step
        if self._unscheduled is None:
            problem = self._problem(step, value)
            if problem is not None:
                self._unschedule(problem)
            else:
                self._last_step = step
                trial = self._open()
                if step not in self._earlier:  # a re-run after a kill keeps what its first run reported
                    trial.report(value, step)
                if not at_end and self.pruner.prune(trial.study, storage_of(trial.study).get_trial(self.trial_id)):
                    return True
        if at_end:
            return False
        for check in self.also_stop:
            if check():
                name = getattr(check, "name", None)
                if isinstance(name, str):
                    storage_of(self._open().study).set_trial_user_attr(self.trial_id, codec.STOPPED_BY, name)
                return True
        return False

    @property
    def unscheduled(self) -> str | None:
        """Why this trial runs on unscheduled, or None."""
        return self._unscheduled

    def _problem(self, step: int, value: float) -> str | None:
        if not math.isfinite(value):
            return f"trial {self.number}: step {step} has no finite value of the metric ({value})"
        if step <= self._last_step:
            return f"trial {self.number}: step {step} does not come after step {self._last_step}"
        return None

    def _unschedule(self, problem: str) -> None:
        self._unscheduled = f"{problem}; the trial goes on unscheduled (no more reports to the pruner)"
        storage_of(self._open().study).set_trial_user_attr(self.trial_id, codec.UNSCHEDULED, self._unscheduled)

    def _open(self) -> optuna.trial.Trial:
        if self._trial is None:
            study = self.study
            if study is None:
                assert self.url is not None
                study = optuna.Study(
                    study_name=self.study_name,
                    storage=open_storage(self.url),
                    sampler=optuna.samplers.RandomSampler(),
                )
            self._trial = optuna.trial.Trial(study, self.trial_id)
            self._earlier = frozenset(storage_of(study).get_trial(self.trial_id).intermediate_values)
        return self._trial
