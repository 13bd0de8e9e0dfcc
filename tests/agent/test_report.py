"""Tests for agent/report/study.py and _plots.py: the study report of a random and of an LLM study, errors, PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from agent import metrics
from agent.cli import main
from agent.conversation import Agent, AgentSettings
from agent.deadline import Deadline
from agent.optimize import optimize
from agent.providers.scripted import ScriptedProvider
from agent.records import ProposalInfo, TrialRecord
from agent.report import write_study_report
from agent.report._plots import (
    plot_bench_curves,
    plot_compute_curve,
    plot_shares,
    plot_study_curve,
    plot_trajectories,
    plot_win_rates,
)
from agent.strategies.llm import LLMStrategy
from agent.study import StudyStore, opened_storage, read_records
from agent.tasks import build_task
from evaluators.base import EvalResult
from tools.read_history import ReadHistory

PNG = b"\x89PNG\r\n\x1a\n"
call = ScriptedProvider.call


def _is_png(path: Path, min_kb: int = 10) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > min_kb * 1024


@pytest.fixture(autouse=True)
def _shipped_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_PROMPTS_DIR", raising=False)


def test_report_of_a_random_study_made_by_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert (
        main(["--task", "toy-branin", "--strategy", "random", "--budget", "5", "--save_dir", str(run), "--quiet"]) == 0
    )
    assert main(["report", "--save_dir", str(run)]) == 0
    assert str(run / "report.md") in capsys.readouterr().out
    text = (run / "report.md").read_text()
    assert text.startswith("# Study `toy-branin-random-seed0`")
    assert "## Trials" in text and "## Conversation" not in text
    assert text.count("| sampler |") == 5
    assert "- **value**: the trial's `value`" in text  # the study's metric (toy functions: their value)
    assert "**value**: the trial's `value`, or how it ended without one" in text  # the columns, explained
    assert "**source**: who chose the configuration" in text and "**note**: why it failed" in text
    assert _is_png(run / "plots" / "best.png") and _is_png(run / "plots" / "trajectory.png")


def test_report_shows_compute_the_time_budget_what_weighed_cost_and_the_deadlines_stops(tmp_path: Path) -> None:
    task = build_task("toy-branin")
    run = tmp_path / "run"
    store = StudyStore.open(save_dir=run, study_name="s", space=task.space, meta={"task": task.name})
    results = [
        (EvalResult(value=30.0, cost_s=100.0), None),
        (EvalResult(value=5.0, cost_s=40.0), None),
        (EvalResult(value=None, state="pruned"), Deadline(at=0.0)),
    ]
    weights = ({}, {"cost_weight": 0.6}, {"cost_weight": 0.25})  # expected improvement per second (cost.py)
    for (result, deadline), x1, decision in zip(results, (0.0, 3.0, 9.0), weights, strict=True):
        started = store.claim({"x1": x1, "x2": 2.0}, ProposalInfo(decision=decision), budget=3)
        assert started is not None
        if deadline is not None:  # the trial's reporter asks the deadline after its first step
            assert store.reporter(started[0], optuna.pruners.NopPruner(), max_step=3, also_stop=(deadline,))(1, 7.0)
        store.finish(started[0], result, 0.5)
    for key, value in {"time_budget": 150.0, "time_used": 151.0, "gpus_per_trial": 2}.items():
        store.set_meta(key, value)
    store.close()
    text = write_study_report(run).read_text()
    assert "3 finished (0 failed, 1 stopped by the deadline)" in text
    assert "- **compute**: 281 in all, 93.67 per trial (GPU seconds; 2 GPUs per trial)" in text
    assert "- **time budget**: 151 s used of 150 s" in text
    assert "- **cost weighed**: 2 proposals chose by expected improvement per second" in text
    assert "falling from 0.60 to 0.25 as the time ran out" in text
    assert "| pruned (deadline) |" in text and "| 100 |" in text, "recorded seconds in the trials table"
    assert _is_png(run / "plots" / "compute.png")


def test_the_compute_plot_draws_the_best_against_cumulative_seconds(tmp_path: Path) -> None:
    fig = plot_compute_curve("s", [10.0, None, 30.0], [3.0, None, 1.0], tmp_path / "c.png", unit="GPU seconds")
    (line,) = [line for line in fig.axes[0].get_lines() if line.get_label() == "best so far"]
    assert list(line.get_xdata()) == [10.0, 10.0, 40.0] and list(line.get_ydata()) == [3.0, 3.0, 1.0]
    assert "GPU seconds" in fig.axes[0].get_xlabel()


@pytest.mark.anyio
async def test_report_of_an_llm_study_shows_the_conversation(tmp_path: Path) -> None:
    task = build_task("toy-branin")
    provider = ScriptedProvider(
        [
            "I think x1=3 is good",  # prose: reasked
            call("evaluate_toy", x1=3.0, x2=2.0),
            call("read_history", which="best", n=1),
            call("evaluate_toy", x1=-3.0, x2=12.0),
            call("evaluate_toy", x1=9.4, x2=2.5),
        ]
    )
    store = StudyStore.open(
        save_dir=tmp_path / "llm",
        study_name="llm-study",
        space=task.space,
        meta={"task": task.name, "strategy": "llm", "seed": 0, "budget": 3},
    )
    try:
        agent = Agent(
            provider=provider,
            eval_tool=task.tool,
            task_description=task.description,
            task_template=task.template,
            budget=3,
            settings=AgentSettings(max_retries=2),
            extra_tools=[ReadHistory(store.records)],
            events=store.events,
        )
        strategy = LLMStrategy(agent)
        await optimize(tool=task.tool, strategy=strategy, store=store, budget=3)
    finally:
        store.close()

    text = write_study_report(tmp_path / "llm").read_text()
    assert "## Conversation" in text and "### System" in text and "### Task" in text
    assert "evaluate_toy" in text and "read_history" in text
    assert "I think x1=3 is good" in text and "**reask**:" in text
    assert "### Trial 0 (llm, 1 reask)" in text and "**read_history** returned:" in text
    assert "- **LLM**: 5 calls" in text and "1 reask" in text
    assert "**mean reward**: the share of the study's earlier trials that each of its trials beats" in text


def test_report_errors_name_what_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--save_dir", str(tmp_path / "nothing")]) == 2
    assert "no study storage" in capsys.readouterr().err
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    for strategy in ("random", "tpe"):
        argv = ["--task", "toy-branin", "--strategy", strategy, "--budget", "2", "--quiet"]
        assert main([*argv, "--save_dir", str(tmp_path / strategy), "--storage", url]) == 0
    assert main(["report", "--save_dir", str(tmp_path / "random"), "--storage", url]) == 2
    err = capsys.readouterr().err
    assert "holds 2 studies" in err and "toy-branin-random-seed0" in err and "toy-branin-tpe-seed0" in err
    argv = ["report", "--save_dir", str(tmp_path / "tpe"), "--storage", url, "--study-name", "toy-branin-tpe-seed0"]
    assert main(argv) == 0
    assert "toy-branin-tpe-seed0" in (tmp_path / "tpe" / "report.md").read_text()


def test_bench_plots_are_written_and_readable(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    observed = rng.uniform(0.1, 0.5, size=300)
    ref = metrics.bootstrap_random_search(observed, observed + 0.01, horizon=12, reps=300, rng=rng)
    curve = np.array([metrics.best_so_far(rng.uniform(0.1, 0.5, size=12)) for _ in range(4)])
    curves = {"random": (curve, curve + 0.01), "tpe": (curve * 0.9, curve * 0.9 + 0.01)}
    plot_bench_curves("hpobench-kc1", curves, ref, (5, 12), tmp_path / "curves.png", noisy=True)
    bars = {(b, s): (0.5, 0.25, 0.75, "4/8") for b in (5, 12) for s in ("random", "tpe")}
    plot_win_rates(bars, (5, 12), ("random", "tpe"), tmp_path / "wins.png")
    configs = [{"x1": float(x), "x2": float(y)} for x, y in rng.uniform(0, 5, size=(6, 2))]
    plot_trajectories("toy-himmelblau", {"random": configs, "llm": configs[::-1]}, tmp_path / "traj.png")
    plot_study_curve(
        "s", [0, 1, 2, 3], [None, 100.0, 1.0, 0.01], None, tmp_path / "study.png"
    )  # spans decades: log scale
    for name in ("curves.png", "wins.png", "traj.png", "study.png"):
        assert _is_png(tmp_path / name), name


def test_the_study_plot_names_its_metric_and_older_studies_keep_value(tmp_path: Path) -> None:
    fig = plot_study_curve("s", [0, 1], [0.5, 0.7], None, tmp_path / "a.png", maximize=True, metric="val_r2")
    assert fig.axes[0].get_ylabel() == "val_r2 (higher is better)"
    assert plot_study_curve("s", [0], [0.5], None, tmp_path / "b.png").axes[0].get_ylabel() == "value (lower is better)"


async def _llm_run(save_dir: Path, answers: list[str], budget: int) -> None:
    task = build_task("toy-branin")
    store = StudyStore.open(
        save_dir=save_dir, study_name="s", space=task.space, meta={"task": task.name, "strategy": "llm", "seed": 0}
    )
    try:
        agent = Agent(
            provider=ScriptedProvider(answers),
            eval_tool=task.tool,
            task_description=task.description,
            task_template=task.template,
            budget=budget,
            events=store.events,
        )
        await optimize(tool=task.tool, strategy=LLMStrategy(agent), store=store, budget=budget)
    finally:
        store.close()


@pytest.mark.anyio
async def test_the_report_shows_the_prompts_as_each_run_sent_them(tmp_path: Path) -> None:
    """A study resumed with a larger budget sent another task prompt from then on; the report shows both."""
    save = tmp_path / "llm"
    await _llm_run(save, [call("evaluate_toy", x1=3.0, x2=2.0), call("evaluate_toy", x1=-3.0, x2=12.0)], budget=2)
    await _llm_run(save, [call("evaluate_toy", x1=9.4, x2=2.5)], budget=3)
    await _llm_run(save, [], budget=3)  # nothing to run: nothing sent, nothing recorded

    text = write_study_report(save).read_text()
    first, later = text.split("### Prompts sent from trial 2 on")
    assert "The budget is 2 evaluations in total." in first and "The budget is 3" not in first
    assert "#### Task" in later and "The budget is 3 evaluations in total." in later
    assert "#### System" not in later, "only what changed"
    assert text.count("### Prompts sent from trial") == 1


def test_a_share_decided_at_one_trial_is_a_visible_point(tmp_path: Path) -> None:
    """weights.png of a study with one trial after its openers: one decided value, drawn as a marker (a line
    through one point draws nothing)."""
    fig = plot_shares({"S1 kc1": [[None, None, None, 0.25]]}, tmp_path / "weights.png", ylabel="weight")
    (line,) = fig.axes[0].lines
    assert line.get_marker() == "o"
    assert [float(y) for y in line.get_ydata() if not np.isnan(y)] == [0.25]
    assert (tmp_path / "weights.png").stat().st_size > 0


def test_a_probe_of_the_setup_is_kept_out_of_the_reports_counts_and_best(tmp_path: Path) -> None:
    """A probe is outside the budget and the summary's counts; the report counted it as a finished trial."""
    from agent.records import ProposalInfo
    from evaluators.base import EvalResult

    task = build_task("toy-branin")
    store = StudyStore.open(save_dir=tmp_path, study_name="s", space=task.space, meta={"task": task.name})
    try:
        for config, source, value in (({"x1": 1.0, "x2": 1.0}, "sampler", 5.0), ({"x1": 2.0, "x2": 2.0}, "probe", 0.5)):
            claimed = store.claim(config, ProposalInfo(source=source), budget=None if source == "probe" else 5)  # type: ignore[arg-type]
            assert claimed is not None
            store.finish(claimed[0], EvalResult(value=value, metrics={"value": value}), 0.1)
    finally:
        store.close()
    text = write_study_report(tmp_path).read_text()
    assert "1 finished (0 failed), 0 running; 1 probe of the setup (kept, outside the budget, not counted)" in text
    assert "trial #0: 5" in text, "the probe's better value is not the study's best"


