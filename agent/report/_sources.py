"""Who proposed what, and what it earned: the rows of a report's "sources" table."""

from __future__ import annotations

from collections.abc import Sequence

from agent import metrics

__all__ = ["source_rows"]


def source_rows(studies: Sequence[tuple[Sequence[float | None], Sequence[str]]]) -> list[list[str]]:
    """One row per source over ``studies`` (each: its values in trial order, lower is better, and each trial's
    source): trials and their share, the mean reward (the share of earlier trials a trial beats, the credit the
    hybrid strategy's bandit gives), and the new bests it found (improvements of the incumbent)."""
    counts: dict[str, int] = {}
    rewards: dict[str, list[float]] = {}
    bests: dict[str, int] = {}
    total = 0
    for values, sources in studies:
        best = float("inf")
        for value, reward, source in zip(values, metrics.rank_rewards(values), sources, strict=True):
            total += 1
            counts[source] = counts.get(source, 0) + 1
            if reward is not None:
                rewards.setdefault(source, []).append(reward)
            if value is not None and value < best:
                best = value
                bests[source] = bests.get(source, 0) + 1
    rows = []
    for source in sorted(counts, key=lambda s: -counts[s]):
        earned = rewards.get(source, [])
        mean = f"{sum(earned) / len(earned):.2f}" if earned else "n/a"
        rows.append([source, f"{counts[source]} ({counts[source] / total:.0%})", mean, str(bests.get(source, 0))])
    return rows
