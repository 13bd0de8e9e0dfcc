"""The reports' plots, drawn on matplotlib ``Figure`` objects (the Agg canvas; pyplot's global state is never
touched, so worker threads and tests can draw at once)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from agent import metrics
from evaluators.toy import TOY_FUNCTIONS, ToyFunction

__all__ = [
    "plot_bench_curves",
    "plot_compute_curve",
    "plot_shares",
    "plot_study_curve",
    "plot_trajectories",
    "plot_win_rates",
    "toy_function",
]

_COLORS = {
    "hybrid": "tab:brown",
    "llm-bo": "tab:purple",
    "llm": "tab:red",
    "bo": "tab:orange",
    "random": "tab:blue",
    "tpe": "tab:green",
}
_OTHERS = ("tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
_DPI = 110


def _color(name: str, order: Sequence[str]) -> str:
    return _COLORS.get(name) or _OTHERS[list(order).index(name) % len(_OTHERS)]


def toy_function(task: str) -> ToyFunction | None:
    """The 2D function behind a ``toy-*`` task, for contour plots."""
    return TOY_FUNCTIONS.get(task.removeprefix("toy-")) if task.startswith("toy-") else None


def _log_scale(ax: Axes, *arrays: Any) -> None:
    """Log y when the positive values span more than a factor 8; symlog (linear near 0) when some are 0."""
    values = np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays])
    values = values[np.isfinite(values)]
    positive = values[values > 0]
    if values.size == 0 or positive.size == 0 or values.min() < 0:
        return
    if positive.max() / positive.min() > 8:
        if values.min() > 0:
            ax.set_yscale("log")
            if positive.max() / positive.min() < 100:  # few decades: 0.06, 0.1, 0.2 read better than 6e-2
                plain = FuncFormatter(lambda y, _: f"{y:.2g}")
                ax.yaxis.set_major_formatter(plain)
                ax.yaxis.set_minor_formatter(plain)
        else:  # exact zeros (HPOBench car): log near the smallest nonzero value, linear below it
            linthresh = 10 ** math.floor(math.log10(float(positive.min())))
            ax.set_yscale("symlog", linthresh=linthresh, linscale=0.6)
            ax.set_ylim(bottom=0)
        ax.grid(alpha=0.1, which="minor")


def _finite(a: metrics.FloatArray) -> metrics.FloatArray:
    return np.where(np.isfinite(a), a, np.nan)


def plot_bench_curves(
    task: str,
    curves: Mapping[str, tuple[metrics.FloatArray, metrics.FloatArray]],
    reference: metrics.RandomSearchCurves,
    budgets: Sequence[int],
    path: Path,
    *,
    noisy: bool,
) -> None:
    """Median best-so-far with a 25-75% band per strategy (``curves[s]`` = (observed, true), seeds x
    evaluations), random search's expected curve with its 5-95% band; a second panel for the true error."""
    panels = [("best observed error", 0, reference.observed_median, reference.observed_lo, reference.observed_hi)]
    if noisy:
        panels.append(
            ("true error of the configuration picked", 1, reference.true_median, reference.true_lo, reference.true_hi)
        )
    fig = Figure(figsize=(6.4 * len(panels), 4.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    horizon = reference.observed_median.size
    x = np.arange(1, horizon + 1)
    seeds = max((c[0].shape[0] for c in curves.values()), default=0)
    for ax, (title, i, med, lo, hi) in zip(axes, panels, strict=True):
        shown = [lo, hi]
        ax.fill_between(x, _finite(lo), _finite(hi), color="0.5", alpha=0.15, lw=0, step="post")
        ax.step(x, _finite(med), "--", where="post", color="0.3", lw=1.5, label="random (expected), 5-95%")
        for k, (name, pair) in enumerate(curves.items()):
            q = _finite(metrics.quantiles(pair[i], [0.5, 0.25, 0.75]))
            color = _color(name, list(curves))
            ax.fill_between(x, q[1], q[2], color=color, alpha=0.18, lw=0, step="post")
            # Thinner each time: strategies that agree (TPE's startup draws are random's) stay visible.
            width = max(3.2 - 0.9 * k, 1.0)
            ax.step(x, q[0], where="post", color=color, lw=width, label=f"{name}, median and 25-75%")
            shown.append(q)
        for b in budgets:
            ax.axvline(b, color="0.2", lw=0.7, ls=":")
        _log_scale(ax, *shown)
        ax.set(title=title, xlabel="evaluations", ylabel="error (lower is better)", xlim=(1, horizon))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"{task}: best so far over {seeds} seeds (dotted: reported budgets)")
    fig.savefig(path, dpi=_DPI)


def plot_win_rates(
    bars: Mapping[tuple[int, str], tuple[float, float, float, str]],
    budgets: Sequence[int],
    strategies: Sequence[str],
    path: Path,
) -> None:
    """Grouped bars: per budget, each strategy's share of tasks beating random (expected), 90% interval."""
    fig = Figure(figsize=(max(5.5, 1.6 + 1.1 * len(budgets) * len(strategies)), 4.4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(strategies)
    for j, s in enumerate(strategies):
        xs = np.arange(len(budgets)) + (j - (len(strategies) - 1) / 2) * width
        rates = np.array([bars[(b, s)][0] for b in budgets])
        lo = np.array([bars[(b, s)][1] for b in budgets])
        hi = np.array([bars[(b, s)][2] for b in budgets])
        err = np.vstack([np.clip(rates - lo, 0, None), np.clip(hi - rates, 0, None)])
        ax.bar(xs, np.nan_to_num(rates), width * 0.9, color=_color(s, strategies), label=s, alpha=0.85)
        ax.errorbar(xs, rates, yerr=np.nan_to_num(err), fmt="none", ecolor="black", capsize=4, lw=1)
        for x, b in zip(xs, budgets, strict=True):
            ax.annotate(bars[(b, s)][3], (x, 0.02), ha="center", va="bottom", fontsize=8, color="white", weight="bold")
    ax.axhline(0.5, color="0.3", ls="--", lw=1)
    ax.set_xticks(np.arange(len(budgets)), [f"budget {b}" for b in budgets])
    ax.set(ylim=(0, 1.05), ylabel="share of tasks beating random (expected)")
    ax.set_title(
        "Win rate against random search (expected), true error\n"
        "error bars: 90% bootstrap interval (seeds resampled per task)"
    )
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=_DPI)


def plot_trajectories(task: str, panels: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> None:
    """Each panel: the proposals of one study, numbered in order, over the toy function's contours."""
    fn = toy_function(task)
    if fn is None or not panels:
        return
    X1, X2, Z = fn.grid(200)
    levels = np.log10(1 + np.clip(Z - fn.minimum, 0, None))
    fig = Figure(figsize=(4.4 * len(panels) + 1.2, 4.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    outline = [patheffects.withStroke(linewidth=2, foreground="black")]
    filled = None
    for ax, (name, configs) in zip(axes, panels.items(), strict=True):
        filled = ax.contourf(X1, X2, levels, levels=24, cmap="viridis")
        ax.contour(X1, X2, levels, levels=12, colors="white", linewidths=0.3, alpha=0.5)
        points = [(float(c["x1"]), float(c["x2"])) for c in configs if "x1" in c and "x2" in c]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, "-", color="white", lw=0.7, alpha=0.45)
            ax.scatter(xs, ys, s=30, c="white", edgecolors="black", zorder=3)
            for i, (x, y) in enumerate(points, 1):
                ax.annotate(
                    str(i),
                    (x, y),
                    xytext=(4, 3),
                    textcoords="offset points",
                    fontsize=8,
                    color="white",
                    path_effects=outline,
                    zorder=4,
                )
            best = min(range(len(points)), key=lambda k: fn(*points[k]))
            title = f"{name}: best f = {fn(*points[best]):.4g} (#{best + 1})"
        else:
            title = f"{name}: no proposals"
        mx, my = zip(*fn.argmins, strict=True)
        ax.scatter(mx, my, marker="*", s=160, c="red", edgecolors="white", zorder=5, label="global minima")
        ax.set(title=title, xlabel="x1", ylabel="x2", xlim=fn.bounds["x1"], ylim=fn.bounds["x2"])
    axes[0].legend(fontsize=8, loc="upper right")
    if filled is not None:
        fig.colorbar(filled, ax=list(axes), label="log10(1 + f - f*)")
    fig.suptitle(f"{task}: proposals in order (f* = {fn.minimum:.4g})")
    fig.savefig(path, dpi=_DPI)


def plot_study_curve(
    title: str,
    numbers: Sequence[int],
    values: Sequence[float | None],
    true: Sequence[float | None] | None,
    path: Path,
    maximize: bool = False,
    metric: str = "value",
) -> Figure:
    """Every trial's value and the best so far (the highest when ``maximize``; and the true error of the
    configuration picked, if noisy), against the trial numbers the trials table shows; the y axis names the
    ``metric`` the values are. Returns the figure, saved to ``path``."""
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    x = np.asarray(numbers, dtype=np.float64)
    fig = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = fig.subplots()
    sign = -1.0 if maximize else 1.0
    losses = [None if x is None else sign * x for x in values]
    best = sign * _finite(metrics.best_so_far(losses))
    ax.scatter(x, v, s=20, color="tab:blue", alpha=0.5, label="each trial")
    ax.step(x, best, where="post", color="tab:blue", lw=2, label="best so far")
    shown = [v, best]
    if true is not None:
        picked = _finite(metrics.incumbent_scores(losses, true))
        ax.step(x, picked, where="post", color="tab:orange", lw=2, ls="--", label="true error of the best so far")
        shown.append(picked)
    _log_scale(ax, *shown)
    failed = int(np.isnan(v).sum())
    note = f" ({failed} failed, not drawn)" if failed else ""
    better = "higher" if maximize else "lower"
    ax.set(title=f"{title}: {v.size} trials{note}", xlabel="trial #", ylabel=f"{metric} ({better} is better)")
    if v.size:
        ax.set_xlim(x.min() - 0.5, x.max() + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=_DPI)
    return fig


def plot_compute_curve(
    title: str,
    seconds: Sequence[float | None],
    values: Sequence[float | None],
    path: Path,
    maximize: bool = False,
    metric: str = "value",
    unit: str = "seconds",
) -> Figure:
    """The best value so far against the compute spent: the trials' ``seconds`` (recorded costs where they have
    them) added up in trial order; ``unit`` names them (GPU seconds). Returns the figure, saved to ``path``."""
    spent = np.cumsum([0.0 if s is None else s for s in seconds], dtype=np.float64)
    sign = -1.0 if maximize else 1.0
    best = sign * _finite(metrics.best_so_far([None if v is None else sign * v for v in values]))
    fig = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.step(spent, best, where="post", color="tab:blue", lw=2, marker="o", ms=3, label="best so far")
    _log_scale(ax, best)
    better = "higher" if maximize else "lower"
    total = float(spent[-1]) if spent.size else 0.0
    ax.set(
        title=f"{title}: {total:.4g} {unit} of compute",
        xlabel=f"compute spent ({unit}, cumulative)",
        ylabel=f"best {metric} ({better} is better)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=_DPI)
    return fig


def plot_shares(
    series: Mapping[str, Sequence[Sequence[float | None]]], path: Path, ylabel: str = "model's share of the round"
) -> Figure:
    """A share decided trial by trial (the model's share of each round; each source's weight in the optimizer's
    model): per label, the median over its studies with the 25-75% band (one study: its own line). Each trial is
    a marker too, so that a single decided trial shows as a point, not as an empty plot."""
    fig = Figure(figsize=(7.5, 4.0), layout="constrained")
    ax = fig.subplots()
    order = list(series)
    for label, studies in series.items():
        width = max((len(s) for s in studies), default=0)
        grid = np.full((len(studies), width), np.nan)
        for i, shares in enumerate(studies):
            grid[i, : len(shares)] = [np.nan if x is None else x for x in shares]
        x = np.arange(width)
        with warnings.catch_warnings():  # a trial index no study decided is all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(grid, axis=0) if width else np.array([])
            low, high = (np.nanpercentile(grid, q, axis=0) for q in (25, 75)) if width else (median, median)
        color = _color(label, order)
        ax.plot(x, median, color=color, lw=2, marker="o", ms=4, label=label)
        if len(studies) > 1:
            ax.fill_between(x, low, high, color=color, alpha=0.2)
    ax.set(xlabel="trial #", ylabel=ylabel, ylim=(0.0, 1.0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=_DPI)
    return fig


def plot_curves(title: str, curves: Sequence[tuple[Mapping[int, float], bool]], path: Path, metric: str) -> Figure:
    """Each trial's intermediate values against their step: runs that went to the end drawn full, stopped ones
    faded. ``curves``: (step -> value, stopped) per trial. Returns the figure, saved to ``path``."""
    fig = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = fig.subplots()
    shown = []
    for curve, stopped in curves:
        steps = sorted(curve)
        values = np.array([curve[s] for s in steps], dtype=np.float64)
        shown.append(values)
        ax.plot(
            steps,
            values,
            marker="." if len(steps) == 1 else None,
            color="tab:gray" if stopped else "tab:blue",
            alpha=0.3 if stopped else 1.0,
            lw=0.8 if stopped else 1.4,
        )
    _log_scale(ax, *shown)
    n_stopped = sum(stopped for _, stopped in curves)
    ax.set(
        title=f"{title}: {len(curves)} trials, {n_stopped} stopped early (faded)",
        xlabel="step",
        ylabel=metric,
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=_DPI)
    return fig
