"""One CIFAR-10 training run, as the reference code trains (arXiv 2312.04528, ``cifar/train.py``), made fast.

Kept from the reference: the models, ``sgd`` (no momentum) and ``adam`` (coupled L2 through torch's
``weight_decay``), label smoothing in the training loss only, drop_last batches, and the per-batch schedule
``np.interp(step, [0, peak, total], [0, 1, 0])`` with ``peak = (num_epochs // 5) * steps_per_epoch``.
Changed: the data are uint8 tensors on the training device, augmented in batches (``data.py``); validation
is held out of the training images (the reference scored its "valid" split, the test set); bf16 autocast
and channels-last where they pay; a diverging run or an out-of-memory error comes back as a failed
``EvalResult`` with a reason instead of an exception; a setup that would fail every run the same way (data
too small for the split, an unknown arch) raises :class:`~evaluators.base.SetupError`. Where a run is goes
to an ``on_progress`` callback as :class:`~evaluators.base.Progress` (no printing here). With a
``checkpoint`` path, the run's whole state (model, optimizer, schedule, random generators, counters) is
written there after every epoch, and a run that finds one continues after its last epoch instead of starting
over (a trial re-run after a kill).
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.base import EvalResult, Progress, SetupError
from evaluators.cifar.config import ARCHS, OPTIMIZERS, PRECISIONS, TrainConfig
from evaluators.cifar.data import ImageSet, eval_batches, load_cifar10, num_train_batches, train_batches
from evaluators.cifar.models import build_model

__all__ = [
    "ARCHS",
    "OPTIMIZERS",
    "ProgressCallback",
    "TrainConfig",
    "evaluate_test",
    "lr_factor",
    "make_optimizer",
    "resolve_device",
    "train",
    "use_bf16",
]

EXPLODED_LOSS = 1e4  # a loss above this, or above 100x the first batch's loss, ends the run
EXPLOSION_FACTOR = 100.0
PROGRESS_INTERVAL_S = 1.0  # the least time between two reports within an epoch

ProgressCallback = Callable[[Progress], None]


def resolve_device(name: str | None = None) -> torch.device:
    """``name`` as a device, or the best one present: cuda, then mps, then cpu."""
    if name is not None:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    """Whether to train under bf16 autocast.

    "auto" says yes on CUDA, and on CPUs with AVX512-BF16 or AMX, where it measured 1.9x fp32 for ResNet-9
    (Sapphire Rapids, 2 cores); on other CPUs bf16 is emulated and slower, and MPS stays fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def lr_factor(step: int, *, steps_per_epoch: int, num_epochs: int) -> float:
    """The reference's multiplier of the learning rate before batch ``step`` (0-based).

    Linear from 0 to 1 over the first ``num_epochs // 5`` epochs, then linear to 0 at the end of training;
    with ``num_epochs < 5`` there is no warm-up and the first batch uses the full rate.
    """
    total = num_epochs * steps_per_epoch
    peak = (num_epochs // 5) * steps_per_epoch
    if step >= total:
        return 0.0
    if step < peak:
        return step / peak
    return (total - step) / (total - peak)


def make_optimizer(
    name: str, params: Iterable[nn.Parameter], learning_rate: float, weight_decay: float
) -> torch.optim.Optimizer:
    """``sgd`` and ``adam`` as the reference builds them; ``sgd_momentum`` (0.9, Nesterov) and ``adamw``."""
    key = name.lower()
    if key == "sgd":
        return torch.optim.SGD(params, lr=learning_rate, weight_decay=weight_decay)
    if key == "adam":
        return torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay)
    if key == "sgd_momentum":
        return torch.optim.SGD(params, lr=learning_rate, weight_decay=weight_decay, momentum=0.9, nesterov=True)
    if key == "adamw":
        return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def _limit_cpu_threads() -> None:
    # torch starts one thread per core it sees; in a container or under taskset fewer may be ours.
    if "OMP_NUM_THREADS" in os.environ or not hasattr(os, "sched_getaffinity"):
        return
    allowed = len(os.sched_getaffinity(0))
    if torch.get_num_threads() > allowed:
        torch.set_num_threads(allowed)


