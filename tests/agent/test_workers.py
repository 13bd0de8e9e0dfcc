"""Several ``python -m agent`` processes on one study share its budget: no duplicate, no lost trial."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from agent.study import open_storage, study_records

ROOT = Path(__file__).resolve().parents[2]


#: An objective whose first evaluation in each process waits until two processes have begun one (a rendezvous,
#: at most a minute): both workers take part however slowly one of them starts on a loaded machine.
RENDEZVOUS = """\
import os
import time
from pathlib import Path

HERE = Path(__file__).parent


def error(config):
    mark = HERE / f"started-{os.getpid()}"
    if not mark.exists():
        mark.touch()
        waited = time.monotonic() + 60
        while len(list(HERE.glob("started-*"))) < 2 and time.monotonic() < waited:
            time.sleep(0.01)
    return {"error": (config["x"] - 0.3) ** 2}
"""

TASK = """\
description: An error that is least at x = 0.3.
space:
  x: {type: float, low: -1.0, high: 1.0}
metric: error
objective: rendezvous:error
"""


def _worker(
    spawn: Callable[..., subprocess.Popen[bytes]], task: Path, save_dir: Path, storage: str, budget: int, seed: int
) -> subprocess.Popen[bytes]:
    args = ["--task", str(task), "--strategy", "random", "--budget", str(budget), "--seed", str(seed)]
    args += ["--save_dir", str(save_dir), "--storage", storage, "--study-name", "shared", "--quiet"]
    return spawn(
        [sys.executable, "-m", "agent", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
@pytest.mark.slow
def test_two_workers_on_one_study_share_the_budget_exactly(
    tmp_path: Path, kind: str, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    budget = 200  # instant trials after the first: the two workers race for every claim, the last ones too
    (tmp_path / "rendezvous.py").write_text(RENDEZVOUS)
    task = tmp_path / "rendezvous.yaml"
    task.write_text(TASK)
    storage = str(tmp_path / "study.log") if kind == "journal" else f"sqlite:///{tmp_path / 'study.db'}"
    # Different seeds: the two workers' samplers draw different configurations, as separate machines would.
    procs = [_worker(spawn, task, tmp_path / f"w{i}", storage, budget, seed=i) for i in range(2)]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors

    loaded = open_storage(storage)
    study = optuna.load_study(study_name="shared", storage=loaded)
    # A claim that lost the race for the last places is marked surplus, failed, never evaluated.
    surplus = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("surplus")]
    assert all(t.state == TrialState.FAIL and t.number >= budget for t in surplus)
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    assert sorted(t.number for t in trials) == list(range(budget))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(study_records(study)) == budget
    owners = {t.user_attrs["worker"]["pid"] for t in trials}
    assert owners == {p.pid for p in procs}, "both workers took part"
    assert optuna.get_all_study_names(loaded) == ["shared"], "no lock left"

    # Each trial's JSON file is written by the worker that ran it, and agrees with the storage.
    files = {f.name: f for i in range(2) for f in (tmp_path / f"w{i}" / "trials").glob("trial_*.json")}
    assert len(files) == budget
    for t in trials:
        body = json.loads(files[f"trial_{t.number:04d}.json"].read_text())
        assert (body["trial"], body["value"], body["hyperparameters"]) == (t.number, t.value, t.params)
        assert body["worker"]["pid"] == t.user_attrs["worker"]["pid"]
    finished = [
        json.loads(line)["trial"]
        for i in range(2)
        for line in (tmp_path / f"w{i}" / "events.jsonl").read_text().splitlines()
        if json.loads(line)["event"] == "trial_finished"
    ]
    assert sorted(finished) == list(range(budget)), "every trial finished once, by one worker"


def test_a_lock_left_by_a_dead_worker_is_broken_and_a_trial_adopted_once(tmp_path: Path) -> None:
    import socket

    from agent.records import ProposalInfo
    from agent.study import StudyStore
    from agent.tasks import build_task

    task = build_task("toy-branin")

    def open_store() -> StudyStore:
        return StudyStore.open(
            save_dir=tmp_path,
            study_name="s",
            space=task.space,
            meta={"task": task.name},
            storage=str(tmp_path / "j.log"),
        )

    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = {"host": socket.gethostname(), "pid": dead.pid, "started": None, "token": "gone", "at": 0.0}
    a, b = open_store(), open_store()
    try:
        started = a.claim(None, ProposalInfo(), budget=2)
        assert started is not None and started[0] == 0
        # Trial 0's worker dies, and so does a worker holding the study's lock.
        trial_id = a.study.get_trials()[0]._trial_id
        a.storage.set_trial_user_attr(trial_id, "worker", owner)
        lock = a.storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s.lock")
        a.storage.set_study_user_attr(lock, "worker", owner)
        # Of two workers that see trial 0 stale, exactly one adopts it (the first breaks the dead lock).
        (stale,) = b.snapshot().stale
        assert [b.adopt(stale) is not None, a.adopt(stale) is not None] == [True, False]
        assert optuna.get_all_study_names(a.storage) == ["s"]
        assert a.claim(None, ProposalInfo(), budget=2) is not None
        assert b.claim(None, ProposalInfo(), budget=2) is None, "the budget is spent"
        assert [r.number for r in a.records()] == [0, 1]
    finally:
        a.close()
        b.close()
