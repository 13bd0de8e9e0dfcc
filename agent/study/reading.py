"""Trial records and attributes of any Optuna study, and how an Optuna sampler records a proposal on one.

For code that reads studies it did not run (the bench, the report, the sources of ``--learn-from``) and for
our Optuna samplers, which propose inside Optuna's own loop. Everything goes through :mod:`agent.study.codec`;
nothing outside :mod:`agent.study` touches Optuna's user attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from agent._optuna import storage_of, trial_id_of
from agent.records import ProposalInfo, TrialRecord

from . import codec

__all__ = [
    "read_records",
    "stored_meta",
    "stored_records",
    "study_meta",
    "study_records",
    "write_proposal",
]


def read_records(
    trials: list[FrozenTrial], study_attrs: Mapping[str, Any] | None = None, *, setup_failures: bool = False
) -> list[TrialRecord]:
    """The records of ``trials`` that count (WAITING and surplus claims left out, and the setup failures of a
    broken start, which ``study_attrs`` list, unless ``setup_failures``), in number order."""
    failed_setup = codec.setup_failures(study_attrs or {})
    decoded = (codec.decode(t, failed_setup) for t in sorted(trials, key=lambda t: t.number))
    return [r for r in decoded if r is not None and (setup_failures or not r.setup_failure)]


def study_records(study: optuna.Study, *, setup_failures: bool = False) -> list[TrialRecord]:
    return read_records(study.get_trials(deepcopy=False), study.user_attrs, setup_failures=setup_failures)


def study_meta(study: optuna.Study) -> dict[str, Any]:
    """What a study records about itself (task, strategy, seed, budget, prompts, final test)."""
    return dict(study.user_attrs)


def stored_meta(storage: optuna.storages.BaseStorage, name: str) -> dict[str, Any]:
    """:func:`study_meta` of the study ``name`` in ``storage`` (a ``KeyError`` when there is none)."""
    return dict(storage.get_study_user_attrs(storage.get_study_id_from_name(name)))


def stored_records(
    storage: optuna.storages.BaseStorage, name: str, *, setup_failures: bool = False
) -> list[TrialRecord]:
    """:func:`study_records` of the study ``name`` in ``storage``, without loading the study (a ``KeyError``
    when there is none)."""
    study_id = storage.get_study_id_from_name(name)
    trials = storage.get_all_trials(study_id, deepcopy=False)
    return read_records(trials, storage.get_study_user_attrs(study_id), setup_failures=setup_failures)


def write_proposal(study: optuna.Study, trial: FrozenTrial, info: ProposalInfo) -> None:
    """Record on a running trial how it was proposed (samplers get a FrozenTrial: write through the storage,
    as Optuna's own samplers do)."""
    storage = storage_of(study)
    for key, value in codec.encode_proposal(info).items():
        storage.set_trial_user_attr(trial_id_of(trial), key, value)