def _autocast(device: torch.device, bf16: bool) -> AbstractContextManager[object]:
    if not bf16:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class _LossWatch:
    """Checks training losses for NaN/Inf or explosion, a few batches at a time to spare GPU syncs."""

    def __init__(self, cfg: TrainConfig, every: int) -> None:
        self.cfg = cfg
        self.every = every
        self.first: float | None = None
        self.pending: list[torch.Tensor] = []
        self.total = 0.0
        self.count = 0

    def add(self, loss: torch.Tensor, epoch: int, batch: int) -> str | None:
        self.pending.append(loss.detach())
        return self.flush(epoch, batch) if len(self.pending) >= self.every else None

    def flush(self, epoch: int, last_batch: int) -> str | None:
        """Check the pending losses, the last of which was batch ``last_batch`` (1-based)."""
        if not self.pending:
            return None
        values = torch.stack(self.pending).float().cpu().tolist()
        self.pending.clear()
        for offset, value in enumerate(values):
            batch = last_batch - len(values) + 1 + offset
            if self.first is None:
                self.first = value
            if not math.isfinite(value):
                return self._reason(f"loss became {value} at epoch {epoch} batch {batch}")
            if value > EXPLODED_LOSS or value > EXPLOSION_FACTOR * self.first:
                return self._reason(
                    f"loss exploded to {value:.4g} at epoch {epoch} batch {batch} (first batch {self.first:.4g})"
                )
            self.total += value
            self.count += 1
        return None

    @property
    def running_mean(self) -> float | None:
        """The mean of this epoch's losses checked so far, or None before the first."""
        return self.total / self.count if self.count else None

    def take_mean(self) -> float:
        mean = self.total / max(self.count, 1)
        self.total, self.count = 0.0, 0
        return mean

    def _reason(self, what: str) -> str:
        c = self.cfg
        return (
            f"{what} with optimizer={c.optimizer}, learning_rate={c.learning_rate:g}, "
            f"train_batch_size={c.train_batch_size}: training diverged; a smaller learning_rate "
            "(or weight_decay) usually fixes this"
        )


@torch.no_grad()
def _evaluate(
    model: nn.Module,
    data: ImageSet,
    batch_size: int,
    max_batches: int | None,
    device: torch.device,
    bf16: bool,
) -> tuple[float, float]:
    """(mean cross-entropy without smoothing, error rate) over the batches scored."""
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    for images, labels in eval_batches(data, batch_size, max_batches=max_batches):
        with _autocast(device, bf16):
            logits = model(images).float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum")
        correct += (logits.argmax(1) == labels).sum()
        seen += int(labels.shape[0])
    if seen == 0:
        raise ValueError("no evaluation images: the split is empty or max_eval_batches is 0")
    return loss_sum.item() / seen, 1.0 - correct.item() / seen


class _Reports:
    """Sends :class:`Progress` to a callback: each epoch's end, and within an epoch at most once per interval."""

    def __init__(self, callback: ProgressCallback | None, epochs: int, started: float) -> None:
        self.callback = callback
        self.epochs = epochs
        self.started = started
        self.last = started

    def batch(self, epoch: int, batch: int, steps: int, images: int, epoch_start: float, loss: float | None) -> None:
        now = time.perf_counter()
        if self.callback is None or batch >= steps or now - self.last < PROGRESS_INTERVAL_S:
            return  # a whole ``done`` is left to the epoch's end
        self.last = now
        metrics = {"images_per_s": images / max(now - epoch_start, 1e-9)}
        if loss is not None:
            metrics["loss"] = loss
        self.callback(Progress(epoch - 1 + batch / steps, self.epochs, now - self.started, "epoch", metrics))

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        now = time.perf_counter()
        self.last = now
        if self.callback is not None:
            self.callback(Progress(epoch, self.epochs, now - self.started, "epoch", metrics))


