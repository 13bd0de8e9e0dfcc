"""Tests for agent/study/storage.py: a closed SQLite study holds its data in study.db alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna

from agent.records import ProposalInfo
from agent.space import FloatParam, SearchSpace
from agent.study import StudyStore, close_storage, open_storage, opened_storage
from evaluators.base import EvalResult

SPACE = SearchSpace(params={"x": FloatParam(low=0.0, high=1.0)})


def summaries(db: Path) -> dict[str, int]:
    return {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(f"sqlite:///{db}")}


def test_a_closed_store_leaves_every_trial_in_study_db(tmp_path: Path) -> None:
    store = StudyStore.open(save_dir=tmp_path / "run", study_name="s", space=SPACE, meta={"task": "t"})
    for x in (0.1, 0.2, 0.3):
        started = store.claim({"x": x}, ProposalInfo(), budget=3)
        assert started is not None
        store.finish(started[0], EvalResult(value=x), 0.01)
    store.close()
    store.close()  # twice is fine
    # The study object (and its engine) still live in this process: nothing but the close put the log's
    # pages into the database file.
    assert store.study.study_name == "s"
    wal = tmp_path / "run" / "study.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy.db"
    shutil.copy(tmp_path / "run" / "study.db", copy)
    assert summaries(copy) == {"s": 3}
    assert [t.value for t in optuna.load_study(study_name="s", storage=f"sqlite:///{copy}").trials] == [0.1, 0.2, 0.3]


def test_a_closed_storage_reopens_on_use_and_other_storages_need_nothing(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'a.db'}")
    optuna.create_study(storage=storage, study_name="a")
    close_storage(storage)
    assert [s.study_name for s in storage.get_all_studies()] == ["a"]  # used again: it reconnects
    close_storage(storage)
    with opened_storage(str(tmp_path / "j.log")) as journal:
        optuna.create_study(storage=journal, study_name="j")
    assert [s.study_name for s in open_storage(str(tmp_path / "j.log")).get_all_studies()] == ["j"]
