"""Per-trial overhead of a study: ``python -m agent`` against Optuna's own ``study.optimize``, same storage.

A random study on hpobench-kc1 (a table lookup per trial, so what is timed is the machinery around it), run
as a whole process both ways, side by side in one run:

- ours: ``python -m agent --task hpobench-kc1 --strategy random --budget N --quiet`` (a new SQLite study);
- Optuna's: a process that builds the same table, opens the same kind of storage (SQLite through
  :func:`agent.study.open_storage`, so both get WAL and the same pragmas) and runs
  ``study.optimize(objective, n_trials=N)`` with a ``RandomSampler``.

Each size runs ``--repeats`` times, the two alternating; the ratio is of the medians of whole-process wall
time (imports, table load and Python start included, as a user would wait for it). Usage::

    python benchmarks/overhead.py                     # 400 and 1000 trials, 3 repeats
    python benchmarks/overhead.py --trials 400 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OPTUNA_OWN = """
import sys
import optuna
from agent.study import open_storage
from evaluators.tabular import TabularBenchmark

optuna.logging.set_verbosity(optuna.logging.WARNING)
n, url = int(sys.argv[1]), sys.argv[2]
bench = TabularBenchmark("hpobench", "kc1", seed=0)
space = {p.name: list(p.choices) for p in bench.params}

def objective(trial):
    return bench.evaluate({k: trial.suggest_categorical(k, v) for k, v in space.items()}).value

study = optuna.create_study(storage=open_storage(url), sampler=optuna.samplers.RandomSampler(seed=0))
study.optimize(objective, n_trials=n)
assert len(study.trials) == n
"""


def _timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(trials: int, repeats: int) -> tuple[float, float]:
    """Median seconds of (ours, Optuna's own) for a study of ``trials`` trials."""
    ours, own = [], []
    for i in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            ours.append(
                _timed(
                    [
                        sys.executable,
                        "-m",
                        "agent",
                        "--task",
                        "hpobench-kc1",
                        "--strategy",
                        "random",
                        "--budget",
                        str(trials),
                        "--save_dir",
                        f"{tmp}/ours",
                        "--quiet",
                    ]
                )
            )
            url = f"sqlite:///{tmp}/own.db"
            own.append(_timed([sys.executable, "-c", OPTUNA_OWN, str(trials), url]))
        print(f"  {trials} trials, run {i + 1}: ours {ours[-1]:.2f} s, Optuna's own {own[-1]:.2f} s", flush=True)
    return statistics.median(ours), statistics.median(own)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", default="400,1000", help="study sizes, comma-separated (default: 400,1000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, alternating (default: 3)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.trials.split(",")]
    ratios = {}
    for n in sizes:
        ours, own = measure(n, args.repeats)
        ratios[n] = ours / own
        print(
            f"{n} trials: ours {ours:.2f} s ({1000 * ours / n:.1f} ms a trial), Optuna's own {own:.2f} s "
            f"({1000 * own / n:.1f} ms a trial): ratio {ratios[n]:.2f}",
            flush=True,
        )
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        print(f"ratio at {last} minus ratio at {first}: {ratios[last] - ratios[first]:+.2f}")


if __name__ == "__main__":
    main()
