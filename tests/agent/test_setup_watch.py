"""Tests for agent/setup_watch.py (with agent/optimize.py, agent/study and the CLI): a run whose first trials all
fail the same way probes the middle of the space; if the probe fails that way too the run stops, those failures
do not use up the budget, a fixed setup runs its whole budget and a re-run draws new configurations; if the
probe does not, the study goes on (a diverging region is not a broken setup)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from agent.errors import BrokenSetup
from agent.optimize import optimize
from agent.records import TrialRecord
from agent.setup_watch import SETUP_TRIALS, SetupWatch, failure_signature, probe_config
from agent.space import CategoricalParam, Choice, FloatParam, IntParam, SearchSpace
from agent.strategies.baselines import RandomStrategy
from agent.study import StudyStore, study_records
from agent.tasks import build_task
from evaluators.base import EvalResult
from tools.base import NO_TRIAL, TrialContext
from tools.evaluate_toy import EvaluateToy

ROOT = Path(__file__).resolve().parents[2]
TASK = build_task("toy-branin")


def failed(number: int, error: str) -> TrialRecord:
    return TrialRecord(number=number, config={}, state="fail", error=error)


def test_the_same_failure_three_times_is_a_suspected_broken_start_that_a_probe_confirms() -> None:
    watch = SetupWatch()
    errors = [f"the command exited with status 1; stderr: No module named 'torch' (after {s} s)" for s in (1, 2.5, 7)]
    assert [watch.seen(failed(n, e)) for n, e in zip((4, 5), errors[:2], strict=True)] == [None, None]
    suspect = watch.seen(failed(7, errors[2]))
    assert suspect is not None and suspect.numbers == (4, 5, 7) and "No module named 'torch'" in suspect.reason
    assert watch.suspect == suspect
    assert watch.seen(failed(8, errors[0])) is None, "it speaks once"
    broken = watch.probed(failed(9, errors[1]))
    assert broken is not None and (broken.numbers, broken.probe) == ((4, 5, 7, 9), 9)
    assert watch.suspect is None
    assert "and so did a probe far from them (#9, the middle of the space)" in broken.message()
    assert "trials #4, #5, #7, #9 stay in the study as setup failures" in broken.message()
    assert SETUP_TRIALS == 3


@pytest.mark.parametrize(
    "probe",
    [
        TrialRecord(number=3, config={}, state="complete", value=0.5),
        TrialRecord(number=3, config={}, state="pruned", value=0.5),
        failed(3, "CUDA out of memory"),
    ],
)
def test_a_probe_that_does_not_fail_the_same_way_clears_the_setup(probe: TrialRecord) -> None:
    watch = SetupWatch()
    for n in range(3):
        watch.seen(failed(n, f"diverged: loss is nan at step {n + 2}"))
    assert watch.suspect is not None
    assert watch.probed(probe) is None and watch.suspect is None


@pytest.mark.parametrize(
    "first",
    [
        TrialRecord(number=0, config={}, state="complete", value=0.5),  # the setup works
        TrialRecord(number=0, config={}, state="pruned", value=0.5),
        failed(0, "loss diverged to nan at epoch 3"),  # then two others: not all the same
    ],
)
def test_a_success_or_a_different_failure_ends_the_watch(first: TrialRecord) -> None:
    watch = SetupWatch()
    assert watch.seen(first) is None
    assert [watch.seen(failed(n, "CUDA out of memory")) for n in (1, 2, 3, 4)] == [None] * 4


def test_the_probe_is_the_middle_of_the_space_far_from_the_failing_choices() -> None:
    space = SearchSpace(
        params={
            "lr": FloatParam(low=1e-4, high=1.0, log=True),
            "momentum": FloatParam(low=0.0, high=0.9),
            "layers": IntParam(low=1, high=8),
            "units": IntParam(low=16, high=1024, log=True),
            "batch": CategoricalParam(choices=(256, 32, 64, 128)),
            "optimizer": CategoricalParam(choices=("sgd", "adam", "rmsprop")),
        }
    )
    failing = [{"optimizer": "sgd"}, {"optimizer": "adam"}, {"optimizer": "sgd"}]
    probe = probe_config(space, failing)
    assert probe == {
        "lr": pytest.approx(1e-2),
        "momentum": pytest.approx(0.45),
        "layers": 4,  # 4.5 rounds to even
        "units": 128,
        "batch": 64,  # the lower middle of the ordinal grid 32, 64, 128, 256
        "optimizer": "rmsprop",  # the choice the failing trials used least
    }
    assert space.validate_config(probe) == probe


def test_a_signature_sets_numbers_aside() -> None:
    one, other = "lr 0.3 diverged at step 12\n  (1e-05)", "lr 1.5e-3 diverged at step 7 (2)"
    assert failure_signature(one) == failure_signature(other)
    assert failure_signature("KeyError: 'r2'") != failure_signature("ValueError: nan")


class _Raising(EvaluateToy):
    """Branin whose evaluation raises one error while ``broken``, then works; it remembers what it was asked."""

    broken = True

    def __init__(self, fn: str, space: SearchSpace) -> None:
        super().__init__(fn, space)
        self.seen: list[dict[str, Choice]] = []

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        self.seen.append(dict(config))
        if self.broken:
            raise FileNotFoundError(f"data/train.csv (asked for x1={config['x1']})")
        return await super().evaluate(config)


def open_store(save_dir: Path) -> StudyStore:
    return StudyStore.open(save_dir=save_dir, study_name="s", space=TASK.space, meta={"task": TASK.name})


@pytest.mark.anyio
async def test_a_broken_start_stops_after_a_probe_keeps_its_trials_and_uses_none_of_the_budget(
    tmp_path: Path,
) -> None:
    tool = _Raising("branin", TASK.space)
    store = open_store(tmp_path)
    try:
        with pytest.raises(BrokenSetup) as caught:
            await optimize(tool=tool, strategy=RandomStrategy(), store=store, budget=5)
        snapshot = store.snapshot()
        assert (snapshot.used, snapshot.setup_failures) == (0, 4)
    finally:
        store.close()
    message = str(caught.value)
    assert "the first 3 trials of this run all failed the same way, and so did a probe far from them (#3" in message
    assert "FileNotFoundError: data/train.csv" in message
    assert "trials #0, #1, #2, #3 stay in the study as setup failures and do not count toward the budget" in message
    for number in range(4):
        body = json.loads((tmp_path / "trials" / f"trial_{number:04d}.json").read_text())
        assert (body["state"], body["setup_failure"]) == ("fail", True)
    probe = json.loads((tmp_path / "trials" / "trial_0003.json").read_text())
    assert probe["source"] == "probe" and probe["hyperparameters"] == probe_config(TASK.space)
    assert tool.seen[3] == {"x1": 2.5, "x2": 7.5}, "the middle of Branin's ranges"
    logged = [json.loads(line)["event"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert "setup_probe" in logged and "setup_broken" in logged

    store = open_store(tmp_path)  # the same command, still broken: new configurations, not a replay
    try:
        with pytest.raises(BrokenSetup, match="trials #4, #5, #6, #7 stay in the study"):
            await optimize(tool=tool, strategy=RandomStrategy(), store=store, budget=5)
    finally:
        store.close()
    assert not {TASK.space.key(c) for c in tool.seen[:3]} & {TASK.space.key(c) for c in tool.seen[4:7]}

    tool.broken = False  # the user fixed the setup; the same study runs its whole budget
    store = open_store(tmp_path)
    try:
        summary = await optimize(tool=tool, strategy=RandomStrategy(), store=store, budget=5)
    finally:
        store.close()
    assert (summary.n_trials, summary.complete, summary.failed, summary.setup_failures) == (5, 5, 0, 8)
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["FAIL"] * 8 + ["COMPLETE"] * 5
    assert [r.number for r in study_records(study)] == [8, 9, 10, 11, 12]
    assert [r.number for r in study_records(study, setup_failures=True) if r.setup_failure] == list(range(8))


class _Diverging(EvaluateToy):
    """Branin that diverges (fails) for large x1 only: a fault of some configurations, not of the setup."""

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        if float(config["x1"]) > 2.5:
            return EvalResult.failed("the loss diverged to nan at epoch 2")
        return await super().evaluate(config)


@pytest.mark.anyio
async def test_a_study_failing_for_some_configurations_is_not_stopped(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        tool = _Diverging("branin", TASK.space)
        summary = await optimize(tool=tool, strategy=RandomStrategy(), store=store, budget=12)
    finally:
        store.close()
    assert summary.n_trials == 12 and summary.setup_failures == 0
    assert summary.failed >= 3 and summary.complete >= 1, "the seed draws both kinds"
    assert summary.no_result() is None


FIT = """\
import json, sys
x = float(sys.argv[1])
for step in range(3):
    print(json.dumps({"step": step, "val_r2": 1.0 - (x - 0.3) ** 2 - 0.1 / (step + 1)}), flush=True)
