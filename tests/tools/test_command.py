"""Tests for tools/command.py: real processes, their output read as they print it, nothing left running."""

from __future__ import annotations

import json
import logging
import math
import sys
import textwrap
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from agent.space import SearchSpace
from evaluators.base import Progress
from tests.processes import alive, read_pids, wait_for_pids, wait_gone
from tools.base import TrialContext
from tools.command import RunCommand, format_value, placeholders

pytestmark = pytest.mark.anyio

SPACE = SearchSpace.from_dict(
    {
        "x": {"type": "float", "low": -5.0, "high": 5.0},
        "n": {"type": "int", "low": 1, "high": 8},
        "kind": {"type": "categorical", "choices": ["a", "b"]},
    }
)
CONFIG = {"x": 0.25, "n": 3, "kind": "b"}

# A child that keeps running in the script's process group, to check that it is stopped too.
SPAWN_GRANDCHILD = """
import subprocess
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
Path("grandchild.pid").write_text(str(grandchild.pid))
"""


def command(tmp_path: Path, body: str, timeout: float | None = None, grace_s: float = 2.0) -> RunCommand:
    script = tmp_path / "train.py"
    header = "import json, os, sys, time\nfrom pathlib import Path\nPath('script.pid').write_text(str(os.getpid()))\n"
    script.write_text(header + textwrap.dedent(body))
    argv = [sys.executable, str(script), "--x", "{x}", "--n={n}", "{kind}"]
    return RunCommand(SPACE, argv, "loss", timeout=timeout, grace_s=grace_s)


def trial_in(tmp_path: Path, number: int = 7, report: object = None) -> TrialContext:
    return TrialContext(number=number, directory=tmp_path / "trials" / f"trial_{number:04d}", report=report)  # type: ignore[arg-type]


def test_placeholders_take_the_configuration_token_by_token() -> None:
    tool = RunCommand(SPACE, ["prog", "--lr={x}", "{n}", "{kind}-{n}", "{not a placeholder}"], "loss")
    assert placeholders(tool.argv) == ["x", "n", "kind"]
    assert tool.command_for(CONFIG) == ["prog", "--lr=0.25", "3", "b-3", "{not a placeholder}"]
    assert [format_value(v) for v in (1e-05, 0.1, 3, True, False, "adam")] == [
        "1e-05",
        "0.1",
        "3",
        "true",
        "false",
        "adam",
    ]
    with pytest.raises(ValueError, match=r"\{lr\} names no parameter of the search space \(x, n, kind\)"):
        RunCommand(SPACE, ["prog", "--lr", "{lr}"], "loss")


async def test_the_value_is_the_metric_of_the_last_json_line(tmp_path: Path) -> None:
    tool = command(
        tmp_path,
        """
        print("a plain line, then some that are not results")
        print("{not json}")
        print(json.dumps([1, 2]))
        print(json.dumps({"step": 1, "loss": 2.0}))
        print(json.dumps({"step": 2, "loss": 1.5, "lr": 0.1}))
        print("warming down", file=sys.stderr)
        print(json.dumps({
            "loss": float(sys.argv[2]) + int(sys.argv[3].split("=")[1]),
            "accuracy": 0.9,
            "nested": {"dropped": True},
            "argv": sys.argv[1:],
            "cwd": os.getcwd(),
            "trial_number": os.environ["TRIAL_NUMBER"],
            "trial_dir": os.environ["TRIAL_DIR"],
            "trial_params": os.environ["TRIAL_PARAMS"],
        }))
        print("a last line that is not JSON")
        """,
    )
    trial = trial_in(tmp_path)
    result = await tool.evaluate(dict(CONFIG), trial)

    assert result.state == "complete", result.error
    assert result.value == 3.25
    folder = trial.directory
    assert folder is not None
    assert result.metrics["accuracy"] == 0.9 and result.metrics["lr"] == 0.1
    assert "nested" not in result.metrics and "argv" not in result.metrics and "step" not in result.metrics
    assert result.metrics["cwd"] == str(folder), "the command runs in the trial's own folder"
    assert result.metrics["trial_number"] == "7"
    assert result.metrics["trial_dir"] == str(folder)
    assert json.loads(str(result.metrics["trial_params"])) == CONFIG
    assert (folder / "stdout.log").read_text().startswith("a plain line")
    assert (folder / "stderr.log").read_text() == "warming down\n"
    assert (folder / "command.txt").read_text().split()[-4:] == ["--x", "0.25", "--n=3", "b"]


