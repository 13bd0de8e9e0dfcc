"""Wall time of one CIFAR (subset) study with ``--workers 1`` against ``--workers 2``, as a ratio.

Both run the same command (random search, the same seed, so the same configurations) on a synthetic
CIFAR-10 written to a temporary folder, each in a fresh study; only ``--workers`` differs. With 2 workers
each training runs in its own worker process with torch limited to half the cores, so on a machine with
few cores the ratio measures how well two half-width trainings overlap against one full-width training
at a time; on a machine with a GPU per worker (``--executor ray --gpus-per-trial 1``) it approaches 2.
Measured on a shared 2-core machine (another process busy on one core): torch's default two intra-op
threads collapse under that contention (``--workers 1``: 69 s against 14 s for ``--workers 2``, "4.9x"),
while each of the two workers runs with one thread. With ``--omp-threads 1`` for both: 10.0 s against
14.1 s, 0.71x: two workers on two busy cores gain nothing here, and each worker process pays for importing
torch. Read the ratio with ``--omp-threads`` set, on a machine with a core (or a GPU) per worker.

    python benchmarks/workers.py --budget 4 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evaluators.cifar.synthetic import write_synthetic_cifar

ROOT = Path(__file__).resolve().parents[1]


def run_study(workers: int, data: Path, save: Path, args: argparse.Namespace) -> float:
    argv = ["--task", "cifar-resnet9", "--strategy", "random", "--budget", str(args.budget), "--seed", "0"]
    argv += ["--dataset_dir", str(data), "--save_dir", str(save), "--workers", str(workers), "--quiet"]
    argv += ["--subset", str(args.subset), "--val_size", str(args.subset // 4), "--no-final-test"]
    argv += ["--num_train_epochs", str(args.epochs), "--max_train_batches", str(args.batches)]
    argv += ["--max_eval_batches", "2", "--search_space", str(save.parent / "space.yaml")]
    started = time.perf_counter()
    env = {**os.environ, **({"OMP_NUM_THREADS": str(args.omp_threads)} if args.omp_threads else {})}
    done = subprocess.run([sys.executable, "-m", "agent", *argv], cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"--workers {workers} failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=4, help="trials per study (default: 4)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per trial (default: 1)")
    p.add_argument("--batches", type=int, default=6, help="training batches per epoch (default: 6)")
    p.add_argument("--subset", type=int, default=1024, help="training images (default: 1024)")
    p.add_argument(
        "--omp-threads",
        type=int,
        default=0,
        help="set OMP_NUM_THREADS for both runs (default: unset; torch then uses every core in each process)",
    )
    p.add_argument("--repeats", type=int, default=2, help="runs of each, alternating; the best is kept (default: 2)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_cifar(root / "data", n_train=args.subset + args.subset // 4 + 16, n_test=64, seed=0)
        # A fixed batch size: both runs do the same work whatever configurations they draw.
        space = "learning_rate: {type: float, low: 1.0e-4, high: 0.1, log: true}\n"
        space += "train_batch_size: {type: categorical, choices: [64]}\n"
        (root / "space.yaml").write_text(space)
        times: dict[int, list[float]] = {1: [], 2: []}
        for r in range(args.repeats):  # alternate, so a busy moment on a shared machine hits both
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                times[workers].append(run_study(workers, root / "data", root / f"w{workers}-{r}", args))
        one, two = min(times[1]), min(times[2])
        print(f"all runs: {times}")
    print(f"cores: {os.cpu_count()}; budget {args.budget}, {args.epochs} epoch(s) of {args.batches} batches")
    print(f"--workers 1: {one:.1f} s")
    print(f"--workers 2: {two:.1f} s")
    print(f"speed-up (workers 1 / workers 2): {one / two:.2f}x")


if __name__ == "__main__":
    main()
