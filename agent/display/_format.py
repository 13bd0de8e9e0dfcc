"""Plain text pieces every display shares: durations, an evaluation's progress, a study's time left."""

from __future__ import annotations

import math
from collections.abc import Sequence

from evaluators.base import Progress

__all__ = ["duration", "is_unit_end", "plural", "progress_text", "study_time_left"]


def plural(n: int, word: str) -> str:
    """``1 call``, ``2 calls``, ``0 trials``.

    >>> plural(1, "call"), plural(2, "call"), plural(0, "trial")
    ('1 call', '2 calls', '0 trials')
    """
    return f"{n} {word}{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """``45s``, ``4m12s``, ``3h57m``.

    >>> duration(3.4), duration(252), duration(14_230)
    ('3s', '4m12s', '3h57m')
    """
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def is_unit_end(progress: Progress) -> bool:
    """A report at a whole ``done`` marks the end of a unit (an epoch), with what was measured then. A ``step``
    line a program printed is one only as the last of a known total: a program may print thousands of them."""
    if progress.unit == "step":
        return progress.total is not None and progress.done >= progress.total
    return progress.done == math.floor(progress.done)


def progress_text(progress: Progress) -> str:
    """``epoch 2/10 37%: loss 1.234, 612 img/s, ~1m30s left``; at an epoch's end, with its validation error;
    ``step 40: val_r2 0.8123, 12s elapsed`` for a program's step lines (the metric as its headline)."""
    unit, done, total = progress.unit, progress.done, progress.total
    if total is None:
        where = f"{unit} {done:g}"
    elif done == math.floor(done):
        where = f"{unit} {int(done)}/{total:g}"
    else:
        where = f"{unit} {math.floor(done) + 1}/{total:g} {100 * (done - math.floor(done)):.0f}%"
    m = progress.metrics
    parts = []
    headline = progress.headline
    if headline is not None and headline not in _KNOWN and math.isfinite(m.get(headline, math.nan)):
        parts.append(f"{headline} {m[headline]:.4g}")
    if "loss" in m and math.isfinite(m["loss"]):
        parts.append(f"loss {m['loss']:.4g}")
    if "val_error" in m and math.isfinite(m["val_error"]):
        parts.append(f"val_error {m['val_error']:.4f}")
    if "images_per_s" in m:
        parts.append(f"{m['images_per_s']:.0f} img/s")
    eta = progress.eta_s
    parts.append(f"{duration(progress.elapsed_s)} elapsed" if eta is None or eta == 0 else f"~{duration(eta)} left")
    return f"{where}: {', '.join(parts)}"


_KNOWN = ("loss", "val_error", "images_per_s")


def study_time_left(
    *,
    remaining: int,
    durations: Sequence[float],
    running: Sequence[tuple[float, float | None]],
    workers: int = 1,
) -> float | None:
    """Seconds until a study ends, at the pace so far; None when there is nothing to go by yet.

    ``remaining``: trials of the budget not finished (running ones included); ``durations``: seconds of the
    trials this run finished; ``running``: (seconds elapsed, seconds left or None) of each running trial.
    A trial's length is the mean of ``durations``, else a running trial's projected length.
    """
    if remaining <= 0:
        return 0.0
    projected = [elapsed + left for elapsed, left in running if left is not None]
    pool = durations or projected
    if not pool:
        return None
    per_trial = sum(pool) / len(pool)
    running_left = [left if left is not None else max(per_trial - elapsed, 0.0) for elapsed, left in running]
    waiting = max(remaining - len(running), 0)
    return max(running_left, default=0.0) + per_trial * math.ceil(waiting / max(workers, 1))
