"""The reference's training flags (underscored, as in its ``cifar/train.py``) and their TrainConfig.

Every flag defaults to ``None`` so a caller can tell which were given; only those override the
``TrainConfig`` defaults. ``--seed`` and ``--save_dir`` belong to the caller and are not read here.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

from evaluators.cifar.config import ARCHS, OPTIMIZERS, TrainConfig

__all__ = ["TRAINING_FLAGS", "add_training_arguments", "train_config_from_args"]

TRAINING_FLAGS = (
    "arch",
    "train_batch_size",
    "eval_batch_size",
    "learning_rate",
    "weight_decay",
    "label_smoothing",
    "optimizer",
    "num_train_epochs",
    "max_train_batches",
    "max_eval_batches",
    "dataset_dir",
    "subset",
    "val_size",
    "device",
    "compile",
)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the CIFAR training flags to ``parser`` (in their own argument group)."""
    defaults = TrainConfig()
    group = parser.add_argument_group("CIFAR-10 training")

    def add(flag: str, kind: Callable[[str], Any], text: str, unset: str = "", **kwargs: Any) -> None:
        """``unset``: what the help says is the default where TrainConfig's is None."""
        default = getattr(defaults, flag)
        shown = unset if default is None else default
        group.add_argument(f"--{flag}", type=kind, default=None, help=f"{text} (default: {shown})", **kwargs)

    add("arch", str, "network", choices=ARCHS)
    add("train_batch_size", int, "batch size for training")
    add("eval_batch_size", int, "batch size for evaluation")
    add("learning_rate", float, "peak learning rate of the warm-up/linear-decay schedule")
    add("weight_decay", float, "weight decay (L2 in the loss for sgd/adam, decoupled for adamw)")
    add("label_smoothing", float, "label smoothing of the training loss")
    add("optimizer", str.lower, "optimizer", choices=OPTIMIZERS)
    add("num_train_epochs", int, "epochs to train (in a study, the steps at which a lagging run is stopped)")
    add("max_train_batches", int, "at most this many training batches per epoch (quick runs)", "all")
    add("max_eval_batches", int, "at most this many evaluation batches (quick runs)", "all")
    add("dataset_dir", str, "folder holding (or to download) cifar-10-batches-py")
    add("subset", int, "train on the first N training images only (quick CPU studies)", "all")
    add("val_size", int, "training images held out for validation")
    add("device", str, "cuda, cuda:1, mps or cpu", "the best present: cuda, then mps, then cpu")
    group.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"torch.compile the model (default: {'on' if defaults.compile else 'off'})",
    )


def train_config_from_args(ns: argparse.Namespace, **overrides: Any) -> TrainConfig:
    """A TrainConfig from the flags given in ``ns``; ``overrides`` (e.g. ``seed=``, a trial's params) win.

    An unknown override name raises ``TypeError``.
    """
    given = {name: getattr(ns, name) for name in TRAINING_FLAGS if getattr(ns, name, None) is not None}
    return dataclasses.replace(TrainConfig(), **(given | overrides))
