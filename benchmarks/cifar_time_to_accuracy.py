"""Time to a target accuracy on CIFAR-10, with the default early stopping and without, same strategy, same seeds.

The prepared script for a GPU machine (issue 28): each arm is the main command as a user runs it
(``python -m agent --task cifar-resnet9 ...``, in this process), one study per arm and seed, one worker. The
``scheduled`` arm leaves ``--pruner`` at its default; the ``full`` arm gives ``--pruner none``. Read back from
each study's storage: when the first trial whose validation error is at most ``1 - target`` finished (seconds
since the study's first trial started), the seconds and epochs the study spent, and how many trials ran to the
end. Printed: a line per arm and seed, then per seed the ratio full / scheduled of the time to the target.

    python benchmarks/cifar_time_to_accuracy.py --out runs/tta --target 0.90 --budget 30 --seeds 0 1 2 \\
        --dataset_dir data/cifar10 -- --num_train_epochs 24 --device cuda

Everything after ``--`` goes to the main command as it is (training flags). ``--tiny`` writes a synthetic
CIFAR-10 folder and trains a few batches per epoch on the CPU: what the tests run, so the script is known to
work before a GPU is lent. Resumable: a study that is there is resumed (its budget already spent: read only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna

from agent.cli import main as run_agent
from evaluators.cifar.synthetic import write_synthetic_cifar

ARMS = {"scheduled": [], "full": ["--pruner", "none"]}
TINY = ["--subset", "256", "--val_size", "128", "--max_train_batches", "2", "--max_eval_batches", "2"]
TINY += ["--num_train_epochs", "3", "--train_batch_size", "64", "--device", "cpu", "--no-final-test"]
#: The reference space with batches that fit --tiny's 256 images twice (a batch of 512 is a failed trial there).
TINY_SPACE = {
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "train_batch_size": {"type": "categorical", "choices": [32, 64]},
    "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "label_smoothing": {"type": "float", "low": 0.0, "high": 0.2},
}


@dataclass(frozen=True)
class ArmResult:
    arm: str
    seed: int
    trials: int
    full_trials: int
    pruned: int
    seconds: float
    epochs: int
    #: Seconds from the study's first trial start to the end of the first trial at the target; None: not reached.
    to_target_s: float | None


def read_arm(storage: str, study_name: str, arm: str, seed: int, target_error: float) -> ArmResult:
    """What one study spent, and when it first held a model at the target."""
    trials = [t for t in optuna.load_study(study_name=study_name, storage=storage).trials if t.datetime_start]
    start = min(t.datetime_start for t in trials if t.datetime_start is not None)
    seconds = epochs = full = pruned = 0
    reached: float | None = None
    for t in sorted(trials, key=lambda t: t.datetime_complete or t.datetime_start or start):
        if t.datetime_complete is None or t.datetime_start is None:
            continue
        seconds += (t.datetime_complete - t.datetime_start).total_seconds()
        epochs += len(t.intermediate_values) or 1
        full += t.state == optuna.trial.TrialState.COMPLETE
        pruned += t.state == optuna.trial.TrialState.PRUNED
        errors = [*t.intermediate_values.values(), *([t.value] if t.value is not None else [])]
        if reached is None and errors and min(errors) <= target_error:
            reached = (t.datetime_complete - start).total_seconds()
    return ArmResult(arm, seed, len(trials), full, pruned, round(seconds, 1), epochs, reached)


def run(args: argparse.Namespace, training: Sequence[str]) -> list[ArmResult]:
    results = []
    for seed in args.seeds:
        for arm, flags in ARMS.items():
            save = args.out / f"{arm}-seed{seed}"
            argv = ["--task", "cifar-resnet9", "--strategy", args.strategy, "--budget", str(args.budget)]
            argv += ["--seed", str(seed), "--save_dir", str(save), "--quiet", *flags, *training]
            code = run_agent(argv)
            if code != 0:
                raise SystemExit(f"{arm} seed {seed}: the study exited {code} (see {save / 'events.jsonl'})")
            name = f"cifar-resnet9-{args.strategy}-seed{seed}"
            results.append(read_arm(f"sqlite:///{save / 'study.db'}", name, arm, seed, 1.0 - args.target))
    return results


def table(results: Sequence[ArmResult]) -> list[str]:
    """A line per study, then per seed the ratio of the times to the target (full / scheduled)."""
    lines = ["arm        seed  trials  full  stopped  epochs  seconds  to target (s)"]
    for r in results:
        reached = "not reached" if r.to_target_s is None else f"{r.to_target_s:.1f}"
        lines.append(
            f"{r.arm:<10} {r.seed:>4}  {r.trials:>6}  {r.full_trials:>4}  {r.pruned:>7}  {r.epochs:>6}  "
            f"{r.seconds:>7.1f}  {reached}"
        )
    by = {(r.arm, r.seed): r for r in results}
    for seed in sorted({r.seed for r in results}):
        full, scheduled = by.get(("full", seed)), by.get(("scheduled", seed))
        if full and scheduled and full.to_target_s and scheduled.to_target_s:
            lines.append(
                f"seed {seed}: full / scheduled time to target = {full.to_target_s / scheduled.to_target_s:.2f}"
            )
        else:
            lines.append(f"seed {seed}: the target was not reached by both arms; no ratio")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    training = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--target", type=float, default=0.9, help="validation accuracy to reach (default: 0.9)")
    parser.add_argument("--budget", type=int, default=30, help="trials per study (default: 30)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategy", default="bo", help="the strategy of both arms (default: bo)")
    parser.add_argument("--dataset_dir", type=Path, help="CIFAR-10 folder (cifar-10-batches-py inside)")
    parser.add_argument("--tiny", action="store_true", help="synthetic data, a few batches per epoch, CPU")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.tiny:
            write_synthetic_cifar(Path(tmp), n_train=1500, n_test=200, seed=0)
            space = Path(tmp) / "space.json"
            space.write_text(json.dumps(TINY_SPACE))
            training = [*TINY, "--search_space", str(space), *training]
            args.dataset_dir = Path(tmp)
        if args.dataset_dir is not None:
            training = ["--dataset_dir", str(args.dataset_dir), *training]
        results = run(args, training)
    lines = table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    (args.out / "results.md").write_text("```\n" + "\n".join(lines) + "\n```\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
