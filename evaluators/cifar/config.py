"""What one CIFAR training run needs: plain data, importable without torch (the CLI builds its flags from it)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ARCHS", "OPTIMIZERS", "PRECISIONS", "TrainConfig"]

ARCHS = ("resnet9", "vit")
OPTIMIZERS = ("sgd", "adam", "sgd_momentum", "adamw")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    """Everything one run needs. ``device=None`` picks cuda, then mps, then cpu."""

    arch: str = "resnet9"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    train_batch_size: int = 128
    eval_batch_size: int = 512
    num_train_epochs: int = 20  # the reference's: its epochs are the steps a study's scheduler stops trials at
    max_train_batches: int | None = None
    max_eval_batches: int | None = None
    seed: int = 0
    dataset_dir: str = "data"
    val_size: int = 5000
    subset: int | None = None
    device: str | None = None
    compile: bool = False
    precision: str = "auto"  # "auto": bf16 autocast on CUDA and on CPUs with native bf16, else fp32
