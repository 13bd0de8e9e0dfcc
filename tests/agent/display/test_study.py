"""Tests for agent/display/study.py: the study display on a terminal (live area) and off one (plain lines)."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import pytest
from rich.console import Console

from agent.display import RichReporter
from agent.optimize import StudySummary
from agent.records import TrialRecord
from agent.study import default_storage_url
from agent.tasks import DurationHint
from evaluators.base import Progress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=160, highlight=False, color_system=None), out


def record(number: int, value: float | None, state: str = "complete", error: str | None = None) -> TrialRecord:
    return TrialRecord(number=number, config={"lr": 0.01 * (number + 1)}, state=state, value=value, error=error)  # type: ignore[arg-type]


def epoch(done: float, total: int = 3, elapsed: float = 10.0, **metrics: float) -> Progress:
    return Progress(done, total, elapsed_s=elapsed, metrics={"loss": 1.5, **metrics})


def summary(**kw: object) -> StudySummary:
    return StudySummary(best=record(0, 0.25), n_trials=2, n_new=2, **kw)  # type: ignore[arg-type]


def test_plain_lines_announce_a_trial_once_and_print_every_epoch_end() -> None:
    con, out = console(terminal=False)
    with RichReporter(con, plain_interval_s=3600) as shown:
        assert not shown.live
        shown.started(study="s", budget=2, done=0)
        shown.proposing(0)
        shown.trial_started(0, {"lr": 0.01}, "llm")
        shown.progress(0, epoch(0.5))  # first report: announces the trial
        shown.progress(0, epoch(0.7))  # within the interval: not printed
        shown.progress(0, epoch(1, val_error=0.5))  # an epoch's end always is
        shown.trial_finished(record(0, 0.25), record(0, 0.25))
        shown.trial_started(1, {"lr": 0.02}, "fallback")  # no progress: one line when it ends
        shown.trial_finished(record(1, None, "fail", "diverged"), record(0, 0.25))
        shown.finished(summary(fallbacks=1, unreachable=1, llm_calls=1))
    lines = out.getvalue().splitlines()
    assert lines[0] == "starting study s: 0/2 trials done"
    assert lines[1] == 'trial #0: {"lr": 0.01}'
    assert lines[2].startswith("  trial #0 epoch 1/3 50%: loss 1.5,")
    assert lines[3].startswith("  trial #0 epoch 1/3: loss 1.5, val_error 0.5000,")
    assert re.fullmatch(r"trial #0 -> 0\.25  best 0\.25 \(#0\)  \[trial 1/2, \d+s elapsed(, ~\S+ left)?\]", lines[4])
    assert re.fullmatch(
        r'trial #1 \(fallback\): \{"lr": 0\.02\} -> failed \(diverged\)  best 0\.25 \(#0\)  \[.*\]', lines[5]
    )
    text = out.getvalue()
    assert re.search(r"rounds without the model +1 \(1 with the model unreachable\)", text)
    assert re.search(r"best value +0\.25 \(trial #0\)", text)
    assert not ANSI.search(text)


def test_plain_progress_between_epoch_ends_is_throttled_per_trial() -> None:
    con, out = console(terminal=False)
    with RichReporter(con, plain_interval_s=0.0) as shown:  # no wait: every report prints
        shown.started(study="s", budget=1, done=0)
        shown.trial_started(0, {"lr": 0.01}, "sampler")
        for done in (0.2, 0.4, 0.6):
            shown.progress(0, epoch(done))
    assert len([line for line in out.getvalue().splitlines() if "trial #0 epoch" in line]) == 3


def test_quiet_prints_only_the_summary() -> None:
    con, out = console(terminal=True)
    with RichReporter(con, quiet=True, hint=DurationHint("on CPU", "--subset N")) as shown:
        assert not shown.live
        shown.started(study="s", budget=1, done=0)
        shown.trial_started(0, {"lr": 0.01}, "llm")
        shown.progress(0, epoch(1, elapsed=5000.0))
        shown.trial_finished(record(0, 0.25), record(0, 0.25))
        shown.finished(summary())
    text = ANSI.sub("", out.getvalue())
    assert text.lstrip().startswith("trials")
    assert "trial #0:" not in text and "trial #0 " not in text and "estimate" not in text


@pytest.mark.parametrize("terminal", [True, False])
def test_the_duration_estimate_after_the_first_epoch(terminal: bool) -> None:
    con, out = console(terminal=terminal)
    hint = DurationHint("on CPU", "--subset N or --num_train_epochs N")
    with RichReporter(con, live=terminal, hint=hint) as shown:
        shown.started(study="s", budget=10, done=2)
        shown.trial_started(2, {"lr": 0.01}, "llm")
        shown.progress(2, epoch(0.5, total=10, elapsed=30.0))  # not an epoch's end: no estimate yet
        shown.progress(2, epoch(1, total=10, elapsed=60.0))
        shown.progress(2, epoch(2, total=10, elapsed=120.0))  # once only
    text = ANSI.sub("", out.getvalue())
    assert text.count("estimate") == 1
    assert "estimate: 8 trials x 10 epochs x 60 s per epoch on CPU = about 1h20m; to shorten it: --subset N" in text


def test_a_short_study_gets_the_estimate_without_advice() -> None:
    con, out = console(terminal=False)
    with RichReporter(con, hint=DurationHint("on CPU", "--subset N")) as shown:
        shown.started(study="s", budget=2, done=0)
        shown.trial_started(0, {"lr": 0.01}, "llm")
        shown.progress(0, epoch(1, total=2, elapsed=6.0))
    assert "= about 24s\n" in out.getvalue()


def test_a_trial_is_announced_before_the_estimate_when_its_first_report_is_an_epoch_end() -> None:
    """A fast machine's first report of a trial can be its first epoch's end, which also brings the estimate."""
    con, out = console(terminal=False)
    with RichReporter(con, hint=DurationHint("on CPU", "--subset N")) as shown:
        shown.started(study="s", budget=1, done=0)
        shown.trial_started(0, {"lr": 0.01}, "llm")
        shown.progress(0, epoch(1, total=2, elapsed=1.0))
    lines = out.getvalue().splitlines()
    assert lines[1] == 'trial #0: {"lr": 0.01}'
    assert lines[2].startswith("estimate: 1 trial x 2 epochs x 1 s per epoch")
    assert lines[3].startswith("  trial #0 epoch 1/2: loss 1.5")


def test_live_area_redraws_in_place_and_is_removed_at_the_end() -> None:
    con, out = console(terminal=True)
    with RichReporter(con) as shown:
        assert shown.live
        shown.started(study="s", budget=2, done=0)
        shown.proposing(0)
        shown.trial_started(0, {"lr": 0.01}, "llm")
        shown.progress(0, epoch(1.5, val_error=0.5))
        shown._live.refresh()  # type: ignore[union-attr]  # what its thread does 4 times a second
        shown.trial_finished(record(0, 0.25), record(0, 0.25))
        shown.finished(summary())
    raw = out.getvalue()
    assert "\x1b[1A" in raw and "\x1b[2K" in raw, "the live area moves the cursor up and clears lines"
    text = ANSI.sub("", raw)
    assert "epoch 2/3 50%: loss 1.5" in text
    assert re.search(r"study: trial 1/2, \d+s elapsed", text)
    assert 'trial #0: {"lr": 0.01} -> 0.25  best 0.25 (#0)' in text
    assert "best configuration" in text
    assert shown._live is None


def test_progress_from_other_threads_while_trials_finish() -> None:
    """Training reports from its own thread; nothing may break while the loop finishes trials."""
    con, _ = console(terminal=True)
    errors: list[BaseException] = []
    with RichReporter(con) as shown:
        shown.started(study="s", budget=200, done=0)

        def report(number: int) -> None:
            try:
                for i in range(200):
                    shown.progress(number, epoch(i / 100, total=2))
            except BaseException as exc:  # pragma: no cover - what the test is looking for
                errors.append(exc)

        threads = []
        for number in range(8):
            shown.trial_started(number, {"lr": 0.01}, "llm")
            threads.append(threading.Thread(target=report, args=(number,)))
        for t in threads:
            t.start()
        for number in range(8):
            shown.trial_finished(record(number, 0.5), record(0, 0.5))
        for t in threads:
            t.join()
    assert errors == []


def test_summary_without_a_completed_trial() -> None:
    con, out = console(terminal=False)
    shown = RichReporter(con)
    shown.started(study="s", budget=1, done=0)
    shown.finished(StudySummary(best=None, n_trials=1, n_new=1, fallbacks=1))
    assert "no trial completed" in out.getvalue()
    assert re.search(r"rounds without the model +1 \(1 after invalid answers\)", out.getvalue())


def test_a_stopped_trial_shows_the_step_it_reached() -> None:
    con, out = console(terminal=False)
    stopped = TrialRecord(number=0, config={"lr": 0.01}, state="pruned", curve={9: 0.5})
    by_a_command = TrialRecord(number=1, config={"lr": 0.02}, state="pruned", metrics={"step": 3})
    with RichReporter(con) as shown:
        shown.started(study="s", budget=2, done=0)
        for r in (stopped, by_a_command):
            shown.trial_started(r.number, r.config, "sampler")
            shown.trial_finished(r, None)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith('trial #0: {"lr": 0.01} -> stopped early at step 9  [trial 1/2')
    assert lines[2].startswith('trial #1: {"lr": 0.02} -> stopped early at step 3  [trial 2/2')


def test_a_reason_of_several_lines_stays_with_its_trial() -> None:
    """The first line on the trial's line, the rest indented under it: a stderr tail never breaks the line."""
    con, out = console(terminal=False)
    reason = "the command exited with status 1; the last lines of its stderr:\nTraceback (most recent call last):\n"
    reason += "RuntimeError: CUDA error: out of memory"
    with RichReporter(con) as shown:
        shown.started(study="s", budget=2, done=0)
        shown.trial_started(0, {"lr": 0.01}, "sampler")
        shown.trial_finished(record(0, None, "fail", reason), None)
        shown.trial_started(1, {"lr": 0.02}, "sampler")
        shown.trial_finished(record(1, 0.5), record(1, 0.5))
    lines = out.getvalue().splitlines()
    assert re.fullmatch(
        r'trial #0: \{"lr": 0\.01\} -> failed \(the command exited with status 1; the last lines of its stderr:\)'
        r"  \[trial 1/2, \d+s elapsed\]",
        lines[1],
    )
    assert lines[2:4] == ["    Traceback (most recent call last):", "    RuntimeError: CUDA error: out of memory"]
    assert lines[4].startswith('trial #1: {"lr": 0.02} -> 0.5')


