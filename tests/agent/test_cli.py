"""The command line, run as users run it: real subprocesses, a real SQLite study on disk."""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from agent._log import get_logger
from agent.cli import _library_warnings_shown, build_parser, main, parse_budgets, parse_strategies
from agent.errors import UserError
from agent.flags import canonical_spelling
from tests.processes import agent_argv

ROOT = Path(__file__).resolve().parents[2]


Spawn = Callable[..., subprocess.Popen[bytes]]


def _agent(spawn: Spawn, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return spawn(agent_argv(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finished_count(save_dir: Path) -> int:
    """Finished trials in the study a running process writes, read-only (Optuna's storage would create the
    tables it finds missing, racing the process that is creating them)."""
    try:
        with sqlite3.connect(f"file:{save_dir / 'study.db'}?mode=ro", uri=True) as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'FAIL', 'PRUNED')"
            ).fetchone()
    except sqlite3.OperationalError:  # no file, or no tables yet
        return 0
    return int(count)


def _trials(save_dir: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials; none while a run killed early had not created it yet."""
    if not (save_dir / "study.db").exists():
        return []
    try:
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{save_dir / 'study.db'}")
    except KeyError:
        return []
    return study.get_trials(deepcopy=False)


def _assert_consistent(save_dir: Path, name: str, budget: int) -> None:
    """Exactly the budget's trials, each finished once, each with a JSON file that agrees with the storage;
    besides them only void trials (a sampler's draw a kill cut short: failed, never evaluated, no file)."""
    every = _trials(save_dir, name)
    void = [t for t in every if t.user_attrs.get("void")]
    trials = [t for t in every if not t.user_attrs.get("void")]
    assert all(t.state == optuna.trial.TrialState.FAIL for t in void)
    assert len(trials) == budget
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    files = sorted((save_dir / "trials").glob("trial_*.json"))
    assert len(files) == budget
    for t in trials:
        body = json.loads((save_dir / "trials" / f"trial_{t.number:04d}.json").read_text())
        assert body["trial"] == t.number
        assert body["hyperparameters"] == t.params
        assert body["value"] == t.value
        assert body["state"] == "complete"


@pytest.mark.slow
def test_random_study_writes_trials_and_resumes_with_a_larger_budget(tmp_path: Path) -> None:
    save = tmp_path / "r"
    base = ["--task", "toy-branin", "--strategy", "random", "--seed", "0", "--save_dir", str(save)]
    first = subprocess.run([sys.executable, "-m", "agent", *base, "--budget", "10"], capture_output=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr.decode()
    assert (save / "study.db").is_file()
    assert len(list((save / "trials").glob("*.json"))) == 10
    assert b"best value" in first.stdout
    before = {t.number: t.params for t in _trials(save, "toy-branin-random-seed0")}

    second = subprocess.run([sys.executable, "-m", "agent", *base, "--budget", "15"], capture_output=True, cwd=ROOT)
    assert second.returncode == 0, second.stderr.decode()
    after = {t.number: t.params for t in _trials(save, "toy-branin-random-seed0")}
    assert len(after) == 15
    assert {n: after[n] for n in before} == before, "earlier trials must be untouched"
    new_configs = [json.dumps(after[n], sort_keys=True) for n in range(10, 15)]
    old_configs = {json.dumps(p, sort_keys=True) for p in before.values()}
    assert not old_configs.intersection(new_configs), "a resumed sampler must not replay the first draws"
    _assert_consistent(save, "toy-branin-random-seed0", 15)

    # The same command again has nothing left to do.
    third = subprocess.run([sys.executable, "-m", "agent", *base, "--budget", "15"], capture_output=True, cwd=ROOT)
    assert third.returncode == 0
    assert len(_trials(save, "toy-branin-random-seed0")) == 15


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_loses_and_duplicates_nothing(tmp_path: Path, spawn: Spawn) -> None:
    """SIGKILL a real study again and again; every restart resumes; the end state is exactly the budget."""
    save, budget, kills = tmp_path / "k", 2000, 0
    args = ["--task", "hpobench-kc1", "--strategy", "random", "--budget", str(budget), "--save_dir", str(save)]
    args += ["--quiet"]
    rng = random.Random(1234)
    finished_per_kill = [0]
    while kills < 10:
        proc = _agent(spawn, *args)
        try:
            # Kill at a random moment once this run is finishing trials (its start-up takes a machine's own time;
            # a fixed delay let a fast machine finish the whole budget before the tenth kill).
            deadline = time.monotonic() + 60
            while _finished_count(save) <= finished_per_kill[-1] and proc.poll() is None:
                assert time.monotonic() < deadline, "the resumed study never finished a trial"
                time.sleep(0.02)
            proc.wait(timeout=rng.uniform(0.0, 0.6))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            finished_per_kill.append(_finished_count(save))
        else:
            pytest.fail(f"the study finished after {kills} kills; raise its budget so every kill lands mid-study")
        finally:
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
    finished_per_kill = finished_per_kill[1:]
    print(f"killed the study {kills} times; finished trials after each kill: {finished_per_kill}")
    assert finished_per_kill == sorted(finished_per_kill), "a kill must never lose a finished trial"
    final = subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, cwd=ROOT)
    assert final.returncode == 0, final.stderr.decode()
    _assert_consistent(save, "hpobench-kc1-random-seed0", budget)
    with sqlite3.connect(save / "study.db") as db:
        (n,) = db.execute("select count(*) from trials").fetchone()
        (void,) = db.execute("select count(*) from trial_user_attributes where key = 'void'").fetchone()
    assert n == budget + void and void <= kills, "at most one draw cut short per kill"


@pytest.mark.slow
def test_sigint_stops_cleanly_and_says_how_to_resume(tmp_path: Path, spawn: Spawn) -> None:
    save = tmp_path / "i"
    args = ["--task", "hpobench-kc1", "--strategy", "random", "--budget", "100000", "--save_dir", str(save), "--quiet"]
    proc = _agent(spawn, *args)
    deadline = time.monotonic() + 60
    while not _finished_count(save):
        assert time.monotonic() < deadline and proc.poll() is None, "the study never finished a trial"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"run the same command again to resume" in err
    assert b"Traceback" not in err
    done = [t for t in _trials(save, "hpobench-kc1-random-seed0") if t.state.is_finished()]
    assert done, "trials finished before the interrupt must be kept"


def test_tasks_lists_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("toy-branin", "toy-shifted_ackley", "hpobench-kc1", "nb201-cifar100"):
        assert name in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "no-such-task", "--strategy", "random"], "unknown task 'no-such-task'"),
        (["--task", "toy-branin", "--strategy", "random", "--search_space", "/nonexistent.json"], "--search_space"),
        (["--task", "toy-branin", "--strategy", "random", "--storage", "sqlite:////no/such/dir/x.db"], "--storage"),
    ],
)
def test_bad_configuration_is_a_clear_error(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--save_dir", str(tmp_path / "s"), "--budget", "1"]) == 2
    assert message in capsys.readouterr().err


def test_unwritable_save_dir_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["--task", "toy-branin", "--strategy", "random", "--save_dir", str(blocker / "sub")]) == 2
    assert "--save_dir" in capsys.readouterr().err