def _run(
    cfg: TrainConfig,
    device: torch.device,
    on_epoch: Callable[[int, float], None] | None,
    score: Literal["val", "test"],
    on_progress: ProgressCallback | None = None,
    checkpoint: Path | None = None,
) -> EvalResult:
    started = time.perf_counter()
    if cfg.arch not in ARCHS:
        raise SetupError(f"unknown arch {cfg.arch!r} (--arch); choose one of {', '.join(ARCHS)}")
    if cfg.optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if cfg.num_train_epochs < 1:
        raise SetupError(f"--num_train_epochs must be at least 1, got {cfg.num_train_epochs}")
    bf16 = use_bf16(device, cfg.precision)
    if device.type == "cpu":
        _limit_cpu_threads()
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    splits = load_cifar10(cfg.dataset_dir, val_size=cfg.val_size, subset=cfg.subset, device=device)
    scored = splits.test if score == "test" else splits.val
    if len(scored) == 0:
        raise SetupError(f"nothing to score on: the {score} split is empty (--val_size {cfg.val_size})")
    steps = num_train_batches(len(splits.train), cfg.train_batch_size, cfg.max_train_batches)
    if steps == 0:
        return EvalResult.failed(
            f"train_batch_size={cfg.train_batch_size} is larger than the {len(splits.train)} training "
            "images (or max_train_batches is 0): no full batch to train on; use a smaller train_batch_size",
            device=str(device),
            epochs_run=0,
        )

    torch.manual_seed(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    model = build_model("vit" if cfg.arch == "vit" else "resnet9").to(device).to(memory_format=torch.channels_last)
    forward: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model) if cfg.compile else model
    optimizer = make_optimizer(cfg.optimizer, model.parameters(), cfg.learning_rate, cfg.weight_decay)
    epochs = cfg.num_train_epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch=steps, num_epochs=epochs)
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    watch = _LossWatch(cfg, every=1 if device.type == "cpu" else 16)
    reports = _Reports(on_progress, epochs, started)

    train_seconds, images_seen, train_loss = 0.0, 0, math.nan
    val_loss = val_error = math.nan
    done = 0
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"].cpu())
        torch.set_rng_state(saved["torch_rng"].cpu())
        done, watch.first = int(saved["epoch"]), saved["first_loss"]
        train_seconds, images_seen = float(saved["train_seconds"]), int(saved["images_seen"])
        train_loss, val_loss, val_error = saved["train_loss"], saved["val_loss"], saved["val_error"]
    for epoch in range(done + 1, epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        batch = 0
        for batch, (images, labels) in enumerate(
            train_batches(splits.train, cfg.train_batch_size, generator=generator, max_batches=steps), start=1
        ):
            with _autocast(device, bf16):
                logits = forward(images)
            loss = loss_fn(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            reason = watch.add(loss, epoch, batch)
            if reason is not None:
                return EvalResult.failed(reason, device=str(device), epochs_run=epoch - 1)
            if not watch.pending:  # just checked, so the device has caught up: the time and the loss are current
                reports.batch(epoch, batch, steps, batch * cfg.train_batch_size, epoch_start, watch.running_mean)
        reason = watch.flush(epoch, batch)
        if reason is not None:
            return EvalResult.failed(reason, device=str(device), epochs_run=epoch - 1)
        _sync(device)
        epoch_seconds = time.perf_counter() - epoch_start
        train_seconds += epoch_seconds
        images_seen += steps * cfg.train_batch_size
        train_loss = watch.take_mean()
        measured = {"loss": train_loss, "images_per_s": steps * cfg.train_batch_size / epoch_seconds}
        if on_epoch is not None or on_progress is not None or epoch == epochs:
            val_loss, val_error = (
                _evaluate(model, splits.val, cfg.eval_batch_size, cfg.max_eval_batches, device, bf16)
                if len(splits.val)
                else (math.nan, math.nan)
            )
            measured |= {"val_error": val_error, "val_loss": val_loss}
        measured["epoch_s"] = time.perf_counter() - epoch_start
        if checkpoint is not None:
            state: dict[str, Any] = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            state |= {"scheduler": scheduler.state_dict(), "generator": generator.get_state()}
            state |= {"torch_rng": torch.get_rng_state(), "epoch": epoch, "first_loss": watch.first}
            state |= {"train_seconds": train_seconds, "images_seen": images_seen, "train_loss": train_loss}
            _save(checkpoint, state | {"val_loss": val_loss, "val_error": val_error})
        reports.epoch(epoch, measured)
        if on_epoch is not None:
            on_epoch(epoch, val_error)

    metrics: dict[str, float | int | str] = {
        "train_loss": train_loss,
        "epochs_run": epochs,
        "train_seconds": train_seconds,
        "images_per_s": images_seen / train_seconds if train_seconds > 0 else 0.0,
        "device": str(device),
        "precision": "bf16" if bf16 else "fp32",
    }
    if len(splits.val):
        metrics |= {"val_error": val_error, "val_loss": val_loss}
    value = val_error
    if score == "test":
        test_loss, test_error = _evaluate(model, splits.test, cfg.eval_batch_size, cfg.max_eval_batches, device, bf16)
        metrics |= {"test_error": test_error, "test_loss": test_loss}
        value = test_error
    metrics["seconds"] = time.perf_counter() - started
    return EvalResult(value=value, metrics=metrics)


def _save(checkpoint: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint whole or not at all (a kill mid-write leaves the previous one)."""
    partial = checkpoint.with_name(checkpoint.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, checkpoint)


def _is_oom(exc: BaseException, device: torch.device) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return device.type == "mps" and isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _guarded(
    cfg: TrainConfig,
    on_epoch: Callable[[int, float], None] | None,
    score: Literal["val", "test"],
    on_progress: ProgressCallback | None,
    checkpoint: Path | None = None,
) -> EvalResult:
    device = resolve_device(cfg.device)
    try:
        return _run(cfg, device, on_epoch, score, on_progress, checkpoint)
    except RuntimeError as exc:  # torch.OutOfMemoryError is a RuntimeError
        if not _is_oom(exc, device):
            raise
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = (
            f"out of memory on {device} with arch={cfg.arch}, train_batch_size={cfg.train_batch_size}, "
            f"eval_batch_size={cfg.eval_batch_size}: try a smaller train_batch_size "
            f"(e.g. {max(cfg.train_batch_size // 2, 1)}). ({first_line})"
        )
    # Out of the except block, the traceback's frames (and their tensors) are gone: free the cache.
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
    return EvalResult.failed(reason, device=str(device))


def train(
    cfg: TrainConfig,
    on_epoch: Callable[[int, float], None] | None = None,
    on_progress: ProgressCallback | None = None,
    checkpoint: Path | None = None,
) -> EvalResult:
    """Train with ``cfg`` and score the held-out validation split: ``value`` is the validation error.

    ``on_epoch(epoch, val_error)`` runs after every epoch (each then scores the validation split); an
    exception it raises, such as a pruning signal, propagates. ``on_progress(Progress)`` runs at the end of
    every epoch (``done`` = the epoch; metrics loss, val_error, val_loss, images_per_s, epoch_s: each epoch
    then scores the validation split) and within an epoch at most once a second (``done`` fractional; loss
    so far, images_per_s; on a GPU only after a batch whose loss was checked, every 16th, so that the device
    has caught up with the clock), in the thread that trains. Metrics: val_error, val_loss, train_loss (mean
    training loss of the last epoch, smoothed as trained), epochs_run, seconds (the whole call),
    train_seconds, images_per_s (training only), device, precision. A diverging loss or running out of
    memory gives a failed result with the reason; a setup no run can use raises ``SetupError``; any other
    error is raised. ``checkpoint``: a file the run's state is written to after every epoch; a run that finds
    it there continues after the epoch it holds (the same ``cfg`` is the caller's to ensure).
    """
    return _guarded(cfg, on_epoch, "val", on_progress, checkpoint)


def evaluate_test(cfg: TrainConfig, on_progress: ProgressCallback | None = None) -> EvalResult:
    """Train with ``cfg`` as ``train`` does (the validation split still held out), then score the test set.

    For the final, best configuration only. ``value`` is the test error; metrics add test_error, test_loss.
    """
    return _guarded(cfg, None, "test", on_progress)