def test_the_summary_counts_each_kind_of_trial_and_says_where_the_study_is(tmp_path: Path) -> None:
    con, out = console(terminal=False)
    shown = RichReporter(con)
    shown.started(study="s", budget=6, done=0, setup_failures=3)
    shown.finished(
        StudySummary(
            best=record(0, 0.25),
            n_trials=6,
            n_new=6,
            complete=3,
            failed=2,
            pruned=1,
            setup_failures=3,
            llm_calls=1,
            prompt_tokens=1,
            reasks=1,
            save_dir=tmp_path,
            storage=default_storage_url(tmp_path),
        )
    )
    text = out.getvalue()
    assert text.startswith("starting study s: 0/6 trials done (3 setup failures of a broken start kept in it, not ")
    assert re.search(r"trials +6: 3 complete, 2 failed, 1 stopped early \(6 in this run, \d+s\)", text)
    assert re.search(r"setup failures +3 \(of a broken start: kept in the study, not counted\)", text)
    assert re.search(r"LLM usage +1 call, 1 token \(1 prompt, 0 completion\), 0\.0 s, 1 reask", text)
    assert re.search(rf"saved in +{re.escape(str(tmp_path))} \(study\.db, trials/, events\.jsonl\)", text)


def test_the_summary_shows_the_deadlines_stops_the_compute_and_the_time_budget() -> None:
    con, out = console(terminal=False)
    shown = RichReporter(con)
    shown.started(study="s", budget=10, done=0)
    shown.finished(
        summary(complete=1, pruned=0, stopped_by_deadline=1, compute_s=90.0, time_used_s=125.0, time_budget_s=120.0)
    )
    text = out.getvalue()
    assert re.search(r"trials +2: 1 complete, 0 failed, 1 stopped by the deadline \(2 in this run", text)
    assert re.search(r"compute +1m30s in all, 45 s per trial", text)
    assert re.search(r"time budget +2m05s used of 2m00s", text)


