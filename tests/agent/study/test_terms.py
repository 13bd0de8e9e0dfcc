"""Tests for agent/study/terms.py (with agent/study/store.py and the CLI): what a study is made for is stored
with it; a later run for another task, space, metric or direction, or with other sources, is refused in one
line (exit 2) before anything is written; a changed command or objective resumes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from agent.errors import StudyError, UserError
from agent.space import FloatParam, SearchSpace
from agent.study import opened_storage
from agent.study.terms import StudyTerms, kept_time_budget, time_used

ROOT = Path(__file__).resolve().parents[3]
SPACE = SearchSpace(params={"x": FloatParam(low=0.0, high=1.0)})
WHERE = "study 's' in sqlite:///s.db"


def terms(**changes: object) -> StudyTerms:
    base: dict[str, object] = {"space": SPACE, "task": "fit", "metric": "loss", "direction": "minimize"}
    return StudyTerms(**{**base, **changes})  # type: ignore[arg-type]


STORED = terms().new_study()


def test_a_new_study_stores_what_it_is_for() -> None:
    assert STORED == {"space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "task": "fit", "metric": "loss"}
    assert terms(sources=("sqlite:///a.db",)).new_study()["learn_from"] == ["sqlite:///a.db"]


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        (terms(metric="val_acc"), f"{WHERE} measures metric 'loss', this task measures 'val_acc'; the two would mix"),
        (terms(task="other"), f"{WHERE} belongs to task 'fit', not 'other'; use a new --save_dir"),
        (terms(direction="maximize"), f"{WHERE} minimizes its objective, this task maximizes it; use a new --save_dir"),
        (
            terms(space=SearchSpace(params={"x": FloatParam(low=0.0, high=2.0)})),
            f"{WHERE} was created with another search space; use a new --save_dir",
        ),
    ],
)
def test_a_study_made_for_another_task_is_refused_naming_both(asked: StudyTerms, message: str) -> None:
    with pytest.raises(StudyError) as caught:
        asked.resume(STORED, "minimize", has_trials=True, where=WHERE)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert isinstance(caught.value, UserError), "exit 2, as every user error"


def test_the_same_terms_resume_and_an_older_study_without_a_metric_is_not_refused() -> None:
    assert terms().resume(STORED, "minimize", has_trials=True, where=WHERE) == {}
    older = {k: v for k, v in STORED.items() if k != "metric"}
    assert terms(metric="val_acc").resume(older, "minimize", has_trials=True, where=WHERE) == {}


def test_a_study_of_setup_failures_only_takes_its_corrected_metric() -> None:
    assert terms(metric="val_r2").resume(STORED, "minimize", has_trials=False, where=WHERE) == {"metric": "val_r2"}


def test_sources_are_kept_and_new_ones_refused_once_the_study_has_trials() -> None:
    a, b = ("sqlite:///a.db",), ("sqlite:///b.db",)
    with_a = {**STORED, "learn_from": list(a)}
    assert terms(sources=a).resume(with_a, "minimize", has_trials=True, where=WHERE) == {}
    assert terms().resume(with_a, "minimize", has_trials=True, where=WHERE) == {}, "kept without --learn-from"
    with pytest.raises(StudyError, match="learns from sqlite:///a.db; run it again without --learn-from"):
        terms(sources=b).resume(with_a, "minimize", has_trials=True, where=WHERE)
    with pytest.raises(StudyError, match="already has trials and learns from no earlier study; to learn from"):
        terms(sources=b).resume(STORED, "minimize", has_trials=True, where=WHERE)
    assert terms(sources=b).resume(STORED, "minimize", has_trials=False, where=WHERE) == {"learn_from": list(b)}


ASHA = {"pruner": "asha", "min_step": 1, "max_step": 27}


def test_the_scheduler_is_stored_kept_and_another_refused() -> None:
    stored = terms(scheduler=ASHA).new_study()
    assert stored["scheduler"] == ASHA
    assert terms(scheduler=ASHA).resume(stored, "minimize", has_trials=True, where=WHERE) == {}
    assert terms().resume(stored, "minimize", has_trials=True, where=WHERE) == {}, "not asked: not checked"
    for other, said in [
        ({"pruner": "hyperband", "min_step": 1, "max_step": 27}, "hyperband over steps 1..27"),
        ({**ASHA, "max_step": 9}, "asha over steps 1..9"),
        ({"pruner": "none"}, "no pruner"),
    ]:
        with pytest.raises(StudyError) as caught:
            terms(scheduler=other).resume(stored, "minimize", has_trials=False, where=WHERE)
        message = str(caught.value)
        assert message.startswith(f"{WHERE} stops trials early with asha over steps 1..27, this run asks for {said}")
        assert message.endswith(
            "run it with the same --pruner and steps (--num_train_epochs for CIFAR, `steps` in a task file), or use a "
            "new --save_dir (or --study-name)"
        )
    older = terms().new_study()  # a study of an older version: it takes the scheduler of its next run
    assert terms(scheduler=ASHA).resume(older, "minimize", has_trials=True, where=WHERE) == {"scheduler": ASHA}


def test_a_time_budget_is_the_latest_asked_and_kept_when_none_is() -> None:
    assert terms(time_budget_s=3600.0).new_study()["time_budget"] == 3600.0
    hour = {**STORED, "time_budget": 3600.0}
    assert terms().resume(hour, "minimize", has_trials=True, where=WHERE) == {}, "kept when none is asked"
    assert terms(time_budget_s=3600.0).resume(hour, "minimize", has_trials=True, where=WHERE) == {}
    longer = terms(time_budget_s=7200.0).resume(hour, "minimize", has_trials=True, where=WHERE)
    assert longer == {"time_budget": 7200.0}, "another one replaces it, as --budget: a longer one extends the study"
    assert (kept_time_budget(hour), kept_time_budget(STORED)) == (3600.0, None)
    assert (time_used({**hour, "time_used": 12.5}), time_used(STORED)) == (12.5, 0.0)


# ---- through the command line ---------------------------------------------------------------------------

OBJECTIVE = """\
def fit(config):
    return {"loss": (config["x"] - 0.3) ** 2, "val_acc": 1.0 - (config["x"] - 0.3) ** 2}