async def _scheduled_study(tmp_path: Path, strategy: str) -> tuple[int, str, list[TrialRecord]]:
    """A 12-trial study of a replayed learning-curve table, scheduled by default: how many trials were stopped,
    its report's text and its trials."""
    from agent.session import StudyConfig, run_study

    task = build_task("curves-segment", seed=0)
    config = StudyConfig(task=task, strategy=strategy, budget=12, seed=0, save_dir=tmp_path)
    summary = await run_study(config, say=lambda line: None)
    text = write_study_report(tmp_path).read_text()
    with opened_storage(f"sqlite:///{tmp_path / 'study.db'}") as storage:
        records = read_records(storage.get_all_trials(storage.get_study_id_from_name(config.name)))
    return summary.pruned, text, records


@pytest.mark.anyio
async def test_the_report_draws_the_curves_and_counts_what_stopping_saved(tmp_path: Path) -> None:
    pruned, text, records = await _scheduled_study(tmp_path, "random")
    assert pruned > 0
    ran = sum(max(r.curve) for r in records)
    assert all(r.curve for r in records)
    assert "## Curves and what stopping saved" in text
    assert f"12 trials reported steps; {pruned} stopped early. They ran {ran} steps of the {12 * 27}" in text
    assert "Gaussian process over (configuration, step)" not in text  # random search learns nothing
    assert _is_png(tmp_path / "plots" / "curves.png")


@pytest.mark.anyio
async def test_the_report_says_how_many_proposals_learnt_from_the_stopped_trials(tmp_path: Path) -> None:
    pruned, text, records = await _scheduled_study(tmp_path, "bo")
    assert pruned > 0
    learnt = sum(r.proposal.decision.get("fidelity") is True for r in records)
    assert learnt > 0 and all(r.source == "surrogate" for r in records if r.proposal.decision.get("fidelity"))
    assert f"{learnt} proposals came from the Gaussian process over (configuration, step)" in text
