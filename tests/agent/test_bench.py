"""Tests for agent/bench.py: task lists, a tiny bench end to end, resume, and LLM studies on a scripted model."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import optuna
import pytest

from agent.bench import BenchConfig, run_bench, run_seed, study_name
from agent.cli import main
from agent.providers.base import ChatMessage
from agent.providers.scripted import ScriptedProvider
from agent.report import write_bench_report

TASKS = ("toy-branin", "hpobench-kc1")
HEADERS = (
    "## Win rate against random search",
    "## Relative change in error against random search",
    "## Mean rank",
    "## Normalized regret",
    "## Per task",
    "## LLM cost and repeated proposals",
    "## Wall time",
    "## Best-so-far curves",
    "## Proposals on the toy functions (seed 0)",
)


def _trial_counts(out: Path, db: str = "bench.db") -> dict[str, int]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / db}")
    return {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}


def _runs(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "bench_runs.jsonl").read_text().splitlines()]


def test_tiny_bench_end_to_end_then_resume_adds_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    argv = [
        "bench",
        "--tasks",
        ",".join(TASKS),
        "--strategies",
        "random,tpe",
        "--budget",
        "2,3",
        "--seeds",
        "2",
        "--out",
        str(out),
        "--random-samples",
        "200",
        "--jobs",
        "2",
        "--quiet",
    ]
    assert main(argv) == 0
    names = {study_name(t, s, seed) for t in TASKS for s in ("random", "tpe") for seed in (0, 1)}
    counts = _trial_counts(out)
    assert counts == dict.fromkeys(names, 3)
    assert (out / "studies" / "hpobench-kc1" / "tpe" / "seed1" / "trials" / "trial_0002.json").is_file()
    report = (out / "report.md").read_text()
    for header in HEADERS:
        assert header in report
    assert "| 3 | tpe |" in report and "sign test" in report
    for plot in ("win_rate.png", "curves_toy-branin.png", "curves_hpobench-kc1.png", "trajectory_toy-branin.png"):
        assert (out / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert main(argv) == 0, "the same bench again runs nothing"
    assert _trial_counts(out) == counts
    assert [r["studies_run"] for r in _runs(out)] == [8, 0]


def test_a_larger_budget_extends_the_studies(tmp_path: Path) -> None:
    out = tmp_path / "b"
    base = ["bench", "--tasks", "toy-branin", "--strategies", "random", "--seeds", "1", "--out", str(out)]
    assert main([*base, "--budget", "2", "--random-samples", "50", "--quiet"]) == 0
    assert main([*base, "--budget", "2,4", "--random-samples", "50", "--quiet"]) == 0
    assert _trial_counts(out) == {"toy-branin/random/seed0": 4}
    # The bench's storage holds its data on its own once the bench is over: bench.db copied alone.
    shutil.copy(out / "bench.db", tmp_path / "copy.db")
    assert _trial_counts(tmp_path, "copy.db") == {"toy-branin/random/seed0": 4}


def test_a_time_budget_ends_each_study_once_its_recorded_seconds_are_spent(tmp_path: Path) -> None:
    out = tmp_path / "b"
    argv = ["bench", "--tasks", "hpobench-kc1", "--strategies", "random", "--seeds", "2", "--out", str(out)]
    assert main([*argv, "--budget", "40", "--time-budget", "1m", "--random-samples", "50", "--quiet"]) == 0
    counts = _trial_counts(out)
    assert len(counts) == 2 and all(1 <= n < 40 for n in counts.values()), counts
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'bench.db'}")
    for name in counts:
        study = optuna.load_study(study_name=name, storage=storage)
        costs = [t.user_attrs["result"]["cost_s"] for t in study.trials]
        assert sum(costs[:-1]) < 60.0 <= study.user_attrs["time_used"], "the last trial started with time left"
    assert "## Per task" in (out / "report.md").read_text()


def _same_point(messages: Sequence[ChatMessage]) -> str:
    return ScriptedProvider.call("evaluate_toy", x1=3.0, x2=2.0)


def _any_point(rng: random.Random) -> str:
    return ScriptedProvider.call("evaluate_toy", x1=rng.uniform(-5, 10), x2=rng.uniform(0, 15))


@pytest.mark.anyio
async def test_llm_studies_share_one_injected_provider(tmp_path: Path) -> None:
    rng = random.Random(0)
    # Study 0: a reask for bad JSON, one for proposing trial 0's point again (the loop refuses repeats).
    answers = ["not json", _same_point, _same_point, *[_any_point(rng) for _ in range(5)]]
    provider = ScriptedProvider(answers)
    config = BenchConfig(
        tasks=("toy-branin",),
        strategies=("llm", "random"),
        budgets=(3,),
        seeds=2,
        out=tmp_path / "llm",
        jobs=1,
        random_samples=100,
        quiet=True,
    )
    result = await run_bench(config, provider=provider)
    assert len(provider.calls) == 8  # 2 studies x 3 trials, and two reasks
    assert not provider.closed  # the caller owns it
    first = result.studies[("toy-branin", "llm", 0)]
    assert first.cost.llm_calls == 5 and first.cost.reasks == 2 and first.cost.repeated == 0
    assert result.studies[("toy-branin", "llm", 1)].cost.repeated == 0
    report = write_bench_report(result).read_text()
    assert "| llm | 2 | 4.0 |" in report  # studies, mean LLM calls per study
    assert "| 3 | llm |" in report
    # Resuming opens no provider: finished studies are skipped.
    again = await run_bench(config, provider=ScriptedProvider([]))
    assert again.studies.keys() == result.studies.keys()


def test_studies_of_one_task_and_seed_share_their_seed_but_tasks_do_not() -> None:
    assert run_seed("hpobench-kc1", 0) != run_seed("hpobench-car", 0)
    assert run_seed("hpobench-kc1", 1) == run_seed("hpobench-kc1", 0) + 1


@pytest.mark.anyio
async def test_llm_bo_and_bo_studies_report_their_suggestion_latency(tmp_path: Path) -> None:
    provider = ScriptedProvider([_any_point(random.Random(1)), _any_point(random.Random(2))])
    config = BenchConfig(
        tasks=("toy-branin",),
        strategies=("llm-bo", "bo", "random"),
        budgets=(2, 5),
        seeds=2,
        out=tmp_path / "lb",
        random_samples=100,
        quiet=True,
    )
    result = await run_bench(config, provider=provider)
    assert len(provider.calls) == 2  # one model call per llm-bo study, whatever the budget
    study = result.studies[("toy-branin", "llm-bo", 0)]
    assert study.cost.llm_calls == 1 and len(study.propose_seconds) == 5
    assert all(s is not None and s >= 0 for s in study.propose_seconds)
    assert all(s is None for s in result.studies[("toy-branin", "random", 0)].propose_seconds)
    report = write_bench_report(result).read_text()
    latency = report.split("Suggestion latency", 1)[1].split("\n## ", 1)[0]
    for row in ("| llm-bo | 2 | 4 |", "| llm-bo | 5 | 10 |", "| bo | 5 | 10 |"):
        assert row in latency
    assert "| random |" not in latency  # drawn inside Optuna, not timed


def _bench_argv(out: Path, seeds: int, *learn_from: Path) -> list[str]:
    argv = ["bench", "--tasks", "toy-branin", "--strategies", "random", "--budget", "4", "--seeds", str(seeds)]
    argv += ["--out", str(out), "--random-samples", "50"]
    return argv + [arg for source in learn_from for arg in ("--learn-from", str(source))]


def test_a_bench_that_learns_says_from_what_stores_it_and_refuses_others_on_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25, item 7: neither the console nor report.md named a bench's sources, and a second bench into the
    same --out with another --learn-from gave seed 1 a different source than seed 0."""
    sources = []
    for name in ("s1", "s2"):
        assert (
            main(
                [
                    "--task",
                    "toy-branin",
                    "--strategy",
                    "random",
                    "--budget",
                    "5",
                    "--save_dir",
                    str(tmp_path / name),
                    "--quiet",
                ]
            )
            == 0
        )
        sources.append(tmp_path / name)
    out = tmp_path / "bench"
    capsys.readouterr()
    assert main(_bench_argv(out, 1, sources[0])) == 0
    said = capsys.readouterr().out
    line = "S1 toy-branin-random-seed0: the same space, used as it is (5 trials)"
    assert f"toy-branin random learned from {line} [1/1 seeds]" in said
    report = (out / "report.md").read_text()
    assert f"## Learned from\n\nEvery study was given `sqlite:///{(sources[0] / 'study.db').resolve()}`." in report
    assert f"| toy-branin | random | {line} | 1/1 |" in report
    storage = f"sqlite:///{out / 'bench.db'}"
    first = optuna.load_study(study_name=study_name("toy-branin", "random", 0), storage=storage)
    assert first.user_attrs["learn_from"] == [f"sqlite:///{(sources[0] / 'study.db').resolve()}"]

    assert main(_bench_argv(out, 2, sources[1])) == 2  # another source for seed 1: refused, nothing run
    assert "learns from" in capsys.readouterr().err and _trial_counts(out) == {study_name("toy-branin", "random", 0): 4}

    assert main(_bench_argv(out, 2)) == 0  # without --learn-from, seed 1 learns from what seed 0 did
    second = optuna.load_study(study_name=study_name("toy-branin", "random", 1), storage=storage)
    assert second.user_attrs["learn_from"] == first.user_attrs["learn_from"]
    assert "[2/2 seeds]" in capsys.readouterr().out


