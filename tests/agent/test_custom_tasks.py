"""The user's own training as a study: task files with a command or a Python objective, run through the real
runner and the real command line (SQLite on disk, real processes), failures, pruning, maximize, SIGKILL."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from agent.optimize import optimize
from agent.providers.scripted import ScriptedProvider
from agent.strategies.registry import make_strategy
from agent.study import StudyStore, study_records
from agent.tasks import Task, build_task
from tests.processes import agent_argv, alive, wait_for_pids, wait_gone

ROOT = Path(__file__).resolve().parents[2]
call = ScriptedProvider.call

# A "training" whose behaviour the configuration picks: each mode is one way a real run ends.
SCRIPT = """\
import json, math, os, subprocess, sys, time
from pathlib import Path

mode, x = sys.argv[1], float(sys.argv[2])
Path("script.pid").write_text(str(os.getpid()))
if mode == "hang" or Path(__file__).with_name("hang").exists():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path("child.pid").write_text(str(child.pid))
    print("hanging", file=sys.stderr, flush=True)
    time.sleep(120)
for step in range(4):
    print(json.dumps({"step": step, "loss": x * x + 1.0 / (step + 1)}), flush=True)
    time.sleep(float(os.environ.get("STEP_SECONDS", "0")))
if mode == "crash":
    print("Traceback (most recent call last):\\nRuntimeError: CUDA error: out of memory", file=sys.stderr)
    sys.exit(1)
if mode == "nometric":
    print(json.dumps({"accuracy": 0.5}))
elif mode == "nan":
    print(json.dumps({"loss": math.nan}))
else:
    print(json.dumps({"loss": x * x, "accuracy": 1.0 - x * x}))
"""

TASK_FILE = """\
description: A script whose mode says how it ends; the value is its loss.
space:
  mode: {type: categorical, choices: [ok, crash, hang, nometric, nan]}
  x: {type: float, low: -1.0, high: 1.0}
metric: loss
command: python train.py {mode} {x}
timeout: 3
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder: the training script and its task file."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(SCRIPT)
    (folder / "modes.yaml").write_text(TASK_FILE)
    return folder


def open_store(task: Task, save_dir: Path) -> StudyStore:
    return StudyStore.open(
        save_dir=save_dir, study_name="s", space=task.space, meta={"task": task.name}, direction=task.direction
    )


def last_printed(trial_dir: Path, metric: str) -> float:
    """The metric of the last JSON line the trial's process printed."""
    values = [json.loads(line)[metric] for line in (trial_dir / "stdout.log").read_text().splitlines()]
    return float(values[-1])


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_failing_hanging_silent_or_nan_run_is_a_failed_trial_the_model_sees(project: Path) -> None:
    task = build_task(str(project / "modes.yaml"))
    modes = ["ok", "crash", "hang", "nometric", "nan", "ok"]
    answers = [call("evaluate", mode=m, x=0.5 if m == "ok" and i else 0.25) for i, m in enumerate(modes)]
    provider = ScriptedProvider(answers)
    store = open_store(task, project / "study")
    strategy = make_strategy(
        "llm", task=task, budget=len(modes), seed=0, provider=provider, records=store.records, events=store.events
    )
    started = time.monotonic()
    try:
        summary = await optimize(tool=task.tool, strategy=strategy, store=store, budget=len(modes))
    finally:
        store.close()
    assert time.monotonic() - started < 60, "the hanging run is stopped at its timeout"

    records = store.records()
    assert [r.state for r in records] == ["complete", "fail", "fail", "fail", "fail", "complete"]
    assert records[0].value == 0.0625 and records[0].metrics["accuracy"] == 0.9375
    assert "exited with status 1" in (records[1].error or "") and "CUDA error: out of memory" in (
        records[1].error or ""
    )
    assert (records[2].error or "").startswith("timed out after 3 s") and "hanging" in (records[2].error or "")
    assert "printed held no 'loss' (its keys: 'accuracy')" in (records[3].error or "")
    assert "loss = nan: not a finite number" in (records[4].error or "")
    assert summary.best is not None and summary.best.number == 0
    hung = project / "study" / "trials" / "trial_0002"
    assert wait_gone([int((hung / name).read_text()) for name in ("script.pid", "child.pid")]) == []
    # The model is told how each run failed, stderr included, in its own words.
    seen = "\n".join(m.content for m in provider.calls[-1].messages)
    assert "failed: the command exited with status 1; the last lines of its stderr:" in seen
    assert "RuntimeError: CUDA error: out of memory" in seen
    assert "failed: timed out after 3 s" in seen
    assert "(lower is better)" in seen and "the configuration with the lowest value" in seen