print(json.dumps({"val_r2": 1.0 - (x - 0.3) ** 2}))
"""


def agent_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True
    )


def write_task(folder: Path, metric: str) -> Path:
    (folder / "fit.py").write_text(FIT)
    path = folder / "fit.yaml"
    path.write_text(
        f"description: A fit; the value is its R2.\nspace:\n  x: {{type: float, low: 0, high: 1}}\n"
        f"metric: {metric}\ndirection: maximize\ncommand: python fit.py {{x}}\n"
    )
    return path


@pytest.mark.slow
def test_a_wrong_metric_stops_the_run_and_once_fixed_the_same_command_runs_its_budget(tmp_path: Path) -> None:
    task = write_task(tmp_path, metric="r2")  # the script prints val_r2
    save = tmp_path / "study"
    argv = ["--task", str(task), "--strategy", "random", "--budget", "4", "--save_dir", str(save)]
    stopped = agent_cli(*argv)
    assert stopped.returncode == 1, stopped.stderr
    assert stopped.stderr.startswith(
        "error: the first 3 trials of this run all failed the same way, and so did a probe far from them (#3"
    )
    assert "held no 'r2' (its keys: 'val_r2')" in stopped.stderr
    assert "run the same command again" in stopped.stderr and "Traceback" not in stopped.stderr
    assert stopped.stdout.count("-> failed (") == 4, "stopped after its first failures and the probe"
    assert 'trial #3 (probe): {"x": 0.5} -> failed (' in stopped.stdout

    write_task(tmp_path, metric="val_r2")
    fixed = agent_cli(*argv)
    assert fixed.returncode == 0, fixed.stderr
    assert "(4 setup failures of a broken start kept in it, not counted)" in fixed.stdout
    assert "4: 4 complete, 0 failed (4 in this run" in fixed.stdout
    study = optuna.load_study(study_name="fit-random-seed0", storage=f"sqlite:///{save / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["FAIL"] * 4 + ["COMPLETE"] * 4

    report = agent_cli("report", "--save_dir", str(save))
    assert report.returncode == 0, report.stderr
    text = (save / "report.md").read_text()
    assert "4 setup failures of a broken start (kept, not counted)" in text
    assert text.count("| setup failure |") == 4


#: Setups that fail every trial the same way at trial time (what the task file's checks cannot see).
BROKEN_SETUPS = {
    "a program the script runs is not found": (
        "import subprocess, sys\nsubprocess.run(['no-such-trainer-xyz', sys.argv[1]], check=True)\n",
        "No such file or directory: 'no-such-trainer-xyz'",
    ),
    "the script imports a module that is not installed": (
        "import sys\nimport no_such_module_xyz\n",
        "No module named 'no_such_module_xyz'",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("setup", list(BROKEN_SETUPS))
def test_a_broken_setup_stops_within_four_trials(tmp_path: Path, setup: str) -> None:
    script, words = BROKEN_SETUPS[setup]
    (tmp_path / "fit.py").write_text(script)
    (tmp_path / "fit.yaml").write_text(
        "description: A fit.\nspace:\n  x: {type: float, low: 0, high: 1}\nmetric: loss\ncommand: python fit.py {x}\n"
    )
    save = tmp_path / "study"
    run = agent_cli(
        "--task", str(tmp_path / "fit.yaml"), "--strategy", "random", "--budget", "20", "--save_dir", str(save)
    )
    assert run.returncode == 1, run.stderr
    assert "and so did a probe far from them (#3, the middle of the space)" in run.stderr and words in run.stderr
    study = optuna.load_study(study_name="fit-random-seed0", storage=f"sqlite:///{save / 'study.db'}")
    assert len(study.trials) == 4 and study.user_attrs["setup_failures"] == [0, 1, 2, 3]


DIVERGING = """\
import math


