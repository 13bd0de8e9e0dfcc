"""Is Optuna's torch Gaussian process fast enough for learning from sources? Measured against the numpy one it
replaced (``benchmarks/_numpy_gp.py``, ``agent/strategies/_gp.py`` until fa91d4f), in the same run.

    python benchmarks/gp_speed.py                 # every scenario, 7 repeats
    python benchmarks/gp_speed.py --repeats 3     # a quick look

The code timed is the package's own: :class:`~agent.strategies.transfer.TransferSurrogate` with its models
fitted by either Gaussian process (``agent.strategies._rgpe.fit_model`` builds them; this script swaps the class
it fits with), everything else alike. On an HPOBench table (kc1: five grids), sources of 30 or 200 trials at
random configurations (their values the table's true error), this study's results at 10 or 30:

- **sources fit**: the sources' models, fitted once per study (``TransferSurrogate.models``);
- **transfer proposal**: one ``propose_weighted`` with the models already fitted: this study's model, RGPE's
  weights (256 joint posterior draws per source at this study's results, leave-one-out of its own model), and
  expected improvement over a pool of some 600-900 configurations, refined once;
- **bo proposal**: ``bo`` without sources, Optuna's ``GPSampler`` (its own torch model and acquisition
  optimizer, on one thread as ``SurrogateModel`` runs it; no numpy counterpart runs in the package), beside the
  transfer engine's GP and expected improvement on this study's results alone with each model
  (``maximize_ei`` with one member).

BLAS and torch run on one thread, as the transfer path runs them (:func:`agent._optuna.one_thread`). Each case
alternates the two models ``--repeats`` times; the numbers are medians, and the ratio is torch over numpy. The
rule it decides (issue 26): Optuna's model everywhere, unless a transfer proposal with it is more than ~3x
slower and more than ~0.5 s, in which case one model of the project's serves every path.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from _numpy_gp import GaussianProcess as NumpyGP  # noqa: E402

import agent.strategies._rgpe as rgpe  # noqa: E402
from agent._optuna import GaussianProcess, one_thread  # noqa: E402
from agent.records import SourceData, TrialRecord  # noqa: E402
from agent.strategies.surrogate import SurrogateModel  # noqa: E402
from agent.strategies.transfer import TransferSurrogate  # noqa: E402
from agent.tasks import Task, build_task  # noqa: E402

SCENARIOS = [(1, 30, 10), (7, 30, 10), (7, 30, 30), (7, 200, 10), (7, 200, 30)]  # sources, their trials, ours
SLOWER, SECONDS = 3.0, 0.5  # the rule's bounds


class _Numpy:
    """The numpy model behind the interface ``_rgpe.fit_model`` calls (``GaussianProcess.fit``)."""

    @staticmethod
    def fit(x: Any, y: Any, is_categorical: Any) -> NumpyGP:
        return NumpyGP(x, y, is_categorical)


MODELS: dict[str, Any] = {"torch": GaussianProcess, "numpy": _Numpy}


@contextmanager
def fitting_with(name: str) -> Iterator[None]:
    before = rgpe.GaussianProcess
    rgpe.GaussianProcess = MODELS[name]
    try:
        yield
    finally:
        rgpe.GaussianProcess = before


def sources(task: Task, k: int, n: int) -> list[SourceData]:
    out = []
    for i in range(k):
        rng = random.Random(100 + i)
        configs = [task.space.sample(rng) for _ in range(n)]
        assert task.true_error is not None
        out.append(SourceData(f"s{i}", tuple(configs), tuple(task.true_error(c) for c in configs)))
    return out


def study(task: Task, n: int) -> list[TrialRecord]:
    rng = random.Random(0)
    configs = [task.space.sample(rng) for _ in range(n)]
    assert task.true_error is not None
    return [TrialRecord(number=i, config=c, state="complete", value=task.true_error(c)) for i, c in enumerate(configs)]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def case(label: str, run: Callable[[str, int], float], repeats: int) -> dict[str, float]:
    """``run(model, repeat)``'s seconds, alternating the models; the medians and their ratio, printed."""
    times: dict[str, list[float]] = {name: [] for name in MODELS}
    for r in range(repeats):
        for name in MODELS:
            times[name].append(run(name, r))
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratio = medians["torch"] / medians["numpy"]
    print(f"| {label} | {medians['numpy'] * 1e3:.0f} | {medians['torch'] * 1e3:.0f} | {ratio:.2f} |", flush=True)
    return medians | {"ratio": ratio}