@pytest.mark.anyio
async def test_intermediate_values_let_the_median_pruner_stop_a_lagging_run(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEP_SECONDS", "0.5")
    task = build_task(str(project / "modes.yaml"))
    provider = ScriptedProvider([call("evaluate", mode="ok", x=0.1), call("evaluate", mode="ok", x=0.9)])
    store = open_store(task, project / "study")
    strategy = make_strategy(
        "llm", task=task, budget=2, seed=0, provider=provider, records=store.records, events=store.events
    )
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    try:
        await optimize(tool=task.tool, strategy=strategy, store=store, budget=2, pruner=pruner)
    finally:
        store.close()
    first, second = store.study.get_trials()
    assert first.state == TrialState.COMPLETE and first.value == pytest.approx(0.01)
    assert first.intermediate_values == {s: pytest.approx(0.01 + 1 / (s + 1)) for s in range(4)}
    assert second.state == TrialState.PRUNED
    assert second.intermediate_values == {0: pytest.approx(1.81)}, "stopped at its first step"
    record = store.records()[1]
    assert record.state == "pruned" and record.metrics["step"] == 0
    lines = (project / "study" / "trials" / "trial_0001" / "stdout.log").read_text().splitlines()
    assert len(lines) < 4, "the process was stopped before it printed every step"


def agent_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], cwd=ROOT, env=env or dict(os.environ), capture_output=True, text=True
    )


OBJECTIVE_MODULE = """\
def accuracy(config):
    return {"accuracy": 1.0 - (config["x"] - 0.3) ** 2, "loss": (config["x"] - 0.3) ** 2}
"""

OBJECTIVE_TASK = """\
description: A model whose accuracy peaks at x = 0.3.
space:
  x: {type: float, low: -1.0, high: 1.0}
metric: accuracy
direction: maximize
objective: peaked_objective:accuracy
"""


@pytest.mark.slow
def test_a_maximized_objective_study_picks_the_highest_value_everywhere(tmp_path: Path) -> None:
    (tmp_path / "peaked_objective.py").write_text(OBJECTIVE_MODULE)
    (tmp_path / "peak.yaml").write_text(OBJECTIVE_TASK)
    save = tmp_path / "study"
    run = agent_cli("--task", str(tmp_path / "peak.yaml"), "--strategy", "bo", "--budget", "8", "--save_dir", str(save))
    assert run.returncode == 0, run.stderr

    study = optuna.load_study(study_name="peak-bo-seed0", storage=f"sqlite:///{save / 'study.db'}")
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    values = [t.value for t in study.trials]
    assert len(values) == 8 and all(v is not None for v in values)
    assert study.best_value == max(v for v in values if v is not None)
    assert f"{study.best_value:.6g} (trial #{study.best_trial.number})" in run.stdout
    assert abs(study.best_params["x"] - 0.3) < 0.15, "bo climbs toward the peak"
    assert all(r.metrics["loss"] == pytest.approx(1 - (r.value or 0)) for r in study_records(study))

    report = agent_cli("report", "--save_dir", str(save))
    assert report.returncode == 0, report.stderr
    text = (save / "report.md").read_text()
    assert "- **direction**: maximize (the best is the highest value)" in text
    assert f"- **best**: trial #{study.best_trial.number}: " in text


