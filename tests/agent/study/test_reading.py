"""Tests for agent/study/reading.py: the study layer is the only code that reads or writes Optuna's user
attributes; everything else asks it (records and attributes of a stored study, by name)."""

from __future__ import annotations

import ast
from pathlib import Path

import optuna

from agent.records import ProposalInfo
from agent.space import FloatParam, SearchSpace
from agent.study import StudyStore, opened_storage, stored_meta, stored_records

ROOT = Path(__file__).resolve().parents[3]
_ATTRIBUTES = {
    "user_attrs",
    "set_user_attr",
    "get_study_user_attrs",
    "set_study_user_attr",
    "get_trial_user_attrs",
    "set_trial_user_attr",
}


def test_only_the_study_layer_touches_optunas_user_attributes() -> None:
    outside = [p for p in (ROOT / "agent").rglob("*.py") if "study" not in p.relative_to(ROOT / "agent").parts[:1]]
    outside += sorted((ROOT / "benchmarks").glob("*.py"))
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}"
        for path in outside
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in _ATTRIBUTES
    ]
    assert found == []


def test_a_stored_study_is_read_by_name(tmp_path: Path) -> None:
    space = SearchSpace(params={"x": FloatParam(low=0.0, high=1.0)})
    store = StudyStore.open(save_dir=tmp_path, study_name="s", space=space, meta={"task": "t", "seed": 3})
    try:
        started = store.claim({"x": 0.5}, ProposalInfo(source="llm"), budget=2)
        assert started is not None
        probe = store.claim({"x": 0.25}, ProposalInfo(source="probe"), budget=None)
        assert probe is not None
    finally:
        store.close()
    with opened_storage(f"sqlite:///{tmp_path / 'study.db'}") as storage:
        meta = stored_meta(storage, "s")
        records = stored_records(storage, "s")
    assert (meta["task"], meta["seed"], meta["space"]) == ("t", 3, space.to_dict())
    assert [(r.number, r.source, r.state, r.probe) for r in records] == [
        (0, "llm", "running", False),
        (1, "probe", "running", True),
    ]
    assert optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}").user_attrs == meta
