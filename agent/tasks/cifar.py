"""CIFAR-10 training tasks (``cifar-resnet9``, ``cifar-vit``) and what they add around a study: the reference
code's training flags, the ``train`` command (one run with explicit hyperparameters), the duration hint on a
CPU, and the single test-set evaluation of the best configuration after the study. torch loads only when a
CIFAR task is built or its command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from agent.errors import UserError
from agent.space import SearchSpace
from evaluators.base import SetupError
from evaluators.cifar.options import add_training_arguments, train_config_from_args

from .base import AfterStudy, BuiltinFactory, DurationHint, ProgressLines, Task, TaskCommand, TaskFlags, TaskInfo

if TYPE_CHECKING:
    from tools.train_cifar import TrainCifar

__all__ = ["CIFAR_SPACE", "COMMANDS", "FLAGS", "TASKS"]

# The reference code's search space.
CIFAR_SPACE = SearchSpace.from_dict(
    {
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "train_batch_size": {"type": "categorical", "choices": [32, 64, 128, 256, 512]},
        "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "label_smoothing": {"type": "float", "low": 0.0, "high": 0.2},
    }
)
_NETS = {
    "resnet9": "a ResNet-9 (a small residual convolutional network)",
    "vit": "a Vision Transformer (patch 4, 6 layers, 8 heads, width 512)",
}


def _add_flags(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser)
    parser.add_argument(
        "--final-test",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="CIFAR tasks: after the study, retrain the best configuration and score the test set (default: on)",
    )


def _factory(arch: str) -> BuiltinFactory:
    def build(seed: int, space: SearchSpace | None, options: Mapping[str, Any]) -> Task:
        from evaluators.cifar.train import resolve_device
        from tools.train_cifar import TrainCifar

        base = train_config_from_args(argparse.Namespace(**options), arch=arch, seed=seed)
        space = space or CIFAR_SPACE
        try:
            tool = TrainCifar(base, space)
        except ValueError as exc:
            raise UserError(f"--search_space: {exc}") from exc
        epochs = f"{base.num_train_epochs} epoch{'s' if base.num_train_epochs != 1 else ''}"
        description = (
            f"Training {_NETS[arch]} from scratch on CIFAR-10 image classification (10 classes, 32x32 "
            f"colour images) for {epochs}, with a learning rate that warms up linearly then decays linearly to "
            f"zero, random-crop and flip augmentation. The score is the error rate on a held-out validation "
            "split of the training images."
        )
        hint = None
        if resolve_device(base.device).type == "cpu":
            hint = DurationHint(
                where="on CPU",
                shorten="--subset N (train on N images, e.g. --subset 5000) or --num_train_epochs N (fewer "
                "epochs), or a GPU (--device cuda)",
            )
        return Task(
            name=f"cifar-{arch}",
            family="cifar",
            description=description,
            space=space,
            template="task_cifar",
            tool=tool,
            metric="val_error",
            duration_hint=hint,
            after_study=functools.partial(_final_test, tool),
        )

    return build


async def _final_test(tool: TrainCifar, study: AfterStudy) -> None:
    """Retrain the best configuration and score the test set once (tuning never sees the test set)."""
    from evaluators.cifar.train import evaluate_test

    best = study.best
    if best is None or not study.options.get("final_test", True):
        return
    done = study.meta.get("final_test")
    if isinstance(done, dict) and done.get("trial") == best.number:
        study.say(f"test error of the best configuration (trial #{best.number}): {done['test_error']:.4f}")
        return
    study.say(f"training the best configuration (trial #{best.number}) once more to score the test set...")
    cfg = tool.config_for(best.config)
    progress = None if study.progress is None else study.progress("final run")
    result = await anyio.to_thread.run_sync(evaluate_test, cfg, progress, abandon_on_cancel=True)
    if result.state != "complete" or result.value is None:
        study.say(f"the final test run failed: {result.error}")
        return
    study.set_meta("final_test", {"trial": best.number, "test_error": result.value, **result.metrics})
    study.say(f"test error of the best configuration (trial #{best.number}): {result.value:.4f}")


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument(
        "--save_dir", "--save-dir", dest="save_dir", default="runs/train", help="where metrics.json goes"
    )
    parser.add_argument("--test", action="store_true", help="score the test set instead of the validation split")


def _train(args: argparse.Namespace, lines: ProgressLines) -> int:
    """One training run with the reference code's flags; writes SAVE_DIR/metrics.json."""
    from evaluators.cifar.data import CifarNotFoundError
    from evaluators.cifar.train import evaluate_test, resolve_device, train

    cfg = train_config_from_args(args, seed=args.seed)
    progress = lines(f"[{cfg.arch} {resolve_device(cfg.device)}]")
    try:
        result = evaluate_test(cfg, progress) if args.test else train(cfg, on_progress=progress)
    except CifarNotFoundError as exc:
        raise UserError(f"{exc} (--dataset_dir)") from exc
    except SetupError as exc:
        raise UserError(str(exc)) from exc
    save_dir = Path(args.save_dir)
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
        body = {
            "config": dataclasses.asdict(cfg),
            "state": result.state,
            "value": result.value,
            "error": result.error,
            "metrics": result.metrics,
        }
        (save_dir / "metrics.json").write_text(json.dumps(body, indent=2, default=str))
    except OSError as exc:
        raise UserError(f"--save_dir {save_dir}: cannot write metrics.json ({exc.strerror})") from exc
    split = "test" if args.test else "validation"
    if result.state != "complete":
        print(f"training failed: {result.error}", file=sys.stderr)
        return 1
    print(f"{split} error {result.value:.4f}; metrics in {save_dir / 'metrics.json'}")
    return 0


TASKS = {
    f"cifar-{arch}": (
        TaskInfo(
            f"cifar-{arch}",
            "cifar",
            f"CIFAR-10, {net}: tune optimizer, learning rate, batch size, weight decay, label smoothing "
            "(real training runs)",
        ),
        _factory(arch),
    )
    for arch, net in _NETS.items()
}
FLAGS = TaskFlags(_add_flags)
COMMANDS = (
    TaskCommand(
        name="train",
        help="one CIFAR-10 training run with explicit hyperparameters",
        description="One CIFAR-10 training run with the reference code's flags; writes SAVE_DIR/metrics.json.",
        add_arguments=_add_train_arguments,
        run=_train,
    ),
)