@pytest.mark.anyio
async def test_the_model_is_told_a_maximized_metric_plainly(tmp_path: Path) -> None:
    (tmp_path / "peaked_objective.py").write_text(OBJECTIVE_MODULE)
    (tmp_path / "peak.yaml").write_text(OBJECTIVE_TASK)
    task = build_task(str(tmp_path / "peak.yaml"))
    provider = ScriptedProvider([call("evaluate", x=0.0), call("evaluate", x=0.5)])
    store = open_store(task, tmp_path / "study")
    strategy = make_strategy(
        "llm", task=task, budget=2, seed=0, provider=provider, records=store.records, events=store.events
    )
    try:
        summary = await optimize(tool=task.tool, strategy=strategy, store=store, budget=2)
    finally:
        store.close()
    assert summary.best is not None and summary.best.config == {"x": 0.5}, "0.96 beats 0.91"
    prompt = "\n".join(m.content for m in provider.calls[-1].messages)
    assert "The value of each run is its 'accuracy'." in prompt
    assert "returns its value (higher is better)" in prompt
    assert "the configuration with the highest value" in prompt


FIT_SCRIPT = """\
import json, sys
x = float(sys.argv[1])
for step in range(3):
    print(json.dumps({"step": step, "val_r2": 0.5 - (x - 0.3) ** 2 + step / 10}), flush=True)
print(json.dumps({"val_r2": 1.0 - (x - 0.3) ** 2}))
"""


