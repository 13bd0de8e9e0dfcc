"""``train_cifar``: one training run of ResNet-9 or a ViT on CIFAR-10, scored on the validation split."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import anyio.to_thread

from agent.errors import UserError
from agent.space import Choice, SearchSpace
from evaluators.base import EvalResult, SetupError
from evaluators.cifar.data import CifarNotFoundError, check_dataset
from evaluators.cifar.train import TrainConfig, train

from .base import NO_TRIAL, EvaluationTool, TrialContext

__all__ = ["CHECKPOINT", "TrainCifar"]

#: The file in a trial's folder holding its training state after each epoch: a trial re-run after a kill (the
#: study adopts it) continues from there; removed once the trial has finished.
CHECKPOINT = "checkpoint.pt"


class _Stop(Exception):
    """Raised from the epoch callback when the study's pruner says the trial lags behind."""

    def __init__(self, epoch: int, val_error: float) -> None:
        super().__init__(f"pruned after epoch {epoch}")
        self.epoch = epoch
        self.val_error = val_error


class TrainCifar(EvaluationTool):
    """Trains with the fixed parts of ``base`` (epochs, batches, data, device) and the proposed hyperparameters."""

    name = "train_cifar"
    #: Training holds the GIL for long stretches: parallel trials on one machine run in worker processes.
    runs_in_subprocess: ClassVar[bool] = True
    #: The trial's folder holds its checkpoint (:data:`CHECKPOINT`) while it trains.
    needs_directory: ClassVar[bool] = True
    description = (
        "Train the network on CIFAR-10 with this configuration; returns the validation error rate "
        "(lower is better), the validation and training losses, and the training time."
    )

    def __init__(self, base: TrainConfig, space: SearchSpace) -> None:
        super().__init__(space)
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(space.params) - fields)
        if unknown:
            raise ValueError(f"train_cifar cannot set {unknown}; settable: {sorted(fields)}")
        self.base = base
        self.max_step = base.num_train_epochs  # one report per epoch: the study's scheduler may stop it

    def check_setup(self) -> None:
        """The data present (downloaded when missing and the network allows) and large enough for
        ``--val_size`` and ``--subset``, read from the files' labels; at least one epoch."""
        if self.base.num_train_epochs < 1:
            raise SetupError(f"--num_train_epochs must be at least 1, got {self.base.num_train_epochs}")
        try:
            check_dataset(self.base.dataset_dir, val_size=self.base.val_size, subset=self.base.subset)
        except CifarNotFoundError as exc:
            raise SetupError(f"{exc} (--dataset_dir)") from None

    def config_for(self, config: dict[str, Choice]) -> TrainConfig:
        return dataclasses.replace(self.base, **config)  # type: ignore[arg-type]

    async def evaluate(self, config: dict[str, Choice], trial: TrialContext = NO_TRIAL) -> EvalResult:
        """Train once. ``trial.report(epoch, val_error) -> stop`` runs after every epoch when given (early
        stopping): when it says stop, training ends and the result is ``pruned`` with the last validation error.
        ``trial.progress`` gets the epochs as they go (from the training thread). With a trial folder the state
        is kept there after every epoch (:data:`CHECKPOINT`), so a re-run of the trial after a kill continues
        from its last epoch; the file is removed when the trial ends."""
        cfg = self.config_for(config)
        report = trial.report
        checkpoint = None if trial.directory is None else trial.directory / CHECKPOINT

        def on_epoch(epoch: int, val_error: float) -> None:
            assert report is not None
            if report(epoch, val_error):
                raise _Stop(epoch, val_error)

        # Training holds no event-loop state; a worker thread keeps the loop (and Ctrl-C) responsive.
        try:
            result = await anyio.to_thread.run_sync(
                train, cfg, on_epoch if report is not None else None, trial.progress, checkpoint, abandon_on_cancel=True
            )
            _remove(checkpoint)
            return result
        except CifarNotFoundError as exc:  # not this trial's fault: stop the study, lose nothing
            raise UserError(f"{exc} (--dataset_dir)") from exc
        except _Stop as stop:
            _remove(checkpoint)
            return EvalResult(
                value=stop.val_error,
                state="pruned",
                metrics={"val_error": stop.val_error, "epochs_run": stop.epoch},
            )


def _remove(checkpoint: Path | None) -> None:
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