async def test_the_last_step_line_is_the_value_when_no_other_line_follows(tmp_path: Path) -> None:
    tool = command(tmp_path, 'for s in range(3):\n    print(json.dumps({"step": s, "loss": 1.0 / (s + 1)}))\n')
    result = await tool.evaluate(dict(CONFIG), trial_in(tmp_path))
    assert result.state == "complete" and result.value == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            'print(json.dumps({"loss": 1.0}))\nprint("Traceback: it broke", file=sys.stderr)\nsys.exit(3)',
            "the command exited with status 3; the last lines of its stderr:\nTraceback: it broke",
        ),
        ('print("no result here")', "the command printed no JSON line on stdout (the last one holds 'loss')"),
        (
            'print(json.dumps({"loss": 1.0}))\nprint(json.dumps({"accuracy": 1}))',
            "the last JSON line the command printed held no 'loss' (its keys: 'accuracy')",
        ),
        ('print(json.dumps({"loss": float("nan")}))', "loss = nan: not a finite number"),
        ("print('{\"loss\": Infinity}')", "loss = inf: not a finite number"),
        ('print(json.dumps({"loss": "0.5"}))', "loss = '0.5': not a number"),
        ("import signal\nos.kill(os.getpid(), signal.SIGKILL)", "the command was killed by signal 9"),
    ],
    ids=["exit-status", "no-json", "no-metric", "nan", "infinity", "string", "signal"],
)
async def test_a_failing_run_is_a_failed_trial_saying_why(tmp_path: Path, body: str, reason: str) -> None:
    result = await command(tmp_path, body).evaluate(dict(CONFIG), trial_in(tmp_path))
    assert result.state == "fail"
    assert result.error is not None and reason in result.error


@pytest.mark.timeout(100)  # the run sleeps 120 s: only its timeout ends it within this
async def test_a_run_past_its_timeout_is_stopped_with_everything_it_started(tmp_path: Path) -> None:
    body = SPAWN_GRANDCHILD + 'print("starting", file=sys.stderr, flush=True)\ntime.sleep(120)\n'
    trial = trial_in(tmp_path)
    result = await command(tmp_path, body, timeout=1.5).evaluate(dict(CONFIG), trial)
    assert result.state == "fail"
    assert result.error is not None and result.error.startswith("timed out after 1.5 s")
    assert "starting" in result.error
    assert trial.directory is not None
    assert wait_gone(read_pids(trial.directory)) == [], "the script and its child must be stopped"


async def test_the_pruner_stops_the_run_at_a_step(tmp_path: Path) -> None:
    reported: list[tuple[int, float]] = []

    def report(step: int, value: float) -> bool:
        reported.append((step, value))
        return step >= 2

    body = SPAWN_GRANDCHILD + textwrap.dedent(
        """
        for step in range(100):
            print(json.dumps({"step": step, "loss": 10.0 - step}), flush=True)
            time.sleep(0.1)
        """
    )
    trial = trial_in(tmp_path, report=report)
    result = await command(tmp_path, body).evaluate(dict(CONFIG), trial)
    assert result.state == "pruned"
    assert result.value == 8.0 and result.metrics["step"] == 2
    assert reported == [(0, 10.0), (1, 9.0), (2, 8.0)]
    assert trial.directory is not None
    assert wait_gone(read_pids(trial.directory)) == []