"""


def write_task(folder: Path, metric: str = "loss", direction: str = "minimize", high: float = 1.0) -> Path:
    (folder / "fit_objective.py").write_text(OBJECTIVE)
    path = folder / "fit.yaml"
    path.write_text(
        f"description: A fit.\nspace:\n  x: {{type: float, low: 0.0, high: {high}}}\nmetric: {metric}\n"
        f"direction: {direction}\nobjective: fit_objective:fit\n"
    )
    return path


def agent_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True
    )


def fingerprint(save: Path) -> tuple[str, ...]:
    """What is on disk of a study: its files and their contents (the database read through SQLite's own
    checkpointed file after a clean close)."""
    return tuple(
        f"{p.relative_to(save)}:{hashlib.sha256(p.read_bytes()).hexdigest()}"
        for p in sorted(save.rglob("*"))
        if p.is_file()
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "val_acc"}, "measures metric 'loss', this task measures 'val_acc'"),
        ({"direction": "maximize"}, "minimizes its objective, this task maximizes it"),
        ({"high": 2.0}, "was created with another search space"),
    ],
)
def test_a_changed_task_is_refused_with_exit_2_and_nothing_written(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    task = write_task(tmp_path)
    save = tmp_path / "study"
    argv = ["--task", str(task), "--strategy", "random", "--budget", "2"]
    assert agent_cli(*argv, "--save_dir", str(save)).returncode == 0
    before = fingerprint(save)

    write_task(tmp_path, **change)  # type: ignore[arg-type]
    refused = agent_cli(*argv, "--budget", "4", "--save_dir", str(save))
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith(f"error: study 'fit-random-seed0' in sqlite:///{save / 'study.db'} {message}")
    assert refused.stderr.count("\n") == 1 and refused.stdout == ""
    assert fingerprint(save) == before, "nothing written: no trial, no attribute, no event line"

    elsewhere = tmp_path / "elsewhere"  # the same storage, another folder: the folder is not even made
    shared = ["--storage", f"sqlite:///{save / 'study.db'}", "--study-name", "fit-random-seed0"]
    again = agent_cli(*argv, *shared, "--save_dir", str(elsewhere))
    assert again.returncode == 2 and message in again.stderr
    assert not elsewhere.exists() and fingerprint(save) == before


@pytest.mark.slow
def test_a_changed_objective_resumes(tmp_path: Path) -> None:
    task = write_task(tmp_path)
    save = tmp_path / "study"
    argv = ["--task", str(task), "--strategy", "random", "--save_dir", str(save)]
    assert agent_cli(*argv, "--budget", "2").returncode == 0
    (tmp_path / "fit_objective.py").write_text(OBJECTIVE.replace("0.3", "0.4"))  # the user fixed a bug
    resumed = agent_cli(*argv, "--budget", "3")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming study fit-random-seed0: 2/3 trials done" in resumed.stdout


@pytest.mark.slow
def test_learning_from_sources_is_refused_for_a_study_that_already_ran(tmp_path: Path) -> None:
    earlier, study = tmp_path / "earlier", tmp_path / "study"
    for folder in (earlier, study):
        ran = agent_cli("--task", "toy-branin", "--strategy", "random", "--budget", "3", "--save_dir", str(folder))
        assert ran.returncode == 0, ran.stderr
    before = fingerprint(study)
    argv = ["--task", "toy-branin", "--strategy", "bo", "--budget", "5", "--save_dir", str(study)]
    refused = agent_cli(*argv, "--study-name", "toy-branin-random-seed0", "--learn-from", str(earlier))
    assert refused.returncode == 2, refused.stderr
    assert "already has trials and learns from no earlier study; to learn from sqlite:///" in refused.stderr
    assert refused.stderr.rstrip().endswith("start a new study: use a new --save_dir (or --study-name)")
    assert refused.stderr.count("\n") == 1 and "learned from" not in refused.stdout
    assert fingerprint(study) == before
    stored = optuna.load_study(study_name="toy-branin-random-seed0", storage=f"sqlite:///{study / 'study.db'}")
    assert "learn_from" not in stored.user_attrs and len(stored.trials) == 3


CURVE = """\
def fit(config):
    for step in range(1, 4):
        yield step, (config["x"] - 0.3) ** 2 + 1.0 / step
    return {"loss": (config["x"] - 0.3) ** 2}