def test_search_space_file_replaces_the_task_space(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("x1: {type: float, low: 0, high: 1}\nx2: {type: float, low: 2, high: 3}\n")
    assert (
        main(
            [
                "--task",
                "toy-branin",
                "--random_hparams",
                "--rounds",
                "4",
                "--save_dir",
                str(tmp_path / "s"),
                "--search_space",
                str(space),
                "--quiet",
            ]
        )
        == 0
    )
    trials = _trials(tmp_path / "s", "toy-branin-random-seed0")
    assert len(trials) == 4
    assert all(0 <= t.params["x1"] <= 1 and 2 <= t.params["x2"] <= 3 for t in trials)


def test_a_wrong_search_space_file_is_one_line_naming_the_file_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("x1: {type: float, low: 100, high: 1.0e-4}\nx2: {type: floaty, low: 0, high: 1}\n")
    argv = ["--task", "toy-branin", "--strategy", "random", "--search_space", str(space)]
    assert main([*argv, "--save_dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: --search_space {space}: x1: low 100 is above high 0.0001; "
        "x2: unknown type 'floaty'; use float, int or categorical\n"
    )
    assert not (tmp_path / "s").exists()


def test_help_lists_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for flag in (
        "--task",
        "--strategy",
        "--budget",
        "--rounds",
        "--seed",
        "--save_dir",
        "--storage",
        "--history",
        "--max-retries",
        "--on-invalid",
        "--provider",
        "--model",
        "--llm",
        "--random_hparams",
        "--search_space",
    ):
        assert flag in out


@pytest.mark.parametrize("command", [None, "bench", "report", "train"])
def test_every_flags_help_names_its_default_once_and_never_as_none(command: str | None) -> None:
    """Issue 25, item 17: ``--device`` said ``(default: the best present) (default: None)``."""
    text = " ".join(build_parser(command).format_help().split())
    assert "(default: None)" not in text and "(default: False)" not in text
    for item in re.split(r"\s(?=-{1,2}\w)", text):
        assert item.count("(default") <= 1, item
    if command in (None, "train"):
        assert "cuda, cuda:1, mps or cpu (default: the best present: cuda, then mps, then cpu)" in text
        assert "(quick runs) (default: all)" in text


def test_bench_budgets_are_sorted_unique_positive_integers() -> None:
    assert parse_budgets("30,10,10") == (10, 30)
    with pytest.raises(UserError, match="--budget"):
        parse_budgets("10,x")
    with pytest.raises(UserError, match="--strategies"):
        parse_strategies("random,nope")
    assert parse_strategies("tpe, random,tpe") == ("tpe", "random")


def test_the_cli_shows_the_agents_warnings_on_stderr_and_gives_the_logging_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What a library keeps quiet, the command line shows: the agent's warnings on stderr, one line each, and no
    Optuna chatter; a program calling ``main`` gets its settings back."""
    agent_log = logging.getLogger("agent")
    before = (agent_log.level, agent_log.propagate, list(agent_log.handlers), optuna.logging.get_verbosity())
    with _library_warnings_shown():
        assert optuna.logging.get_verbosity() == optuna.logging.WARNING
        log = get_logger("agent.providers._retry")
        log.warning("provider_retry", attempt=1, reason="HTTP 500")
        log.info("provider_retry", attempt=2)
    assert capsys.readouterr().err == "warning: provider_retry attempt=1 reason='HTTP 500'\n"
    assert (agent_log.level, agent_log.propagate, list(agent_log.handlers), optuna.logging.get_verbosity()) == before


# ---- flags: defined once, both spellings, one-line errors ---------------------------------------------


def test_a_negative_seed_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--task", "toy-branin", "--seed", "-1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "error: argument --seed: must be a whole number from 0 to 2147483647, got -1\n"
        "run `python -m agent --help` for the flags\n"
    )


@pytest.mark.parametrize("command", ["run", "bench"])
def test_a_time_budget_that_cannot_be_parsed_is_a_one_line_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    task = ["--task", "toy-branin"] if command == "run" else ["--tasks", "toy"]
    with pytest.raises(SystemExit) as exited:
        main([command, *task, "--time-budget", "90"])
    assert exited.value.code == 2
    first, pointer = capsys.readouterr().err.splitlines()
    assert first == "error: argument --time-budget: '90' is not a duration; write it as 90s, 30m, 2h or 1h30m"
    assert pointer.startswith("run `python -m agent")


def test_a_time_budget_parses_to_seconds_for_a_study_and_the_bench() -> None:
    assert build_parser().parse_args(["--task", "toy-branin", "--time-budget", "1h30m"]).time_budget == 5400.0
    assert build_parser().parse_args(["--task", "toy-branin"]).time_budget is None
    assert build_parser("bench").parse_args(["--tasks", "toy", "--time_budget", "90s"]).time_budget == 90.0


@pytest.mark.parametrize("command", [None, "bench", "report"])
def test_every_multi_word_flag_takes_both_spellings(command: str | None) -> None:
    parser = build_parser(command)
    known = {s for action in parser._actions for s in action.option_strings}
    multi = [s for s in known if s.startswith("--") and ("_" in s[2:] or "-" in s[2:])]
    assert multi
    for spelling in multi:
        for other in ("--" + spelling[2:].replace("_", "-"), "--" + spelling[2:].replace("-", "_")):
            assert canonical_spelling(other, known) in known, other


def test_both_spellings_parse_to_the_same_values() -> None:
    base = ["--task", "toy-branin"]
    dashes = build_parser().parse_args([*base, "--learn-from", "a", "--save-dir", "s", "--max-retries", "2"])
    underscores = build_parser().parse_args([*base, "--learn_from", "a", "--save_dir=s", "--max_retries", "2"])
    assert vars(dashes) == vars(underscores)
    assert (dashes.learn_from, dashes.save_dir, dashes.max_retries) == (["a"], "s", 2)
    bench = build_parser("bench").parse_args(["--tasks", "toy", "--learn_from", "a", "--random_samples", "5"])
    assert (bench.learn_from, bench.random_samples) == (["a"], 5)


def test_run_and_bench_share_each_flag_they_both_have() -> None:
    run, bench = build_parser(), build_parser("bench")

    def described(parser: argparse.ArgumentParser) -> dict[str, tuple[object, ...]]:
        return {
            a.dest: (tuple(a.option_strings), a.help, a.default, a.choices, a.type)
            for a in parser._actions
            if a.option_strings
        }

    shared = {"learn_from", "history", "max_retries", "provider", "model"}
    assert {dest: described(run)[dest] for dest in shared} == {dest: described(bench)[dest] for dest in shared}


@pytest.mark.slow
def test_a_closed_stdout_does_not_stop_the_study(tmp_path: Path) -> None:
    """``python -m agent ... | head -1``: the reader goes away after one line; the study runs its budget."""
    save = tmp_path / "s"
    argv = ["--task", "toy-branin", "--strategy", "random", "--budget", "40", "--save_dir", str(save)]
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # as head does after its line
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=120) == 0, err
    assert first.startswith("starting study toy-branin-random-seed0")
    assert err.count("note: the output was closed") == 1 and "Traceback" not in err
    trials = _trials(save, "toy-branin-random-seed0")
    assert len(trials) == 40 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
