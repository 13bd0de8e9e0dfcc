"""The report of a bench (``python -m agent bench``): win rates, ranks, regret, cost and plots, with the
definitions (:mod:`agent.metrics`) stated next to the tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from agent import metrics
from agent.bench import BenchResult, Kind

from ._markdown import fmt, pct, table
from ._plots import plot_bench_curves, plot_shares, plot_trajectories, plot_win_rates, toy_function
from ._sources import source_rows

__all__ = ["EXPECTED", "write_bench_report"]

EXPECTED = "random (expected)"


def write_bench_report(result: BenchResult) -> Path:
    """Write ``OUT/report.md`` and ``OUT/plots/*.png``; return the report's path."""
    cfg = result.config
    plots = cfg.out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = [
        "# Benchmark report",
        "",
        f"Tasks ({len(cfg.tasks)}): {', '.join(cfg.tasks)}. Strategies: {', '.join(cfg.strategies)}. "
        f"Budgets: {', '.join(map(str, cfg.budgets))}. Seeds: {cfg.seeds} (0..{cfg.seeds - 1}). "
        f"Storage: `{cfg.storage_url}`.",
        "",
        "Study `TASK/STRATEGY/seedS` seeds its sampler, the benchmark's noise and the model with CRC32(TASK) + S: "
        "every strategy of one task and seed shares it (paired comparisons; TPE's random startup trials are random "
        "search's first trials, so early budgets often tie), while tasks with the same search space do not share "
        "their random draws.",
        "",
        f"Every study ran to the largest budget ({cfg.horizon}); the numbers at a smaller budget read the prefix "
        "of its best-so-far curve (TPE's random startup phase is sized for the largest budget).",
        "",
        "**best observed**: the lowest error a study saw (the tabular tables hold several training seeds and each "
        "query draws one, so this rewards lucky draws). **true error**: the error of the configuration the study "
        "picked (its best observed trial), averaged over the table's seeds; for toy functions it is the value "
        "itself. Medians are over seeds.",
        "",
        f"**{EXPECTED}**: {cfg.random_samples} single random configurations per task, each evaluated once (not "
        f"stored), resampled {cfg.bootstrap} times into budget-long sequences with replacement; the median over "
        "resamples at each budget is the reference in the win-rate tables (a median, as the strategies' numbers "
        "are medians over seeds). The actual random studies are compared too, paired by seed.",
        "",
    ]
    lines += _win_rate_section(result, rng, plots)
    lines += _relative_section(result)
    lines += _rank_section(result)
    lines += _regret_section(result)
    lines += _per_task_section(result)
    lines += _cost_section(result)
    lines += _learned_section(result)
    lines += _sources_section(result, plots)
    lines += _wall_time_section(result)
    lines += _plot_section(result, plots)
    path = cfg.out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _medians(result: BenchResult, strategy: str, budget: int, kind: Kind) -> dict[str, float]:
    return {t: result.median(t, strategy, budget, kind) for t in result.config.tasks}


def _expected(result: BenchResult, budget: int, kind: Kind) -> dict[str, float]:
    return {t: result.references[t].at(budget, kind) for t in result.config.tasks}


def _win_rate_section(result: BenchResult, rng: np.random.Generator, plots: Path) -> list[str]:
    cfg = result.config
    has_random = "random" in cfg.strategies
    lines = [
        "## Win rate against random search",
        "",
        f"Share of tasks where the strategy's median error is strictly lower than {EXPECTED}'s, on the true error "
        f"(90% interval: bootstrap over seeds within each task, {cfg.bootstrap} resamples) and on the best observed "
        "error. "
        "Then against the actual random studies: the share of tasks with a lower median true error, and a sign "
        "test over tasks x seeds (true error, paired by seed, ties dropped; exact two-sided binomial p-value).",
        "",
    ]
    rows, bars = [], {}
    for budget in cfg.budgets:
        exp_true, exp_obs = _expected(result, budget, "true"), _expected(result, budget, "observed")
        for s in cfg.strategies:
            med_true = _medians(result, s, budget, "true")
            wins, n = metrics.win_count(med_true, exp_true)
            finals = {t: result.finals(t, s, budget, "true") for t in cfg.tasks}
            lo, hi = metrics.bootstrap_win_rate(finals, dict(exp_true), reps=cfg.bootstrap, rng=rng)
            bars[(budget, s)] = (wins / n if n else math.nan, lo, hi, f"{wins}/{n}")
            obs_wins, obs_n = metrics.win_count(_medians(result, s, budget, "observed"), exp_obs)
            vs_studies = sign = "—"
            if has_random and s != "random":
                w, k = metrics.win_count(med_true, _medians(result, "random", budget, "true"))
                vs_studies = f"{w}/{k} ({pct(w / k if k else math.nan)})"
                better, worse, ties = result.paired(s, "random", budget, cfg.tasks)
                sign = f"{better}/{worse}/{ties}, p = {fmt(metrics.sign_test(better, worse), 3)}"
            rows.append(
                [
                    str(budget),
                    s,
                    f"{wins}/{n} ({pct(wins / n if n else math.nan)}) [{pct(lo)}, {pct(hi)}]",
                    f"{obs_wins}/{obs_n} ({pct(obs_wins / obs_n if obs_n else math.nan)})",
                    vs_studies,
                    sign,
                ]
            )
    headers = [
        "budget",
        "strategy",
        f"beats {EXPECTED}, true error [90%]",
        f"beats {EXPECTED}, best observed",
        "beats random studies (true)",
        "vs random, by seed: better/worse/tied, sign test",
    ]
    plot_win_rates(bars, cfg.budgets, cfg.strategies, plots / "win_rate.png")
    return [*lines, *table(headers, rows), "![win rates](plots/win_rate.png)", ""]


def _relative_section(result: BenchResult) -> list[str]:
    cfg = result.config
    lines = [
        "## Relative change in error against random search",
        "",
        f"Per task `(e - r) / r` with `e` the strategy's median and `r` {EXPECTED}'s; negative is better. "
        "Where `r` is 0 (to 1e-12) the change is 0 if `e` is 0 too, else undefined: such tasks are left out and "
        "counted in 'left out'.",
        "",
    ]
    rows = []
    for budget in cfg.budgets:
        for s in cfg.strategies:
            cells = [str(budget), s]
            left_out = []
            for kind in ("true", "observed"):
                med, ref = _medians(result, s, budget, kind), _expected(result, budget, kind)
                summary = metrics.summarize([metrics.relative_change(med[t], ref[t]) for t in cfg.tasks])
                cells += [_signed_pct(summary.median), _signed_pct(summary.mean)]
                left_out.append(str(summary.excluded))
            rows.append([*cells, " / ".join(left_out)])
    headers = [
        "budget",
        "strategy",
        "true: median",
        "true: mean",
        "observed: median",
        "observed: mean",
        "left out (true / observed)",
    ]
    return [*lines, *table(headers, rows)]


def _signed_pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:+.1f}%"


def _rank_section(result: BenchResult) -> list[str]:
    cfg = result.config
    lines = [
        "## Mean rank",
        "",
        "Per task, the strategies ranked by median true error (1 = best, ties share the average rank), averaged "
        "over tasks.",
        "",
    ]
    rows = []
    for budget in cfg.budgets:
        medians = {t: {s: result.median(t, s, budget, "true") for s in cfg.strategies} for t in cfg.tasks}
        ranks = metrics.mean_ranks(medians, cfg.strategies)
        rows.append([str(budget), *(f"{ranks[s]:.2f}" for s in cfg.strategies)])
    return [*lines, *table(["budget", *cfg.strategies], rows)]


def _regret_section(result: BenchResult) -> list[str]:
    cfg = result.config
    known = [t for t in cfg.tasks if result.optima.get(t) is not None]
    lines = [
        "## Normalized regret",
        "",
        "`(e - optimum) / (r1 - optimum)` on the median true error `e`, where `optimum` is the task's known best "
        "(toy: the global minimum; tabular: the lowest mean error in the table) and `r1` the median true error "
        "of ONE random configuration: 0 is the optimum, 1 a typical random guess. Over the "
        f"{len(known)} task(s) with a known optimum.",
        "",
    ]
    rows = []
    for budget in cfg.budgets:
        for s in (*cfg.strategies, EXPECTED):
            values = []
            for t in known:
                e = result.references[t].at(budget, "true") if s == EXPECTED else result.median(t, s, budget, "true")
                values.append(metrics.normalized_regret(e, result.optima[t], result.references[t].single))
            summary = metrics.summarize(values)
            rows.append([str(budget), s, fmt(summary.median, 3), fmt(summary.mean, 3), str(summary.n)])
    return [*lines, *table(["budget", "strategy", "median", "mean", "tasks"], rows)]


def _per_task_section(result: BenchResult) -> list[str]:
    cfg = result.config
    lines = ["## Per task", "", "Median over seeds: best observed / true error. Lower is better.", ""]
    rows = []
    for t in cfg.tasks:
        for budget in cfg.budgets:
            cells = [t, str(budget)]
            for s in cfg.strategies:
                obs, true = result.median(t, s, budget, "observed"), result.median(t, s, budget, "true")
                cells.append(f"{fmt(obs)} / {fmt(true)}")
            ref = result.references[t]
            cells.append(f"{fmt(ref.at(budget, 'observed'))} / {fmt(ref.at(budget, 'true'))}")
            optimum = result.optima.get(t)
            cells.append(fmt(optimum) if optimum is not None else "n/a")
            rows.append(cells)
    return [*lines, *table(["task", "budget", *cfg.strategies, EXPECTED, "optimum"], rows)]


def _sources_section(result: BenchResult, plots: Path) -> list[str]:
    """Per strategy that calls a model: who proposed its trials and what they earned; the hybrid's share."""
    talking = [
        s
        for s in result.config.strategies
        if any(src == "llm" for (_, st, _), r in result.studies.items() if st == s for src in r.sources)
    ]
    if not talking:
        return []
    lines = [
        "## Sources of proposals",
        "",
        "Who chose each trial's configuration (`llm`: the model; `surrogate`: the optimizer; `random`: the "
        "optimizer's random draws before its model has enough trials; `fallback`: the optimizer "
        "or the sampler in the model's stead), over every study: trials, the mean reward (the share of the "
        "study's earlier trials a trial beats, the credit the hybrid strategy's bandit gives each source) and the "
        "new bests it found.",
        "",
    ]
    rows = []
    for s in talking:
        studies = [(r.values, r.sources) for (_, st, _), r in result.studies.items() if st == s]
        rows += [[s, *row] for row in source_rows(studies)]
    lines += table(["strategy", "source", "trials", "mean reward", "new bests"], rows)
    shares = {
        s: [r.shares for (_, st, _), r in result.studies.items() if st == s and any(x is not None for x in r.shares)]
        for s in talking
    }
    shares = {s: v for s, v in shares.items() if v}
    if shares:
        plot_shares(shares, plots / "model_share.png")
        lines += [
            "The model's share of each round as the hybrid strategy decided it (median over studies, 25-75% band): "
            "a third at first, then following what the model's trials earned.",
            "",
            "![model share](plots/model_share.png)",
            "",
        ]
    return lines


def _learned_section(result: BenchResult) -> list[str]:
    """What each strategy's studies learned from (``--learn-from``): one row per task, strategy and source."""
    learned = result.learned_from()
    if not result.config.learn_from and not learned:
        return []
    given = ", ".join(f"`{s}`" for s in result.config.learn_from)
    lines = [
        "## Learned from",
        "",
        f"Every study was given {given}. Each row: how a source entered a task's studies of one strategy (as "
        "it is, mapped by the model, or left out and why) and in how many of its seeds; the model's calls for "
        "mapping count in the LLM cost above.",
        "",
    ]
    rows = [
        [task, strategy, line, f"{n}/{result.config.seeds}"]
        for (task, strategy), found in sorted(learned.items())
        for line, n in found.items()
    ]
    return [*lines, *(table(["task", "strategy", "source", "seeds"], rows) if rows else ["No source was used.", ""])]


def _cost_section(result: BenchResult) -> list[str]:
    cfg = result.config
    lines = [
        "## LLM cost and repeated proposals",
        "",
        "Means per study (totals for reasks and fallbacks). A repeated proposal is a configuration equal to an "
        "earlier trial's in the same study.",
        "",
    ]
    rows = []
    for s in cfg.strategies:
        costs = [r.cost for (_, strategy, _), r in result.studies.items() if strategy == s]
        n = max(len(costs), 1)
        rows.append(
            [
                s,
                str(len(costs)),
                f"{sum(c.llm_calls for c in costs) / n:.1f}",
                f"{sum(c.prompt_tokens + c.completion_tokens for c in costs) / n:.0f}",
                f"{sum(c.llm_seconds for c in costs) / n:.1f}",
                str(sum(c.reasks for c in costs)),
                str(sum(c.fallbacks for c in costs)),
                f"{sum(c.repeated for c in costs) / n:.1f}",
            ]
        )
    headers = ["strategy", "studies", "LLM calls", "tokens", "LLM seconds", "reasks", "fallbacks", "repeated"]
    return [*lines, *table(headers, rows), *_latency_section(result)]


def _latency_section(result: BenchResult) -> list[str]:
    """Median and 95th percentile of the time to propose one trial, over the first ``budget`` trials."""
    cfg = result.config
    rows = []
    for s in cfg.strategies:
        for budget in cfg.budgets:
            seconds = result.propose_seconds(s, budget)
            if seconds:
                median, p95 = np.percentile(seconds, [50, 95])
                rows.append([s, str(budget), str(len(seconds)), f"{median:.3f}", f"{p95:.3f}", f"{max(seconds):.3f}"])
    if not rows:
        return []
    lines = [
        "",
        "Suggestion latency: seconds from asking the strategy to having its configuration, per trial, over the "
        "first `budget` trials of every study (model calls and reasks included; random and TPE draw inside "
        "Optuna and are not timed).",
        "",
    ]
    return [*lines, *table(["strategy", "budget", "suggestions", "median s", "p95 s", "max s"], rows)]


def _wall_time_section(result: BenchResult) -> list[str]:
    rows = [
        [r.get("finished_at", "?"), f"{r.get('seconds', 0):.1f}", str(r.get("studies_run")), str(r.get("jobs"))]
        for r in result.runs
    ]
    total = sum(float(r.get("seconds", 0)) for r in result.runs)
    lines = ["## Wall time", "", f"{len(result.runs)} run(s) of this bench, {total:.1f} s in all.", ""]
    return [*lines, *table(["finished at", "seconds", "studies run", "jobs"], rows)]


def _plot_section(result: BenchResult, plots: Path) -> list[str]:
    cfg = result.config
    lines = [
        "## Best-so-far curves",
        "",
        "Median over seeds with the 25-75% band; random (expected): bootstrap median with its 5-95% band.",
        "",
    ]
    for t in cfg.tasks:
        curves = {s: (result.curves(t, s, "observed"), result.curves(t, s, "true")) for s in cfg.strategies}
        path = plots / f"curves_{t}.png"
        plot_bench_curves(t, curves, result.references[t].curves, cfg.budgets, path, noisy=result.noisy[t])
        lines += [f"![{t}](plots/curves_{t}.png)", ""]
    toys = [t for t in cfg.tasks if toy_function(t) is not None]
    if toys:
        lines += ["## Proposals on the toy functions (seed 0)", ""]
        for t in toys:
            panels = {s: list(r.configs) for (task, s, seed), r in result.studies.items() if task == t and seed == 0}
            plot_trajectories(t, panels, plots / f"trajectory_{t}.png")
            lines += [f"![{t} proposals](plots/trajectory_{t}.png)", ""]
    return lines