def transfer_cases(task: Task, repeats: int) -> list[dict[str, float]]:
    proposals = []
    for k, n_source, n_own in SCENARIOS:
        given, records = sources(task, k, n_source), study(task, n_own)
        if n_own == min(n for kk, ns, n in SCENARIOS if (kk, ns) == (k, n_source)):  # each set of sources once
            case(f"sources fit: {k} x {n_source} trials", functools.partial(_fit_sources, task, given), repeats)
        fitted = {}
        for name in MODELS:
            with fitting_with(name):
                fitted[name] = TransferSurrogate(given)
                fitted[name].models(task.space)
        label = f"transfer proposal: {k} x {n_source}, {n_own} own"
        proposals.append(case(label, functools.partial(_propose, task, fitted, records), repeats))
    return proposals


def _fit_sources(task: Task, given: list[SourceData], name: str, repeat: int) -> float:
    with fitting_with(name):
        return timed(lambda: TransferSurrogate(given).models(task.space))


def _propose(
    task: Task, fitted: dict[str, TransferSurrogate], records: list[TrialRecord], name: str, repeat: int
) -> float:
    with fitting_with(name):
        return timed(lambda: fitted[name].propose_weighted(task.space, records, random.Random(repeat)))


def bo_cases(task: Task, repeats: int) -> None:
    for n_own in (10, 30):
        records = study(task, n_own)
        medians = case(f"bo engine: GP + EI, {n_own} own", functools.partial(_engine, task, records), repeats)
        sampler = statistics.median(
            timed(functools.partial(SurrogateModel().propose, task.space, records, random.Random(r)))
            for r in range(repeats)
        )
        print(
            f"| bo proposal: GPSampler, {n_own} own | — | {sampler * 1e3:.0f} | "
            f"{sampler / medians['numpy']:.2f} (over the numpy engine) |",
            flush=True,
        )


def _engine(task: Task, records: list[TrialRecord], name: str, repeat: int) -> float:
    """This study's model and expected improvement alone (the transfer engine without sources)."""

    def once() -> None:
        with fitting_with(name), one_thread():
            own = TransferSurrogate([])._fit(task.space, records, "minimize")[1]
            assert own is not None
            taken = {task.space.key(t.config) for t in records}
            rgpe.maximize_ei(task.space, [(own, 1.0)], own, random.Random(repeat), taken)

    return timed(once)


def torch_import() -> float:
    """Seconds a fresh process takes to import torch (what the transfer path now pays once, where bo paid it)."""
    code = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task = build_task("hpobench-kc1")
    for name in MODELS:  # load scipy and torch before anything is timed
        with fitting_with(name):
            TransferSurrogate(sources(task, 1, 10)).propose_weighted(task.space, study(task, 5), random.Random(0))
    print("| case | numpy (ms) | torch (ms) | torch / numpy |\n|---|---|---|---|")
    with one_thread():
        proposals = transfer_cases(task, args.repeats)
    bo_cases(task, args.repeats)
    slowest = max(proposals, key=lambda m: m["torch"])
    too_slow = slowest["ratio"] > SLOWER and slowest["torch"] > SECONDS
    print(f"\nimporting torch in a fresh process: {torch_import():.2f} s (once per process)")
    print(
        f"slowest transfer proposal with torch: {slowest['torch']:.3f} s, {slowest['ratio']:.2f}x numpy's: "
        + (
            "too slow: one model of the project's for every path"
            if too_slow
            else f"not too slow (the rule: > {SLOWER:g}x and > {SECONDS:g} s): Optuna's model everywhere"
        )
    )
    print(f"median of ratios, transfer proposals: {np.median([m['ratio'] for m in proposals]):.2f}")


if __name__ == "__main__":
    main()