def fit(config):
    if config["lr"] > 0.05:
        raise FloatingPointError("diverged: loss is nan at step 3")
    return {"loss": (math.log10(config["lr"]) + 2.5) ** 2}
"""


def diverging_seed(threshold: float, space: optuna.distributions.BaseDistribution) -> int:
    """The first seed whose random search draws 3 learning rates above ``threshold`` first."""
    for seed in range(1000):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        if all(study.ask({"lr": space}).params["lr"] > threshold for _ in range(3)):
            return seed
    raise AssertionError("no seed diverges three times first")


@pytest.mark.slow
def test_a_study_whose_first_trials_diverge_is_probed_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "sgd.py").write_text(DIVERGING)
    (tmp_path / "sgd.yaml").write_text(
        "description: SGD whose loss diverges for large learning rates.\n"
        "space:\n  lr: {type: float, low: 1.0e-4, high: 1.0, log: true}\nmetric: loss\nobjective: sgd:fit\n"
    )
    seed = diverging_seed(0.05, optuna.distributions.FloatDistribution(1e-4, 1.0, log=True))
    save = tmp_path / "study"
    argv = ["--task", str(tmp_path / "sgd.yaml"), "--strategy", "random", "--budget", "12", "--seed", str(seed)]
    run = agent_cli(*argv, "--save_dir", str(save))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.startswith("trial #") and "diverged" in line for line in lines[1:4]] == [True] * 3
    assert lines[4].startswith('trial #3 (probe): {"lr": 0.01} -> ')
    assert "probes" in run.stdout and "12: " in run.stdout
    study = optuna.load_study(study_name=f"sgd-random-seed{seed}", storage=f"sqlite:///{save / 'study.db'}")
    assert len(study.trials) == 13, "the budget's 12 and the probe, which does not count"
    assert study.trials[3].user_attrs["source"] == "probe" and study.trials[3].state.name == "COMPLETE"
    assert "setup_failures" not in study.user_attrs
    assert [t.state.name for t in study.trials[:3]] == ["FAIL"] * 3, "the diverged trials stay trials of the budget"


OBJECTIVE = """\
def fit(config):
    if config["x"] < 0.6:
        raise RuntimeError("CUDA out of memory")
    raise ValueError("the loss is NaN")
