"""The Optuna internals agent/study/_optuna.py relies on, pinned: an Optuna upgrade that changes one fails here."""

from __future__ import annotations

from pathlib import Path

import optuna

from agent._optuna import storage_of, study_id_of, trial_id_of, trial_number
from agent.study import open_storage


def test_trial_and_study_ids_are_the_storages(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    trial = study.ask()
    frozen = study.get_trials()[0]
    assert trial_id_of(trial) == trial_id_of(frozen)
    storage = storage_of(study)
    assert storage.get_trial(trial_id_of(frozen)).number == frozen.number
    assert storage.get_study_id_from_name(study.study_name) == study_id_of(study)


def test_the_number_of_a_new_trial_is_known_without_a_read(tmp_path: Path) -> None:
    """Optuna caches every trial created through the storage in front of an RDB: its number is known."""
    for url in (f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "s.log")):
        study = optuna.create_study(storage=open_storage(url))
        storage = storage_of(study)
        ids = [storage.create_new_trial(study_id_of(study)) for _ in range(3)]
        assert [trial_number(storage, i) for i in ids] == [0, 1, 2]
        assert [storage.get_trial_number_from_id(i) for i in ids] == [0, 1, 2]
    cache = getattr(
        storage_of(optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'c.db'}"))),
        "_trial_id_to_study_id_and_number",
        None,
    )
    assert isinstance(cache, dict), "the RDB cache's id -> (study, number) map moved: trial_number reads instead"