def test_the_summary_names_a_storage_elsewhere(tmp_path: Path) -> None:
    con, out = console(terminal=False)
    shown = RichReporter(con)
    shown.started(study="s", budget=1, done=0)
    url = "postgresql://db.example/studies"
    shown.finished(StudySummary(best=None, n_trials=1, n_new=1, failed=1, save_dir=tmp_path, storage=url))
    text = out.getvalue()
    assert re.search(r"trials +1: 0 complete, 1 failed \(1 in this run", text), "no pruned count when none was"
    assert f"(trials/, events.jsonl); the study is in {url}" in text


@pytest.mark.parametrize(("done", "said"), [(8, "8 trials done"), (1, "1 trial done")])
def test_resuming_a_study_past_its_budget_says_there_is_nothing_to_run(done: int, said: str) -> None:
    con, out = console(terminal=False)
    with RichReporter(con) as shown:
        shown.started(study="s", budget=min(done, 5), done=done)
    assert out.getvalue().splitlines() == [f"study s: {said}, budget {min(done, 5)}: nothing to run"]


def step(done: int, elapsed: float, value: float) -> Progress:
    return Progress(done, None, elapsed_s=elapsed, unit="step", metrics={"val_r2": value}, headline="val_r2")


def test_a_programs_step_lines_show_at_a_steady_pace_in_a_pipe_and_in_place_on_a_terminal() -> None:
    con, out = console(terminal=False)
    with RichReporter(con, plain_interval_s=3600) as shown:
        shown.started(study="s", budget=1, done=0)
        shown.trial_started(0, {"lr": 0.01}, "sampler")
        for k in range(50):  # a program printing a step line many times a second
            shown.progress(0, step(k, elapsed=k / 10, value=k / 100))
        shown.trial_finished(record(0, 0.49), record(0, 0.49))
    lines = out.getvalue().splitlines()
    assert lines[1:3] == ['trial #0: {"lr": 0.01}', "  trial #0 step 0: val_r2 0, 0s elapsed"]
    assert len([line for line in lines if "step" in line]) == 1, "at most one line per interval"

    con, out = console(terminal=True)
    with RichReporter(con) as shown:
        shown.started(study="s", budget=1, done=0)
        shown.trial_started(0, {"lr": 0.01}, "sampler")
        shown.progress(0, step(12, elapsed=3.0, value=0.8))
        shown._live.refresh()  # type: ignore[union-attr]
    assert re.search(r"trial #0 +step 12: val_r2 0.8, 3s elapsed", ANSI.sub("", out.getvalue()))