async def test_malformed_steps_are_not_reported_and_the_rest_go_to_the_reporter_to_judge(tmp_path: Path) -> None:
    """A repeated step, or one without a finite metric, is the reporter's to judge (it warns and schedules the
    trial no more: tests/agent/study/test_reporting.py); a step that is no whole number >= 0 is no step."""
    reported: list[tuple[int, float]] = []

    def report(step: int, value: float) -> bool:
        reported.append((step, value))
        return False

    lines = [{"step": 0, "loss": 3}, {"step": 0, "loss": 2}, {"step": -1, "loss": 1}, {"step": 1.5, "loss": 1}]
    lines += [{"step": "2", "loss": 1}, {"step": 2, "loss": math.inf}, {"step": 3}, {"step": 4, "loss": 0.5}]
    body = "".join(f"print({json.dumps(json.dumps(line))})\n" for line in lines)
    result = await command(tmp_path, body).evaluate(dict(CONFIG), trial_in(tmp_path, report=report))
    assert [step for step, _ in reported] == [0, 0, 2, 3, 4]
    assert [v for _, v in reported][:2] == [3.0, 2.0] and reported[2][1] == math.inf
    assert math.isnan(reported[3][1]) and reported[4][1] == 0.5
    assert result.state == "complete" and result.value == 0.5


async def test_each_step_line_is_the_trials_progress_with_the_metric(tmp_path: Path) -> None:
    """Shown as the trial's progress with or without a pruner (the display decides how often to print it)."""
    seen: list[Progress] = []
    lines = [{"step": 0, "loss": 3, "acc": 0.5}, {"step": 0, "loss": 2}, {"step": 5, "loss": 1.5, "note": "x"}]
    lines += [{"loss": 1.25}]
    body = "".join(f"print({json.dumps(json.dumps(line))})\n" for line in lines)
    trial = TrialContext(number=7, directory=tmp_path / "t", progress=seen.append)
    result = await command(tmp_path, body).evaluate(dict(CONFIG), trial)
    assert result.value == 1.25
    assert [(p.done, p.total, p.unit, p.headline, p.metrics) for p in seen] == [
        (0, None, "step", "loss", {"loss": 3.0, "acc": 0.5}),
        (5, None, "step", "loss", {"loss": 1.5}),
    ]
    assert all(0 <= p.elapsed_s < 60 for p in seen)


async def test_a_cancelled_trial_leaves_nothing_running(tmp_path: Path) -> None:
    tool = command(tmp_path, SPAWN_GRANDCHILD + "time.sleep(120)\n")
    trial = trial_in(tmp_path)
    assert trial.directory is not None
    folder = trial.directory
    with anyio.move_on_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(tool.evaluate, dict(CONFIG), trial)
            pids = await anyio.to_thread.run_sync(wait_for_pids, folder, 2)
            assert all(alive(p) for p in pids)
            tg.cancel_scope.cancel()
    assert wait_gone(pids) == []


async def test_without_a_trial_folder_the_run_uses_a_temporary_one() -> None:
    tool = RunCommand(SPACE, [sys.executable, "-c", 'import json; print(json.dumps({"loss": {x}}))'], "loss")
    result = await tool.evaluate(dict(CONFIG))
    assert result.state == "complete" and result.value == 0.25


async def test_step_lines_nothing_schedules_get_one_hint_to_add_steps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new user's task file without `steps:`: the runs print step lines, no run is stopped early, and the log
    says once what would turn it on. A task that says its last step is scheduled: no hint."""
    body = 'for s in (1, 2):\n    print(json.dumps({"step": s, "loss": 1.0 / s}), flush=True)\n'
    body += 'print(json.dumps({"loss": 0.5}))\n'
    tool = command(tmp_path, body)
    with caplog.at_level(logging.WARNING, logger="agent.tools.command"):
        for number in (0, 1):
            assert (await tool.evaluate(dict(CONFIG), trial_in(tmp_path, number))).state == "complete"
        hints = [r.getMessage() for r in caplog.records if "`steps:`" in r.getMessage()]
        assert len(hints) == 1 and hints[0].startswith("trial 0: the command prints step lines"), hints
        assert "add `steps: N` (the last step a full run prints)" in hints[0]
        caplog.clear()
        scheduled = command(tmp_path, body)
        scheduled.max_step = 2
        assert (await scheduled.evaluate(dict(CONFIG), trial_in(tmp_path, 2))).state == "complete"
        assert not [r for r in caplog.records if "`steps:`" in r.getMessage()]
