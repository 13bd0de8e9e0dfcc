"""Tests for agent/study/store.py: claims within the budget, one decoding per finished trial, direction, files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from agent.errors import StudyError
from agent.records import Direction, ProposalInfo
from agent.space import FloatParam, SearchSpace
from agent.study import StudyStore, codec, study_records
from agent.study.store import OWNERLESS_GRACE_S
from evaluators.base import EvalResult

SPACE = SearchSpace(params={"x": FloatParam(low=0.0, high=1.0)})


def open_store(tmp_path: Path, direction: Direction = "minimize") -> StudyStore:
    return StudyStore.open(
        save_dir=tmp_path / "run",
        study_name="s",
        space=SPACE,
        meta={"task": "t"},
        storage=f"sqlite:///{tmp_path / 's.db'}",
        direction=direction,
    )


def test_claims_fill_the_budget_then_a_late_one_is_surplus(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        info = ProposalInfo(source="surrogate", seconds=0.05)
        assert store.claim({"x": 0.25}, info, budget=2) == (0, {"x": 0.25})
        assert store.claim(None, ProposalInfo(), budget=2) is not None  # drawn by the study's sampler
        # The runner checks its snapshot first; a claim that slips past anyway (a race) is never evaluated.
        assert store.claim({"x": 0.5}, info, budget=2) is None
        trials = store.study.get_trials()
        assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.RUNNING, TrialState.FAIL]
        assert trials[2].user_attrs[codec.SURPLUS] is True
        snapshot = store.snapshot()
        assert [r.number for r in snapshot.records] == [0, 1]
        assert (snapshot.used, snapshot.running, snapshot.finished) == (2, 2, 0)
        assert snapshot.records[0].proposal == info and snapshot.records[0].config == {"x": 0.25}
        assert 0.0 <= snapshot.records[1].config["x"] <= 1.0
        # A larger budget later: the surplus trial does not count, so two more fit.
        assert store.claim({"x": 0.75}, info, budget=4) is not None
        assert store.claim({"x": 0.8}, info, budget=4) is not None
        assert store.snapshot().used == 4
    finally:
        store.close()


def test_snapshots_decode_each_finished_trial_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer, reader = open_store(tmp_path), open_store(tmp_path)
    try:
        for i in range(3):
            started = writer.claim({"x": i / 4}, ProposalInfo(source="surrogate"), budget=3)
            assert started is not None
            writer.finish(started[0], EvalResult(value=float(3 - i)), seconds=0.1)
        decoded: list[int] = []
        real = codec.decode
        monkeypatch.setattr(codec, "decode", lambda t, *a: decoded.append(t.number) or real(t, *a))
        first, second = reader.snapshot(), reader.snapshot()
        assert decoded == [0, 1, 2]
        assert first == second
        assert first.best is not None and first.best.number == 2
    finally:
        writer.close()
        reader.close()


def test_best_follows_the_direction(tmp_path: Path) -> None:
    store = open_store(tmp_path, "maximize")
    try:
        for value in (0.3, 0.9, 0.5):
            started = store.claim(None, ProposalInfo(), budget=3)
            assert started is not None
            store.finish(started[0], EvalResult(value=value), seconds=0.0)
        best = store.snapshot().best
        assert best is not None and best.value == 0.9
        assert store.study.direction == optuna.study.StudyDirection.MAXIMIZE
    finally:
        store.close()
    with pytest.raises(StudyError, match="maximizes its objective"):
        open_store(tmp_path, "minimize")


def test_an_ownerless_running_trial_is_abandoned_only_after_a_grace_period(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        fresh = optuna.trial.create_trial(state=TrialState.RUNNING, params={}, distributions={})
        old = optuna.trial.create_trial(state=TrialState.RUNNING, params={}, distributions={})
        old.datetime_start = datetime.now() - timedelta(seconds=OWNERLESS_GRACE_S + 1)
        store.study.add_trial(fresh)
        store.study.add_trial(old)
        assert [t.number for t in store.snapshot().stale] == [1]
    finally:
        store.close()


def test_each_finished_trial_has_its_json_file(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        started = store.claim({"x": 0.5}, ProposalInfo(source="llm", answer="{}", reasks=2), budget=1)
        assert started is not None
        store.finish(0, EvalResult(value=0.1, metrics={"val_error": 0.1}), seconds=1.5)
    finally:
        store.close()
    body = json.loads((tmp_path / "run" / "trials" / "trial_0000.json").read_text())
    assert body["hyperparameters"] == {"x": 0.5} and body["value"] == 0.1
    assert (body["source"], body["answer"], body["reasks"], body["seconds"]) == ("llm", "{}", 2, 1.5)
    assert body["metrics"] == {"val_error": 0.1} and body["worker"]["pid"] > 0
    record = study_records(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}"))[0]
    assert record.proposal.reasks == 2 and record.metrics == {"val_error": 0.1}
