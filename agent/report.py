"""Reports as markdown with PNG plots: of a whole bench (``bench``), or of one study (``report``).

The bench report states its definitions (see :mod:`agent.metrics`) next to its tables. The study report needs
only the storage: no strategy, no provider; its prompts are rendered again with the shipped templates.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from tools.read_history import ReadHistory, compact_config

from . import metrics
from ._plots import plot_bench_curves, plot_study_curve, plot_trajectories, plot_win_rates, toy_function
from .bench import BenchResult, Kind, trial_cost
from .errors import AgentError, UserError
from .loop import Agent
from .memory import AnswerPart, ReaskPart, ToolReturnPart, UserPart, load_parts
from .providers.base import ChatMessage, Completion, Provider
from .records import TrialRecord
from .space import SearchSpace
from .study import open_storage
from .tasks import Task, build_task

__all__ = ["write_bench_report", "write_study_report"]

EXPECTED = "random (expected)"


def _fmt(x: float, digits: int = 4) -> str:
    if math.isnan(x):
        return "n/a"
    return "inf" if math.isinf(x) else f"{x:.{digits}g}"


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.0f}%"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return [*out, ""]


# ---- the bench --------------------------------------------------------------------------------------------


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
                vs_studies = f"{w}/{k} ({_pct(w / k if k else math.nan)})"
                better, worse, ties = result.paired(s, "random", budget, cfg.tasks)
                sign = f"{better}/{worse}/{ties}, p = {_fmt(metrics.sign_test(better, worse), 3)}"
            rows.append(
                [
                    str(budget),
                    s,
                    f"{wins}/{n} ({_pct(wins / n if n else math.nan)}) [{_pct(lo)}, {_pct(hi)}]",
                    f"{obs_wins}/{obs_n} ({_pct(obs_wins / obs_n if obs_n else math.nan)})",
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
    return [*lines, *_table(headers, rows), "![win rates](plots/win_rate.png)", ""]


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
    return [*lines, *_table(headers, rows)]


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
        table = {t: {s: result.median(t, s, budget, "true") for s in cfg.strategies} for t in cfg.tasks}
        ranks = metrics.mean_ranks(table, cfg.strategies)
        rows.append([str(budget), *(f"{ranks[s]:.2f}" for s in cfg.strategies)])
    return [*lines, *_table(["budget", *cfg.strategies], rows)]


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
            rows.append([str(budget), s, _fmt(summary.median, 3), _fmt(summary.mean, 3), str(summary.n)])
    return [*lines, *_table(["budget", "strategy", "median", "mean", "tasks"], rows)]


def _per_task_section(result: BenchResult) -> list[str]:
    cfg = result.config
    lines = ["## Per task", "", "Median over seeds: best observed / true error. Lower is better.", ""]
    rows = []
    for t in cfg.tasks:
        for budget in cfg.budgets:
            cells = [t, str(budget)]
            for s in cfg.strategies:
                obs, true = result.median(t, s, budget, "observed"), result.median(t, s, budget, "true")
                cells.append(f"{_fmt(obs)} / {_fmt(true)}")
            ref = result.references[t]
            cells.append(f"{_fmt(ref.at(budget, 'observed'))} / {_fmt(ref.at(budget, 'true'))}")
            optimum = result.optima.get(t)
            cells.append(_fmt(optimum) if optimum is not None else "n/a")
            rows.append(cells)
    return [*lines, *_table(["task", "budget", *cfg.strategies, EXPECTED, "optimum"], rows)]


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
    return [*lines, *_table(headers, rows), *_latency_section(result)]


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
    return [*lines, *_table(["strategy", "budget", "suggestions", "median s", "p95 s", "max s"], rows)]


def _wall_time_section(result: BenchResult) -> list[str]:
    rows = [
        [r.get("finished_at", "?"), f"{r.get('seconds', 0):.1f}", str(r.get("studies_run")), str(r.get("jobs"))]
        for r in result.runs
    ]
    total = sum(float(r.get("seconds", 0)) for r in result.runs)
    lines = ["## Wall time", "", f"{len(result.runs)} run(s) of this bench, {total:.1f} s in all.", ""]
    return [*lines, *_table(["finished at", "seconds", "studies run", "jobs"], rows)]


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


# ---- one study --------------------------------------------------------------------------------------------


class _NoModel(Provider):
    """Lets the report build an Agent to render the prompts; never called."""

    name = "none"

    async def complete(self, messages: Sequence[ChatMessage], **_: Any) -> Completion:
        raise RuntimeError("the report never calls a model")


def write_study_report(save_dir: Path, storage: str | None = None, study_name: str | None = None) -> Path:
    """Write ``report.md`` and ``plots/*.png`` for one study; return the report's path.

    The storage defaults to ``save_dir/study.db`` (or ``save_dir/bench.db`` in a bench folder). In a bench
    folder the report goes to the study's own folder, ``save_dir/studies/<study name>``.
    """
    save_dir = Path(save_dir)
    url = storage or _default_url(save_dir)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise UserError(f"--save_dir {save_dir}: no study storage at {url}; pass --storage URL")
    store = open_storage(url)
    names = sorted(s.study_name for s in store.get_all_studies())
    if study_name is None:
        if len(names) != 1:
            listing = ", ".join(names) if names else "none"
            raise UserError(f"{url} holds {len(names)} studies; choose one with --study-name: {listing}")
        study_name = names[0]
    elif study_name not in names:
        raise UserError(f"--study-name {study_name!r} is not in {url}; its studies: {', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=study_name, storage=store)
    out = save_dir / "studies" / study_name if (save_dir / "bench_runs.jsonl").exists() else save_dir
    (out / "plots").mkdir(parents=True, exist_ok=True)
    lines = _study_markdown(_StudyView.load(study), url, out)
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _default_url(save_dir: Path) -> str:
    bench = save_dir / "bench.db"
    chosen = bench if bench.is_file() and not (save_dir / "study.db").is_file() else save_dir / "study.db"
    return f"sqlite:///{chosen.resolve()}"


@dataclass(frozen=True)
class _StudyView:
    """One study as the report reads it: finished trials in order, their values and (noisy tasks) true errors."""

    study: optuna.Study
    trials: list[FrozenTrial]
    done: list[FrozenTrial]
    values: list[float | None]
    true: list[float | None] | None
    space: SearchSpace | None
    task: Task | None

    @classmethod
    def load(cls, study: optuna.Study) -> _StudyView:
        attrs = study.user_attrs
        space = SearchSpace.from_dict(attrs["space"]) if "space" in attrs else None
        task = None
        if attrs.get("task") and space is not None:
            with contextlib.suppress(AgentError, ValueError):  # a task this version no longer knows
                task = build_task(str(attrs["task"]), space=space)
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        done = [t for t in trials if t.state != TrialState.RUNNING]
        values = [t.value if t.state == TrialState.COMPLETE else None for t in done]
        true = None
        if task is not None and task.true_error is not None:
            score = task.true_error
            true = [None if v is None else score(t.params) for t, v in zip(done, values, strict=True)]
        return cls(study, trials, done, values, true, space, task)


def _study_markdown(view: _StudyView, url: str, out: Path) -> list[str]:
    attrs = view.study.user_attrs
    done = view.done
    facts = [[k, str(attrs[k])] for k in ("task", "strategy", "seed", "bench_seed", "budget") if k in attrs]
    failed = sum(t.state == TrialState.FAIL for t in done)
    facts.append(["trials", f"{len(done)} finished ({failed} failed), {len(view.trials) - len(done)} running"])
    pick = int(metrics.incumbent_indices(view.values)[-1]) if done else -1
    if pick >= 0:
        facts.append(["best", f"trial #{done[pick].number}: {_fmt(view.values[pick] or 0.0, 6)}"])
        facts.append(["best configuration", f"`{json.dumps(compact_config(done[pick].params))}`"])
        if view.true is not None:
            facts.append(["its true error (mean over the table's seeds)", _fmt(view.true[pick] or 0.0, 6)])
    cost = trial_cost(done, [view.space.key(t.params) for t in done] if view.space else [])
    if cost.llm_calls:
        facts.append(
            [
                "LLM",
                f"{cost.llm_calls} calls, {cost.prompt_tokens}+{cost.completion_tokens} tokens, "
                f"{cost.llm_seconds:.1f} s, {cost.reasks} reasks, {cost.fallbacks} fallbacks",
            ]
        )
    facts.append(["repeated configurations", str(cost.repeated)])
    lines = [f"# Study `{view.study.study_name}`", "", f"Storage: `{url}`.", ""]
    lines += [*(f"- **{key}**: {value}" for key, value in facts), ""]
    numbers = [t.number for t in done]
    plot_study_curve(view.study.study_name, numbers, view.values, view.true, out / "plots" / "best.png")
    lines += ["![best so far](plots/best.png)", ""]
    task_name = str(attrs.get("task", ""))
    if toy_function(task_name) is not None:
        panels = {str(attrs.get("strategy", "study")): [t.params for t in done]}
        plot_trajectories(task_name, panels, out / "plots" / "trajectory.png")
        lines += ["![proposals](plots/trajectory.png)", ""]
    return [*lines, *_trials_table(view), *_conversation(view)]


def _trials_table(view: _StudyView) -> list[str]:
    true_of = dict(zip((t.number for t in view.done), view.true or [], strict=False))
    rows = []
    for t in view.trials:
        value = _fmt(t.value, 6) if t.state == TrialState.COMPLETE and t.value is not None else t.state.name.lower()
        row = [str(t.number), value]
        if view.true is not None:
            tv = true_of.get(t.number)
            row.append(_fmt(tv, 6) if tv is not None else "")
        config = f"`{json.dumps(compact_config(t.params))}`"
        row += [str(t.user_attrs.get("source", "sampler")), config, str(t.user_attrs.get("error") or "")[:100]]
        rows.append(row)
    headers = ["#", "value", *(["true error"] if view.true is not None else []), "source", "configuration", "error"]
    return ["## Trials", "", *_table(headers, rows)]


def _conversation(view: _StudyView) -> list[str]:
    talked = [t for t in view.trials if t.user_attrs.get("conversation")]
    if not talked:
        return []
    lines = ["## Conversation", ""]
    if view.task is not None:
        task = view.task
        records = [TrialRecord(number=t.number, config=dict(t.params), state="complete") for t in view.done]
        agent = Agent(
            provider=_NoModel(),
            eval_tool=task.tool,
            task_description=task.description,
            task_template=task.template,
            budget=int(view.study.user_attrs.get("budget", len(view.done))),
            extra_tools=[ReadHistory(lambda: records)],
        )
        lines += [
            "The system and task prompts, rendered again with the current templates; then what each round stored "
            "(the model's answers, reasks, tool returns) and the trial's result.",
            "",
            "### System",
            "",
            _fenced(agent.memory.system),
            "### Task",
            "",
            _fenced(f"{agent.memory.task}\n\n{agent.memory.start}".strip()),
        ]
    for t in talked:
        result = _fmt(t.value, 6) if t.state == TrialState.COMPLETE and t.value is not None else t.state.name.lower()
        reasks = int(t.user_attrs.get("reasks", 0) or 0)
        asked = f", {reasks} reask{'s' if reasks != 1 else ''}" if reasks else ""
        lines += [f"### Trial {t.number} ({t.user_attrs.get('source')}{asked}) -> {result}", ""]
        for part in load_parts(t.user_attrs["conversation"]):
            if isinstance(part, AnswerPart):
                u = part.usage
                cost = f" ({u.prompt_tokens}+{u.completion_tokens} tokens, {u.latency_s:.2f} s)" if u else ""
                lines += [f"**model**{cost}:", "", _fenced(part.content, "json")]
            elif isinstance(part, ReaskPart):
                lines += ["**reask**:", "", _fenced(part.content)]
            elif isinstance(part, ToolReturnPart):
                lines += [f"**{part.tool}** returned:", "", _fenced(part.content)]
            elif isinstance(part, UserPart):
                lines += ["**prompt**:", "", _fenced(part.content)]
    return lines


def _fenced(text: str, lang: str = "text") -> str:
    """A code block whose fence is longer than any run of backticks inside (a model may answer in fences)."""
    fence = "`" * max(3, _longest_backticks(text) + 1)
    return f"{fence}{lang}\n{text}\n{fence}\n"


def _longest_backticks(text: str) -> int:
    best = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        best = max(best, run)
    return best
