"""The report of one study (``python -m agent report``): best-so-far plot, trials, and the conversation.

It needs only the storage: no strategy, no provider. The system and task prompts shown are the ones the
study sent, stored with it at each run's first model round; a later run that sent others (a resumed study
whose budget changed) adds its own, from the trial it began at.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from agent import metrics
from agent.bench import study_cost
from agent.deadline import DEADLINE
from agent.errors import AgentError, UserError
from agent.messages import AnswerPart, ReaskPart, ToolReturnPart, UserPart
from agent.records import TrialRecord, compact_config
from agent.space import SearchSpace
from agent.study import opened_storage, study_meta, study_records
from agent.study.terms import kept_time_budget, time_used
from agent.tasks import Task, build_task

from ._experience import experience_section, mapping_usage
from ._markdown import fenced, fmt, plural, table
from ._plots import (
    plot_compute_curve,
    plot_curves,
    plot_shares,
    plot_study_curve,
    plot_trajectories,
    toy_function,
)
from ._sources import source_rows

__all__ = ["write_study_report"]


def write_study_report(save_dir: Path, storage: str | None = None, study_name: str | None = None) -> Path:
    """Write ``report.md`` and ``plots/*.png`` for one study; return the report's path.

    The storage defaults to ``save_dir/study.db`` (or ``save_dir/bench.db`` in a bench folder). In a bench
    folder the report goes to the study's own folder, ``save_dir/studies/<study name>``.
    """
    save_dir = Path(save_dir)
    url = storage or _default_url(save_dir)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise UserError(f"--save_dir {save_dir}: no study storage at {url}; pass --storage URL")
    with opened_storage(url) as store:
        names = sorted(s.study_name for s in store.get_all_studies())
        if study_name is None:
            if len(names) != 1:
                listing = ", ".join(names) if names else "none"
                raise UserError(f"{url} holds {len(names)} studies; choose one with --study-name: {listing}")
            study_name = names[0]
        elif study_name not in names:
            raise UserError(f"--study-name {study_name!r} is not in {url}; its studies: {', '.join(names) or 'none'}")
        view = _StudyView.load(optuna.load_study(study_name=study_name, storage=store))
    out = save_dir / "studies" / study_name if (save_dir / "bench_runs.jsonl").exists() else save_dir
    (out / "plots").mkdir(parents=True, exist_ok=True)
    lines = _study_markdown(view, url, out)
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _default_url(save_dir: Path) -> str:
    bench = save_dir / "bench.db"
    chosen = bench if bench.is_file() and not (save_dir / "study.db").is_file() else save_dir / "study.db"
    return f"sqlite:///{chosen.resolve()}"


@dataclass(frozen=True)
class _StudyView:
    """One study as the report reads it: its records, the finished ones' values and (noisy tasks) true errors."""

    name: str
    meta: dict[str, Any]
    #: Every trial, the setup failures of a broken start included (shown, marked, never counted).
    records: list[TrialRecord]
    #: The finished trials that count.
    done: list[TrialRecord]
    true: list[float | None] | None
    task: Task | None
    maximize: bool = False

    @classmethod
    def load(cls, study: optuna.Study) -> _StudyView:
        meta = study_meta(study)
        task = None
        if meta.get("task") and "space" in meta:
            with contextlib.suppress(AgentError, ValueError):  # a task this version no longer knows
                task = build_task(str(meta["task"]), space=SearchSpace.from_dict(meta["space"]))
        records = study_records(study, setup_failures=True)
        done = [r for r in records if r.finished and not r.setup_failure and not r.probe]  # as the summary counts
        true = None
        if task is not None and task.true_error is not None:
            score = task.true_error
            true = [None if r.value is None else score(r.config) for r in done]
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        return cls(study.study_name, meta, records, done, true, task, maximize)

    @property
    def metric(self) -> str:
        """What a trial's value is (older studies did not record it: "value")."""
        return str(self.meta.get("metric") or "value")

    @property
    def setup_failures(self) -> int:
        return sum(r.setup_failure for r in self.records)

    @property
    def gpus_per_trial(self) -> float:
        """GPUs each trial held (``--gpus-per-trial``); 0: its seconds are the machine's."""
        gpus = self.meta.get("gpus_per_trial")
        return float(gpus) if isinstance(gpus, int | float) and gpus > 0 else 0.0

    @property
    def compute(self) -> list[float | None]:
        """Each finished trial's compute: its recorded cost or wall seconds, times its GPUs when it held some."""
        scale = self.gpus_per_trial or 1.0
        return [None if r.compute_s is None else r.compute_s * scale for r in self.done]

    @property
    def compute_unit(self) -> str:
        """What :attr:`compute` counts: seconds, or GPU seconds (and how many GPUs a trial held)."""
        gpus = self.gpus_per_trial
        return f"GPU seconds; {gpus:g} GPUs per trial" if gpus else "seconds"

    @property
    def values(self) -> list[float | None]:
        return [r.value for r in self.done]

    @property
    def losses(self) -> list[float | None]:
        """The values as losses (negated in a maximized study), for what picks the lowest."""
        return [None if v is None else (-v if self.maximize else v) for v in self.values]


def _study_markdown(view: _StudyView, url: str, out: Path) -> list[str]:
    meta, done = view.meta, view.done
    facts = [[k, str(meta[k])] for k in ("task", "strategy", "seed", "bench_seed", "budget") if k in meta]
    failed = sum(r.state == "fail" for r in done)
    running = sum(not r.finished for r in view.records)
    by_deadline = sum(r.stopped_by == DEADLINE for r in done)
    stopped = f", {by_deadline} stopped by the deadline" if by_deadline else ""
    trials = f"{len(done)} finished ({failed} failed{stopped}), {running} running"
    if view.setup_failures:
        trials += f"; {plural(view.setup_failures, 'setup failure')} of a broken start (kept, not counted)"
    probes = sum(r.probe and not r.setup_failure for r in view.records)
    if probes:
        trials += f"; {plural(probes, 'probe')} of the setup (kept, outside the budget, not counted)"
    facts.append(["trials", trials])
    if "metric" in meta:
        facts.append(["value", f"the trial's `{view.metric}`"])
    if view.maximize:
        facts.append(["direction", "maximize (the best is the highest value)"])
    pick = int(metrics.incumbent_indices(view.losses)[-1]) if done else -1
    if pick >= 0:
        facts.append(["best", f"trial #{done[pick].number}: {fmt(done[pick].value or 0.0, 6)}"])
        facts.append(["best configuration", f"`{json.dumps(compact_config(done[pick].config))}`"])
        if view.true is not None:
            facts.append(["its true error (mean over the table's seeds)", fmt(view.true[pick] or 0.0, 6)])
    compute = [s for s in view.compute if s is not None]
    if compute:
        total, each = sum(compute), sum(compute) / len(compute)
        facts.append(["compute", f"{total:.4g} in all, {each:.4g} per trial ({view.compute_unit})"])
    budget_s = kept_time_budget(meta)
    if budget_s is not None:
        facts.append(["time budget", f"{time_used(meta):.4g} s used of {budget_s:.4g} s (`--time-budget`)"])
    weighed = [w for r in done if isinstance(w := r.proposal.decision.get("cost_weight"), int | float)]
    if weighed:
        facts.append(
            [
                "cost weighed",
                f"{plural(len(weighed), 'proposal')} chose by expected improvement per second, the weight of cost "
                f"falling from {max(weighed):.2f} to {min(weighed):.2f} as the time ran out",
            ]
        )
    cost = study_cost(done, view.task, learned=mapping_usage(meta))
    if cost.llm_calls:
        facts.append(
            [
                "LLM",
                f"{plural(cost.llm_calls, 'call')}, {cost.prompt_tokens}+{cost.completion_tokens} tokens, "
                f"{cost.llm_seconds:.1f} s, {plural(cost.reasks, 'reask')}",
            ]
        )
    if cost.fallbacks:
        unreachable, invalid = cost.unreachable, cost.fallbacks - cost.unreachable
        why = [f"{unreachable} with the model unreachable"] * bool(unreachable)
        why += [f"{invalid} after invalid answers"] * bool(invalid)
        facts.append(["rounds without the model", f"{cost.fallbacks} ({', '.join(why)}); reasons in the trials' notes"])
    facts.append(["repeated configurations", str(cost.repeated)])
    lines = [f"# Study `{view.name}`", "", f"Storage: `{url}`.", ""]
    lines += [*(f"- **{key}**: {value}" for key, value in facts), ""]
    plot_study_curve(
        view.name,
        [r.number for r in done],
        view.values,
        view.true,
        out / "plots" / "best.png",
        view.maximize,
        metric=view.metric,
    )
    lines += ["![best so far](plots/best.png)", ""]
    if compute:
        path = out / "plots" / "compute.png"
        plot_compute_curve(view.name, view.compute, view.values, path, view.maximize, view.metric, view.compute_unit)
        lines += ["![best against compute](plots/compute.png)", ""]
    task_name = str(meta.get("task", ""))
    if toy_function(task_name) is not None:
        panels = {str(meta.get("strategy", "study")): [r.config for r in done]}
        plot_trajectories(task_name, panels, out / "plots" / "trajectory.png")
        lines += ["![proposals](plots/trajectory.png)", ""]
    lines += _stopping(view, out)
    learned = experience_section(meta, done, out, maximize=view.maximize)
    return [*lines, *learned, *_sources(view, out), *_trials_table(view), *_conversation(view)]


def _stopping(view: _StudyView, out: Path) -> list[str]:
    """The trials' curves (value against step, stopped ones faded) and what stopping saved: the steps run
    against the steps every trial would have run to its end, and the seconds likewise (a stopped trial's
    full cost estimated at its own pace); how many proposals learnt from the stopped trials."""
    reported = [r for r in view.done if r.curve]
    if not reported:
        return []
    plot_curves(
        view.name, [(r.curve, r.state == "pruned") for r in reported], out / "plots" / "curves.png", view.metric
    )
    tool_last = view.task.tool.max_step if view.task is not None else None
    last = tool_last or max(max(r.curve) for r in reported)
    ran = sum(max(r.curve) for r in reported)
    full = sum(max(last, max(r.curve)) for r in reported)
    seconds = sum(r.seconds or 0.0 for r in reported)
    full_seconds = sum((r.seconds or 0.0) * max(last, max(r.curve)) / max(r.curve) for r in reported)
    stopped = sum(r.state == "pruned" for r in reported)
    over_steps = sum(r.proposal.decision.get("fidelity") is True for r in view.done)
    learnt = (
        f" {plural(over_steps, 'proposal')} came from the Gaussian process over (configuration, step), which learns "
        "from every stopped trial's values at the steps where trials were stopped."
        if over_steps
        else ""
    )
    return [
        "## Curves and what stopping saved",
        "",
        f"{plural(len(reported), 'trial')} reported steps; {stopped} stopped early. They ran {ran} steps of the "
        f"{full} that running each to step {last} would have cost ({_share(ran, full)}), and "
        f"{seconds:.1f} s of an estimated {full_seconds:.1f} s ({_share(seconds, full_seconds)}; a stopped trial's "
        f"full run estimated at its own pace).{learnt}",
        "",
        "![curves](plots/curves.png)",
        "",
    ]


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole > 0 else "n/a"


def _sources(view: _StudyView, out: Path) -> list[str]:
    """Who proposed the trials and what they earned; the model's share as a hybrid strategy decided it."""
    if not any(r.source in ("llm", "transfer") for r in view.done):
        return []
    sign = -1.0 if view.maximize else 1.0
    values = [None if r.value is None else sign * r.value for r in view.done]
    lines = [
        "## Sources",
        "",
        "Who chose each trial's configuration: `llm` the model, `surrogate` the Gaussian process (the optimizer), "
        "`transfer` the earlier studies (their best configurations open a study that learns from them), `sampler` "
        "Optuna's sampler, `fallback` the sampler instead of a model that could not be reached or kept answering "
        "invalid configurations, `resumed` a trial re-run after a crash. **trials**: how many the source chose "
        "(and their share); **mean reward**: the share of the study's earlier trials that each of its trials "
        "beats, averaged (0 to 1; a source no better than chance earns about 0.5; the credit `hybrid` gives each "
        "source); **new bests**: how often its trial improved the best so far.",
        "",
        *table(
            ["source", "trials", "mean reward", "new bests"], source_rows([(values, [r.source for r in view.done])])
        ),
    ]
    shares = [r.proposal.decision.get("share") for r in view.done]
    if any(isinstance(s, int | float) for s in shares):
        plot_shares(
            {"model's share": [[s if isinstance(s, int | float) else None for s in shares]]},
            out / "plots" / "share.png",
        )
        lines += ["The model's share of each round as the strategy decided it:", "", "![share](plots/share.png)", ""]
    return lines


def _trials_table(view: _StudyView) -> list[str]:
    true_of = dict(zip((r.number for r in view.done), view.true or [], strict=False))
    rows = []
    for r in view.records:
        shown: str = "setup failure" if r.setup_failure else r.state
        shown += " (deadline)" if r.stopped_by == DEADLINE else ""
        row = [str(r.number), fmt(r.value, 6) if r.value is not None else shown]
        if view.true is not None:
            tv = true_of.get(r.number)
            row.append(fmt(tv, 6) if tv is not None else "")
        seconds = "" if r.compute_s is None else fmt(r.compute_s, 4)
        row += [seconds, r.source, f"`{json.dumps(compact_config(r.config))}`"]
        rows.append([*row, (r.error or r.proposal.reason or "")[:100]])
    true_col = ["true error"] if view.true is not None else []
    headers = ["#", "value", *true_col, "seconds", "source", "configuration", "note"]
    explained = [
        f"**value**: the trial's `{view.metric}`, or how it ended without one (`fail`, `pruned`, `running`; "
        "`setup failure`: one of the failed trials that stopped a run whose setup was broken, not counted; "
        "`pruned (deadline)`: stopped at a report because the time budget ran out)",
        "**seconds**: what the trial cost (its recorded training seconds on a replayed table, else wall time)",
        *(["**true error**: the mean over the table's seeds of the configuration's error"] if view.true else []),
        "**source**: who chose the configuration (see Sources)",
        "**note**: why it failed, or why the model did not choose it",
    ]
    return ["## Trials", "", "; ".join(explained) + ".", "", *table(headers, rows)]


def _prompts(prompts: dict[str, Any], level: str = "###") -> list[str]:
    """The system prompt, and the task prompt with the opening one, of those ``prompts`` holds."""
    out = []
    if "system" in prompts:
        out += [f"{level} System", "", fenced(str(prompts["system"]))]
    if "task" in prompts or "start" in prompts:
        out += [f"{level} Task", "", fenced(f"{prompts.get('task', '')}\n\n{prompts.get('start', '')}".strip())]
    return out


def _conversation(view: _StudyView) -> list[str]:
    talked = [r for r in view.records if r.proposal.conversation]
    if not talked:
        return []
    lines = ["## Conversation", ""]
    prompts = view.meta.get("prompts")
    if isinstance(prompts, dict):
        lines += [
            "The system and task prompts as the study sent them; then what each round stored (the model's "
            "answers, reasks, tool returns) and the trial's result.",
            "",
            *_prompts(prompts),
        ]
        before = prompts
        for later in view.meta.get("prompts_later") or []:
            if not isinstance(later, dict):
                continue
            changed = {key: text for key, text in later.items() if key != "trial" and before.get(key) != text}
            lines += [
                f"### Prompts sent from trial {later.get('trial')} on",
                "",
                "A later run sent these instead (a resumed study whose budget changed, say); the others stayed.",
                "",
                *_prompts(changed, level="####"),
            ]
            before = {**before, **later}
    for r in talked:
        result = fmt(r.value, 6) if r.value is not None else r.state
        asked = f", {r.proposal.reasks} reask{'s' if r.proposal.reasks != 1 else ''}" if r.proposal.reasks else ""
        lines += [f"### Trial {r.number} ({r.source}{asked}) -> {result}", ""]
        for part in r.proposal.conversation:
            if isinstance(part, AnswerPart):
                u = part.usage
                cost = f" ({u.prompt_tokens}+{u.completion_tokens} tokens, {u.latency_s:.2f} s)" if u else ""
                lines += [f"**model**{cost}:", "", fenced(part.content, "json")]
            elif isinstance(part, ReaskPart):
                lines += ["**reask**:", "", fenced(part.content)]
            elif isinstance(part, ToolReturnPart):
                lines += [f"**{part.tool}** returned:", "", fenced(part.content)]
            elif isinstance(part, UserPart):
                lines += ["**prompt**:", "", fenced(part.content)]
    return lines