"""


@pytest.mark.slow
def test_a_task_reporting_steps_is_scheduled_by_default_and_keeps_its_scheduler(tmp_path: Path) -> None:
    """A new user's objective that yields steps, with ``steps:`` in its task file, gets asha without a flag;
    a stopped trial counts one toward the budget; a resume with another --pruner is refused in one line."""
    task = write_task(tmp_path)
    (tmp_path / "fit_objective.py").write_text(CURVE)
    task.write_text(task.read_text() + "steps: 3\n")
    save = tmp_path / "study"
    argv = ["--task", str(task), "--strategy", "random", "--save_dir", str(save)]
    ran = agent_cli(*argv, "--budget", "6")
    assert ran.returncode == 0, ran.stderr
    before = fingerprint(save)
    with opened_storage(f"sqlite:///{save / 'study.db'}") as storage:  # closed: the refusal below sees the files
        study = optuna.load_study(study_name="fit-random-seed0", storage=storage)
        assert study.user_attrs["scheduler"] == {"pruner": "asha", "min_step": 1, "max_step": 3}
        states = [t.state for t in study.trials]
    stopped = states.count(optuna.trial.TrialState.PRUNED)
    assert len(states) == 6 and stopped >= 1 and states.count(optuna.trial.TrialState.COMPLETE) == 6 - stopped
    assert f"trials 6: {6 - stopped} complete, 0 failed, {stopped} stopped early" in " ".join(ran.stdout.split())
    assert "stopped early at step 1" in ran.stdout

    refused = agent_cli(*argv, "--budget", "8", "--pruner", "hyperband")
    assert refused.returncode == 2, refused.stderr
    assert "stops trials early with asha over steps 1..3, this run asks for hyperband over steps 1..3" in refused.stderr
    assert refused.stderr.count("\n") == 1 and fingerprint(save) == before
    assert agent_cli(*argv, "--budget", "7").returncode == 0, "the same scheduler (the default) resumes"
