"""What a study learned from earlier studies (``--learn-from``), for its report: each source and how it entered
(as it is, mapped by the model, or left out and why), the model's mapping conversations, and each source's
weight in the optimizer's model over the trials."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.messages import AnswerPart, ReaskPart, UserPart, load_parts
from agent.records import TrialRecord

from ._markdown import fenced, table
from ._plots import plot_shares

__all__ = ["experience_section"]


def experience_section(meta: Mapping[str, Any], done: Sequence[TrialRecord], out: Path) -> list[str]:
    """The report's "Learned from" section; empty for a study that learned from nothing."""
    decisions = [d for d in meta.get("experience") or [] if isinstance(d, dict)]
    if not meta.get("learn_from"):
        return []
    lines = [
        "## Learned from",
        "",
        "The study was given these storages: " + ", ".join(f"`{s}`" for s in meta["learn_from"]) + ". Studies that "
        "tuned the same thing are one source. **how**: `identical` (the same space, used as it is), `mapped` (the "
        "model said which earlier parameter each new one is), or why it was left out; **trials**: the earlier "
        "trials the optimizer learns from.",
        "",
    ]
    rows = []
    for d in decisions:
        data = d.get("data") or {}
        studies = d.get("studies") or []
        rows.append(
            [
                str(d.get("label")),
                str(len(studies)),
                str(d.get("how")),
                str(len(data.get("values") or [])),
                str(d.get("note", "")),
            ]
        )
    lines += (
        table(["source", "studies", "how", "trials", "note"], rows) if rows else ["No source had a finished trial.", ""]
    )
    weights = _weights(done)
    if weights:
        plot_shares(weights, out / "plots" / "weights.png", ylabel="weight in the optimizer's model")
        lines += [
            "Each source's weight in the optimizer's model trial by trial (`target`: this study's own results), "
            "the share of draws in which its model ranked this study's results best: a source the results "
            "contradict fades.",
            "",
            "![weights](plots/weights.png)",
            "",
        ]
    for d in decisions:
        said = load_parts(d.get("conversation") or [])
        if not said:
            continue
        lines += [f"### How the model read {d.get('label')}", ""]
        for part in said:
            if isinstance(part, UserPart):
                lines += ["**prompt**:", "", fenced(part.content)]
            elif isinstance(part, AnswerPart):
                lines += ["**model**:", "", fenced(part.content, "json")]
            elif isinstance(part, ReaskPart):
                lines += ["**reask**:", "", fenced(part.content)]
    return lines


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
