"""What a study learned from earlier studies (``--learn-from``), for its report: each source and how it entered
(as it is, mapped by the model, or left out and why), what asking the model cost, how the openers (the
sources' best configurations) ranked among the study's trials, each source's weight in the optimizer's model
over the trials (a source whose weight fell to 0 was overruled by the study's own results), and the model's
mapping conversations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.messages import AnswerPart, ReaskPart, UserPart
from agent.records import TrialRecord, UsageTotals
from agent.sources.experience import Experience, load_decisions

from ._markdown import fenced, plural, table
from ._plots import plot_shares

__all__ = ["experience_section", "mapping_usage"]

#: A weight this small (they are stored to 3 decimals) is none: the source no longer counts.
_NO_WEIGHT = 0.0005


def mapping_usage(meta: Mapping[str, Any]) -> UsageTotals:
    """What asking the model about the study's sources cost (its stored decisions), to count beside its trials'."""
    return Experience((), tuple(load_decisions(meta.get("experience")))).usage


def experience_section(
    meta: Mapping[str, Any], done: Sequence[TrialRecord], out: Path, *, maximize: bool = False
) -> list[str]:
    """The report's "Learned from" section; empty for a study that learned from nothing. ``done``: the study's
    finished trials that count; ``maximize``: its direction (for how its openers ranked)."""
    if not meta.get("learn_from"):
        return []
    decisions = load_decisions(meta.get("experience"))
    weights = _weights(done)
    last = {name: _last(series[0]) for name, series in weights.items()}
    lines = [
        "## Learned from",
        "",
        "The study was given these storages: " + ", ".join(f"`{s}`" for s in meta["learn_from"]) + ". Studies that "
        "tuned the same thing are one source. **how**: `identical` (the same space, used as it is), `mapped` (the "
        "model said which earlier parameter each new one is), or why it was left out; **trials**: the earlier "
        "trials the optimizer learns from; **last weight**: the source's weight in the optimizer's model at the "
        "study's last trial (0: overruled by this study's results).",
        "",
    ]
    rows = [
        [
            d.label,
            str(len(d.studies)),
            d.how,
            str(len(d.data.values)) if d.data is not None else "0",
            _weight_text(last.get(d.label)),
            d.note,
        ]
        for d in decisions
    ]
    headers = ["source", "studies", "how", "trials", "last weight", "note"]
    lines += table(headers, rows) if rows else ["No source had a finished trial.", ""]
    cost = Experience((), tuple(decisions)).usage
    if cost.llm_calls:
        lines += [
            f"Asking the model about the sources: {plural(cost.llm_calls, 'call')}, {cost.prompt_tokens}+"
            f"{cost.completion_tokens} tokens, {cost.llm_seconds:.1f} s, {plural(cost.reasks, 'reask')}.",
            "",
        ]
    lines += _openers(done, maximize)
    if weights:
        plot_shares(weights, out / "plots" / "weights.png", ylabel="weight in the optimizer's model")
        weighed = [r.number for r in done if isinstance(r.proposal.decision.get("weights"), dict)]
        when = (
            f"at the one trial after the openers (#{weighed[0]}), a single point each"
            if len(weighed) == 1
            else "trial by trial"
        )
        lines += [
            f"Each source's weight in the optimizer's model {when} (`target`: this study's own results), "
            "the share of draws in which its model ranked this study's results best: a source the results "
            "contradict fades.",
            "",
            "![weights](plots/weights.png)",
            "",
        ]
        overruled = [name for name, w in last.items() if name != "target" and _none(w)]
        for name in overruled:
            since = _since(weights[name][0], done)
            lines += [
                f"{name} was overruled by this study's results: its weight fell to 0 at trial #{since} and stayed "
                "there, so the optimizer no longer follows it (its openers were spent; it costs nothing more).",
                "",
            ]
    for d in decisions:
        if not d.conversation:
            continue
        lines += [f"### How the model read {d.label}", ""]
        for part in d.conversation:
            if isinstance(part, UserPart):
                lines += ["**prompt**:", "", fenced(part.content)]
            elif isinstance(part, AnswerPart):
                lines += ["**model**:", "", fenced(part.content, "json")]
            elif isinstance(part, ReaskPart):
                lines += ["**reask**:", "", fenced(part.content)]
    return lines


def _openers(done: Sequence[TrialRecord], maximize: bool) -> list[str]:
    """How the trials the sources opened the study with ranked among all of its trials with a value."""
    openers = [r for r in done if r.source == "transfer"]
    if not openers:
        return []
    sign = -1.0 if maximize else 1.0
    values = [sign * r.value for r in done if r.value is not None]

    def rank(r: TrialRecord) -> str:
        if r.value is None:
            return f"#{r.number} {r.state}"
        return f"#{r.number} {_ordinal(1 + sum(v < sign * r.value for v in values))}"

    best = min((sign * r.value for r in openers if r.value is not None), default=None)
    verdict = ""
    if best is not None and len(values) > len(openers):
        beaten = sum(v < best for v in values)
        verdict = (
            " The best of them is the study's best."
            if beaten == 0
            else f" {plural(beaten, 'later trial')} found better than the best of them."
        )
    return [
        f"The {plural(len(openers), 'opener')} (the sources' best configurations, source `transfer`) ranked "
        f"{', '.join(rank(r) for r in openers)} among the study's {plural(len(values), 'trial')} with a value."
        + verdict,
        "",
    ]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _last(series: Sequence[float | None]) -> float | None:
    return next((w for w in reversed(series) if w is not None), None)


def _since(series: Sequence[float | None], done: Sequence[TrialRecord]) -> int:
    """The trial from which on the weight stayed at 0."""
    at = len(series) - 1
    while at > 0 and _none(series[at - 1]):
        at -= 1
    return done[at].number


def _none(weight: float | None) -> bool:
    return weight is not None and weight < _NO_WEIGHT


def _weight_text(weight: float | None) -> str:
    if weight is None:
        return ""
    return "0: overruled by this study's results" if _none(weight) else f"{weight:.2f}"


def _weights(done: Sequence[TrialRecord]) -> dict[str, list[list[float | None]]]:
    """Each source's weight per trial, from the trials' decisions (None where a trial recorded none)."""
    per_trial = [r.proposal.decision.get("weights") for r in done]
    names = sorted({name for w in per_trial if isinstance(w, dict) for name in w})
    return {
        name: [
            [
                float(w[name]) if isinstance(w, dict) and isinstance(w.get(name), int | float) else None
                for w in per_trial
            ]
        ]
        for name in names
    }