"""


@pytest.mark.slow
def test_a_run_where_every_trial_failed_exits_non_zero_saying_so(tmp_path: Path) -> None:
    (tmp_path / "flaky_fit.py").write_text(OBJECTIVE)
    (tmp_path / "flaky.yaml").write_text(
        "description: A fit that fails for every configuration, each its own way.\n"
        "space:\n  x: {type: float, low: 0, high: 1}\nmetric: loss\nobjective: flaky_fit:fit\n"
    )
    save = tmp_path / "study"
    argv = ["--task", str(tmp_path / "flaky.yaml"), "--strategy", "random", "--budget", "3", "--save_dir", str(save)]
    run = agent_cli(*argv)
    assert run.returncode == 1, run.stderr
    assert "error: no trial completed: all 3 trials of this run failed; the last one's reason: " in run.stderr
    assert f"(each trial's reason is in {save / 'trials'})" in run.stderr
    assert "out of memory" in run.stdout and "the loss is NaN" in run.stdout, "two ways: not a broken setup"
    again = agent_cli(*argv)  # nothing left to run, and still no result
    assert again.returncode == 1 and "no trial of the study completed (3 failed, 0 pruned)" in again.stderr


class _OnlyTheMiddle(EvaluateToy):
    """Branin that fails everywhere but at the middle of x1's range (where the probe goes)."""

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        if float(config["x1"]) != 2.5:
            return EvalResult.failed("the loss diverged to nan at epoch 2")
        return await super().evaluate(config)


@pytest.mark.anyio
async def test_a_run_whose_trials_all_failed_says_when_a_probe_showed_the_setup_works(tmp_path: Path) -> None:
    """no_result said only "all 3 trials of this run failed", though the probe had completed."""
    store = open_store(tmp_path)
    try:
        summary = await optimize(
            tool=_OnlyTheMiddle("branin", TASK.space), strategy=RandomStrategy(), store=store, budget=3
        )
    finally:
        store.close()
    assert (summary.n_trials, summary.failed, summary.probes, summary.probes_completed) == (3, 3, 1, (3,))
    problem = summary.no_result()
    assert problem is not None and problem.startswith("no trial completed: all 3 trials of this run failed")
    assert problem.endswith(
        "; a probe of the setup (#3, the middle of the space) completed, so the setup works and these trials drew "
        "a failing region: run it again with a larger --budget"
    )