@pytest.mark.slow
def test_a_finished_run_leaves_its_whole_study_in_study_db(tmp_path: Path) -> None:
    """study.db copied alone, without the write-ahead log SQLite keeps beside it while a run writes; and what the
    run printed in a pipe on the way."""
    (tmp_path / "fit.py").write_text(FIT_SCRIPT)
    (tmp_path / "fit.yaml").write_text(
        "description: A fit.\nspace:\n  x: {type: float, low: 0, high: 1}\nmetric: val_r2\n"
        "direction: maximize\ncommand: python fit.py {x}\n"
    )
    save = tmp_path / "study"
    task = str(tmp_path / "fit.yaml")
    run = agent_cli("--task", task, "--strategy", "random", "--budget", "3", "--save_dir", str(save))
    assert run.returncode == 0, run.stderr
    # In a pipe, a trial's step lines show as plain progress lines, as CIFAR's epochs do.
    assert re.search(r"\n  trial #0 step 0: val_r2 0\.\d+, \d+s elapsed\n", run.stdout), run.stdout
    assert "saved in" in run.stdout and "(study.db, trials/, events.jsonl)" in run.stdout
    copy = tmp_path / "elsewhere" / "study.db"
    copy.parent.mkdir()
    shutil.copy(save / "study.db", copy)
    summaries = optuna.get_all_study_summaries(f"sqlite:///{copy}")
    assert [(s.study_name, s.n_trials) for s in summaries] == [("fit-random-seed0", 3)]
    study = optuna.load_study(study_name="fit-random-seed0", storage=f"sqlite:///{copy}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3


def processes_mentioning(text: str) -> list[int]:
    """Running processes whose command line holds ``text`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.fixture
def killable(project: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_sigkill_mid_trial_leaves_nothing_running_and_the_study_resumes(
    project: Path, killable: list[subprocess.Popen[bytes]]
) -> None:
    (project / "hang").touch()
    save = project / "study"
    args = ["--task", str(project / "modes.yaml"), "--strategy", "random", "--budget", "3", "--save_dir", str(save)]
    study_process = subprocess.Popen([sys.executable, "-m", "agent", *args], cwd=ROOT, stdout=subprocess.DEVNULL)
    killable.append(study_process)
    pids = wait_for_pids(save / "trials" / "trial_0000", 2)
    assert all(alive(p) for p in pids) and processes_mentioning(str(project))

    study_process.send_signal(signal.SIGKILL)
    study_process.wait()
    assert wait_gone(pids) == [], "the script and its child die with the study"
    assert wait_gone(processes_mentioning(str(project)), timeout=5) == [], "and so does the guard"

    (project / "hang").unlink()
    resumed = agent_cli(*args)
    study = optuna.load_study(study_name="modes-random-seed0", storage=f"sqlite:///{save / 'study.db'}")
    # A run that completed no trial (the seed's modes may all fail) says so with exit status 1.
    completed = any(t.state == TrialState.COMPLETE for t in study.trials)
    assert resumed.returncode == (0 if completed else 1), resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert all(t.state.is_finished() for t in study.trials)
    assert study.trials[0].user_attrs["resumed"] == 1, "the killed trial re-ran under its number"
    for t in study.trials:
        if t.state == TrialState.COMPLETE:
            assert t.value == last_printed(save / "trials" / f"trial_{t.number:04d}", "loss")


@pytest.mark.slow
def test_ctrl_c_mid_trial_stops_its_processes_and_says_how_to_resume(
    project: Path, killable: list[subprocess.Popen[bytes]]
) -> None:
    (project / "hang").touch()
    save = project / "study"
    args = ["--task", str(project / "modes.yaml"), "--strategy", "random", "--budget", "2", "--save_dir", str(save)]
    study_process = subprocess.Popen(agent_argv(*args), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killable.append(study_process)
    pids = wait_for_pids(save / "trials" / "trial_0000", 2)
    study_process.send_signal(signal.SIGINT)
    _, stderr = study_process.communicate(timeout=30)
    assert study_process.returncode == 130
    assert b"run the same command again to resume" in stderr
    assert wait_gone(pids, timeout=2) == [], "stopped before the study's process exited"
    assert processes_mentioning(str(project)) == []


@pytest.mark.slow
@pytest.mark.embedded
def test_the_readme_example_runs_with_the_default_strategy_and_model(tmp_path: Path, needs_xllamacpp: None) -> None:
    """README "Tune your own training script", as a user runs it: the default strategy on the embedded model
    (only the study's folder is a temporary one)."""
    save = tmp_path / "digits"
    env = {k: v for k, v in os.environ.items() if k not in ("AGENT_PROVIDER", "AGENT_MODEL", "AGENT_EMBEDDED_MODEL")}
    run = agent_cli("--task", "examples/digits/digits.yaml", "--budget", "10", "--save_dir", str(save), env=env)
    assert run.returncode == 0, run.stderr

    study = optuna.load_study(study_name="digits-llm-bo-seed0", storage=f"sqlite:///{save / 'study.db'}")
    records = study_records(study)
    assert len(records) == 10 and {r.state for r in records} <= {"complete", "pruned"}
    assert records[0].source in ("llm", "fallback") and records[0].proposal.usage, "the model opened the study"
    sources = [r.source for r in records[1:]]
    assert set(sources) <= {"random", "surrogate"} and sources == sorted(sources), "random draws, then the GP's"
    stopped = [r for r in records if r.state == "pruned"]
    assert stopped, "steps: 10 schedules the runs by default: the lagging ones are stopped early (ASHA)"
    assert f"{len(stopped)} stopped early" in run.stdout
    for r in stopped:
        assert r.step is not None and r.step < 10 and r.value is None
        printed = (save / "trials" / f"trial_{r.number:04d}" / "stdout.log").read_text().splitlines()
        steps = {line["step"]: line["val_error"] for line in map(json.loads, printed) if "step" in line}
        assert r.curve == {k: v for k, v in steps.items() if k <= r.step}, "every step it printed until it stopped"
    for r in records:
        if r.state == "complete":
            assert r.value == last_printed(save / "trials" / f"trial_{r.number:04d}", "val_error")
        stored = json.loads((save / "trials" / f"trial_{r.number:04d}.json").read_text())
        assert stored["value"] == r.value and stored["hyperparameters"] == r.config