def test_a_bench_that_learned_from_nothing_refuses_sources_on_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "s1"
    assert (
        main(["--task", "toy-branin", "--strategy", "random", "--budget", "3", "--save_dir", str(source), "--quiet"])
        == 0
    )
    out = tmp_path / "bench"
    assert main(_bench_argv(out, 1)) == 0
    assert main(_bench_argv(out, 2, source)) == 2
    assert "learn from no earlier study; to learn from others use a new --out" in capsys.readouterr().err
    assert _trial_counts(out) == {study_name("toy-branin", "random", 0): 4}


def test_a_studys_cost_counts_the_calls_that_mapped_its_sources() -> None:
    """Issue 25, item 7: the LLM cost table showed 0 calls for llm-bo while 4 mapping calls ran."""
    from agent.bench import _study_result
    from agent.sources.experience import load_decisions
    from agent.tasks import build_task

    fixture = Path(__file__).parent / "sources" / "data" / "learned_study_fa91d4f.json"
    decisions = load_decisions(json.loads(fixture.read_text())["user_attrs"]["experience"])
    result = _study_result(("hpobench-kc1", "llm-bo", 0), [], build_task("hpobench-kc1"), decisions)
    assert result.cost.llm_calls == 1 and result.cost.prompt_tokens > 0
    assert result.learned_from == tuple(d.line() for d in decisions) and len(result.learned_from) == 1
    assert _study_result(("hpobench-kc1", "llm-bo", 0), [], build_task("hpobench-kc1")).cost.llm_calls == 0