def test_the_sources_a_study_learns_from_are_named_at_its_start_and_in_its_summary() -> None:
    con, out = console(terminal=False)
    line = "S1 hpobench-car-bo-seed0: the same space, used as it is (30 trials)"
    with RichReporter(con) as shown:
        shown.started(study="s", budget=2, done=0, learned_from=[line])
        shown.finished(summary(learned_from=(line,)))
    text = out.getvalue()
    assert f"  learning from {line}" in text.splitlines()[1]
    assert "learned from" in text and text.count(line) == 2


def test_the_summary_in_a_pipe_is_whole_lines_without_padding() -> None:
    """Issue 25, item 17: in a pipe the summary was an 80-column table, padded with spaces and wrapping a long
    value (a mapping's ``lr <-`` / ``learning_rate``) over two lines."""
    out = io.StringIO()
    con = Console(file=out, force_terminal=False, width=80, highlight=False, color_system=None)
    long = "S1 hpobench-car-bo-seed0: mapped " + ", ".join(f"p{i} <- learning_rate_{i}" for i in range(8))
    RichReporter(con).finished(summary(learned_from=(long, "S2 other: the same space")))
    lines = out.getvalue().splitlines()
    assert all(line == line.rstrip() for line in lines), lines
    assert f"learned from        {long}" in lines
    assert "                    S2 other: the same space" in lines
    assert any(line.startswith("best value          0.25 (trial #0)") for line in lines)


def test_the_summary_on_a_terminal_is_a_table() -> None:
    con, out = console(terminal=True)
    RichReporter(con).finished(summary())
    assert re.search(r"^ best value +0\.25 \(trial #0\)", ANSI.sub("", out.getvalue()), re.M)


def test_mapping_before_the_study_is_a_line_in_a_pipe() -> None:
    """Issue 25, item 8: the 20-35 s of mapping before "starting study" showed nothing."""
    con, out = console(terminal=False)
    with RichReporter(con) as shown:
        shown.preparing("mapping S1 of 2 (hpobench-car-bo-seed0)")
        shown.preparing("mapping S2 of 2 (hpobench-kc1-bo-seed0)")
        shown.started(study="s", budget=2, done=0)
    assert out.getvalue().splitlines() == [
        "mapping S1 of 2 (hpobench-car-bo-seed0) ...",
        "mapping S2 of 2 (hpobench-kc1-bo-seed0) ...",
        "starting study s: 0/2 trials done",
    ]


def test_mapping_before_the_study_is_redrawn_with_its_time_on_a_terminal() -> None:
    con, out = console(terminal=True)
    with RichReporter(con) as shown:
        shown.preparing("mapping S1 of 2 (hpobench-car-bo-seed0)")
        assert shown._live is not None
        shown._live.refresh()
        shown.started(study="s", budget=2, done=0)
        shown._live.refresh()
        shown.finished(summary())
    text = ANSI.sub("", out.getvalue())
    assert re.search(r"mapping S1 of 2 \(hpobench-car-bo-seed0\), \d+s", text)
    assert "starting study s: 0/2 trials done" in text and re.search(r"study: trial 0/2, \d+s elapsed", text)
    assert shown._live is None


def test_quiet_shows_no_mapping() -> None:
    con, out = console(terminal=False)
    with RichReporter(con, quiet=True) as shown:
        shown.preparing("mapping S1 of 1 (x)")
    assert out.getvalue() == ""
