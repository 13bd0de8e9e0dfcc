"""The Optuna internals this package relies on, in one place (``tests/agent/study/test_optuna_private.py``
pins each behaviour, so an Optuna upgrade that changes one fails there, not deep inside a study)."""

from __future__ import annotations

import optuna
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

__all__ = ["new_trial", "storage_of", "study_id_of", "tell", "trial_id_of", "trial_number"]


def trial_id_of(trial: FrozenTrial | optuna.trial.Trial) -> int:
    """The storage's id of a trial (Optuna exposes no public accessor; its own samplers read it too)."""
    return int(trial._trial_id)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes through (Optuna wraps an RDB storage in a caching layer)."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    return int(study._study_id)


def trial_number(storage: optuna.storages.BaseStorage, trial_id: int) -> int:
    """The number of a trial this process just created, without a read where Optuna's cache knows it (the
    cache in front of an RDB storage records every trial created through it; the public
    ``get_trial_number_from_id`` reads the database for a running trial)."""
    known = getattr(storage, "_trial_id_to_study_id_and_number", None)
    if isinstance(known, dict) and trial_id in known:
        return int(known[trial_id][1])
    return storage.get_trial_number_from_id(trial_id)


def tell(study: optuna.Study, number: int, value: float | None, state: TrialState) -> None:
    """Finish a trial as ``study.optimize`` does (``Study.tell`` reads the trial once more afterwards, to return
    a copy nobody here needs). Like ``tell``, it refreshes the study's cache of trials, which samplers that
    learn from the study (TPE) read, and runs the sampler's ``after_trial``."""
    _tell_with_warning(study, number, value, state, suppress_warning=True)


def new_trial(study: optuna.Study) -> optuna.trial.Trial:
    """``study.ask()`` without taking a WAITING trial off the queue (those are not this runner's to run): the
    study's cache of trials is refreshed first, as ``ask`` does, so the sampler sees every finished trial."""
    study._thread_local.cached_all_trials = None
    return optuna.trial.Trial(study, study._storage.create_new_trial(study._study_id))
