"""What the cap on the points of the Gaussian process over (configuration, step) saves a long scheduled study
(:data:`agent.strategies.fidelity.MAX_POINTS`), measured against the same proposal without it, in the same run.

    python benchmarks/fidelity_speed.py                      # 150, 500, 1000 and 2000 trials, 3 repeats
    python benchmarks/fidelity_speed.py --trials 1000 --repeats 1

A study of a 6-parameter space scheduled as ASHA schedules one (rungs at 3 and 9 epochs of 27: two thirds of the
trials stop at 3, two thirds of the rest at 9, and one in nine runs to the end), its curves a final value plus a
gap that shrinks with the epochs. Timed: one proposal of ``bo``'s model over
steps (:func:`~agent.strategies.fidelity.proposal_over_steps`: the fit, then expected improvement over its pool),
on one thread as studies run it (:func:`agent._optuna.one_thread`). A fit costs about the cube of its points, so
without the cap a study of 2,000 such trials spends minutes on each proposal; with it, about what a study of some
700 trials spends. Numbers are medians; the ratio is uncapped over capped.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np

import agent.strategies.fidelity as fidelity
from agent._optuna import one_thread
from agent.records import TrialRecord
from agent.space import FloatParam, SearchSpace

SPACE = SearchSpace(params={f"x{i}": FloatParam(low=0.0, high=1.0) for i in range(6)})
LAST = 27


def scheduled_study(n: int, seed: int) -> list[TrialRecord]:
    """``n`` trials stopped where ASHA with factor 3 stops them, in proportion."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        config = {k: float(rng.uniform()) for k in SPACE.params}
        final = sum((v - 0.6) ** 2 for v in config.values()) + float(rng.normal(0, 0.01))
        u = rng.uniform()
        stop = 3 if u < 2 / 3 else 9 if u < 8 / 9 else LAST
        curve = {s: final + 0.3 * (LAST / s) ** 0.6 - 0.3 for s in range(1, stop + 1)}
        done = stop == LAST
        records.append(
            TrialRecord(
                number=i,
                config=config,
                state="complete" if done else "pruned",
                value=curve[LAST] if done else None,
                curve=curve,
            )
        )
    return records


def seconds(records: list[TrialRecord], most: int) -> float:
    cap, fidelity.MAX_POINTS = fidelity.MAX_POINTS, most
    try:
        with one_thread():
            began = time.perf_counter()
            fidelity.proposal_over_steps(SPACE, records, random.Random(0))
            return time.perf_counter() - began
    finally:
        fidelity.MAX_POINTS = cap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", default="150,500,1000,2000", help="comma-separated study sizes")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    seconds(scheduled_study(30, seed=0), fidelity.MAX_POINTS)  # torch's first call, timed by neither
    print(f"cap: {fidelity.MAX_POINTS} points\n")
    print("| trials | points | uncapped (s) | capped (s) | ratio |")
    print("|---|---|---|---|---|")
    for n in (int(t) for t in args.trials.split(",")):
        records = scheduled_study(n, seed=n)
        data = fidelity.fidelity_points(records, "minimize", most=10**9)
        points = len(data[0]) if data else 0
        uncapped, capped = [], []
        for _ in range(args.repeats):  # alternated, so that a noisy neighbour slows both alike
            uncapped.append(seconds(records, 10**9))
            capped.append(seconds(records, fidelity.MAX_POINTS))
        u, c = statistics.median(uncapped), statistics.median(capped)
        print(f"| {n} | {points} | {u:.2f} | {c:.2f} | {u / c:.1f} |", flush=True)


if __name__ == "__main__":
    main()
