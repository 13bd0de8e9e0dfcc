from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evaluators.base import Progress, SetupError
from evaluators.cifar import train as train_module
from evaluators.cifar.models import build_model
from evaluators.cifar.options import add_training_arguments, train_config_from_args
from evaluators.cifar.synthetic import write_synthetic_cifar
from evaluators.cifar.train import (
    TrainConfig,
    evaluate_test,
    lr_factor,
    make_optimizer,
    resolve_device,
    train,
    use_bf16,
)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar(root, n_train=300, n_test=60, seed=0)
    return root


@pytest.fixture
def cfg(dataset_dir: Path) -> TrainConfig:
    """One epoch of 240 training and 60 validation images; small, quiet, on the CPU."""
    return TrainConfig(
        num_train_epochs=1,
        dataset_dir=str(dataset_dir),
        val_size=60,
        train_batch_size=32,
        eval_batch_size=64,
        device="cpu",
    )


class _Patched(nn.Module):
    """The real ResNet-9 followed by a fault injected on the ``at``-th training forward."""

    def __init__(self, at: int, fault: str) -> None:
        super().__init__()
        self.net = build_model("resnet9")
        self.at, self.fault, self.calls = at, fault, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.at:
                if self.fault == "nan":
                    return out * math.nan
                if self.fault == "oom":
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
                raise ZeroDivisionError("a bug in the model")
        return out


def _patch_model(monkeypatch: pytest.MonkeyPatch, at: int, fault: str) -> None:
    monkeypatch.setattr(train_module, "build_model", lambda arch: _Patched(at, fault))


@pytest.mark.slow
def test_loss_falls_on_the_learnable_set(cfg: TrainConfig) -> None:
    seen: list[tuple[int, float]] = []
    short = dataclasses.replace(cfg, num_train_epochs=2, train_batch_size=60, learning_rate=2e-3)  # 8 steps
    result = train(short, on_epoch=lambda e, v: seen.append((e, v)))
    assert result.state == "complete", result.error
    m = result.metrics
    assert [e for e, _ in seen] == [1, 2] and seen[-1][1] == result.value == m["val_error"]
    # chance is ln 10 = 2.30 and an error of 0.9; the 0.2-scaled logits make the loss fall slowly
    assert float(m["val_loss"]) < 2.0 and float(m["train_loss"]) < 1.9
    assert float(m["val_error"]) < 0.5
    assert m["epochs_run"] == 2 and m["device"] == "cpu"
    assert float(m["images_per_s"]) > 0 and float(m["seconds"]) >= float(m["train_seconds"]) > 0
    assert math.isfinite(float(m["train_loss"]))


@pytest.mark.slow
def test_runs_are_seeded(cfg: TrainConfig) -> None:
    quick = dataclasses.replace(cfg, max_train_batches=2, max_eval_batches=1)
    a, b = train(quick), train(quick)
    assert a.metrics["val_loss"] == b.metrics["val_loss"]
    c = train(dataclasses.replace(quick, seed=1))
    assert c.metrics["val_loss"] != a.metrics["val_loss"]


def test_vit_run_completes(cfg: TrainConfig) -> None:
    result = train(dataclasses.replace(cfg, arch="vit", train_batch_size=16, max_train_batches=2, max_eval_batches=1))
    assert result.state == "complete", result.error
    assert 0.0 <= float(result.value or 0.0) <= 1.0


@pytest.mark.slow
def test_evaluate_test_scores_the_test_set(cfg: TrainConfig) -> None:
    result = evaluate_test(dataclasses.replace(cfg, max_train_batches=2))
    assert result.state == "complete"
    assert result.value == result.metrics["test_error"] and "test_loss" in result.metrics


def test_schedule_matches_the_reference_interp() -> None:
    for epochs, steps in [(10, 7), (5, 3), (3, 4), (1, 5)]:
        peak = (epochs // 5) * steps
        reference = np.interp(np.arange((epochs + 1) * steps), [0, peak, epochs * steps], [0, 1, 0])
        ours = [lr_factor(s, steps_per_epoch=steps, num_epochs=epochs) for s in range(len(reference))]
        np.testing.assert_allclose(ours, reference, atol=1e-12)
    assert lr_factor(0, steps_per_epoch=10, num_epochs=10) == 0.0
    assert lr_factor(10, steps_per_epoch=10, num_epochs=10) == 0.5
    assert lr_factor(20, steps_per_epoch=10, num_epochs=10) == 1.0
    assert lr_factor(60, steps_per_epoch=10, num_epochs=10) == 0.5
    assert lr_factor(0, steps_per_epoch=10, num_epochs=2) == 1.0  # no warm-up below 5 epochs
    assert lr_factor(15, steps_per_epoch=10, num_epochs=2) == 0.25


def test_optimizers() -> None:
    params = [nn.Parameter(torch.zeros(2))]
    sgd = make_optimizer("SGD", params, 0.1, 1e-4)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0
    assert sgd.defaults["weight_decay"] == 1e-4
    adam = make_optimizer("adam", params, 0.1, 1e-4)
    assert type(adam) is torch.optim.Adam and adam.defaults["weight_decay"] == 1e-4
    nesterov = make_optimizer("sgd_momentum", params, 0.1, 0.0)
    assert nesterov.defaults["momentum"] == 0.9 and nesterov.defaults["nesterov"]
    assert isinstance(make_optimizer("adamw", params, 0.1, 0.0), torch.optim.AdamW)
    with pytest.raises(ValueError, match="sgd_momentum"):
        make_optimizer("rmsprop", params, 0.1, 0.0)


@pytest.mark.slow
def test_huge_learning_rate_fails_with_a_reason(cfg: TrainConfig) -> None:
    result = train(dataclasses.replace(cfg, optimizer="sgd", learning_rate=1e6, max_train_batches=4))
    assert result.state == "fail" and result.value is None
    assert result.error is not None and "epoch 1 batch" in result.error and "learning_rate" in result.error


@pytest.mark.slow
def test_nan_loss_fails_naming_epoch_and_batch(cfg: TrainConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_model(monkeypatch, at=3, fault="nan")
    result = train(cfg)
    assert result.state == "fail"
    assert result.error is not None and "loss became nan at epoch 1 batch 3" in result.error
    assert result.metrics["epochs_run"] == 0


def test_out_of_memory_becomes_a_failed_result(cfg: TrainConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_model(monkeypatch, at=1, fault="oom")
    result = train(cfg)
    assert result.state == "fail"
    assert result.error is not None
    assert "out of memory" in result.error and "smaller train_batch_size" in result.error


def test_other_errors_are_raised(cfg: TrainConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_model(monkeypatch, at=1, fault="bug")
    with pytest.raises(ZeroDivisionError):
        train(cfg)


def test_batch_larger_than_the_training_set_fails(cfg: TrainConfig) -> None:
    result = train(dataclasses.replace(cfg, train_batch_size=512))
    assert result.state == "fail" and result.error is not None and "train_batch_size=512" in result.error


def test_unknown_names_are_errors(cfg: TrainConfig) -> None:
    with pytest.raises(ValueError, match="optimizer"):
        train(dataclasses.replace(cfg, optimizer="lion"))
    with pytest.raises(SetupError, match="--num_train_epochs"):
        train(dataclasses.replace(cfg, num_train_epochs=0))
    with pytest.raises(SetupError, match="--arch"):
        train(dataclasses.replace(cfg, arch="resnet50"))
    with pytest.raises(SetupError, match="--val_size 0"):
        train(dataclasses.replace(cfg, val_size=0))
    with pytest.raises(ValueError, match="precision"):
        use_bf16(torch.device("cpu"), "fp8")


def test_device_and_precision_choice() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in {"cuda", "mps", "cpu"}
    assert use_bf16(torch.device("cpu"), "fp32") is False
    assert use_bf16(torch.device("cpu"), "bf16") is True
    assert use_bf16(torch.device("cuda"), "auto") is True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save_dir", default="out")
    add_training_arguments(parser)
    return parser


def test_options_only_given_flags_override() -> None:
    ns = _parser().parse_args([])
    assert all(getattr(ns, f) is None for f in ("arch", "learning_rate", "compile", "subset"))
    assert train_config_from_args(ns) == TrainConfig()
    ns = _parser().parse_args(
        "--learning_rate 0.1 --optimizer SGD --train_batch_size 64 --max_train_batches 2 "
        "--dataset_dir /d --subset 100 --compile --seed 5 --save_dir x".split()
    )
    cfg = train_config_from_args(ns, seed=7)
    assert (cfg.learning_rate, cfg.optimizer, cfg.train_batch_size, cfg.max_train_batches) == (0.1, "sgd", 64, 2)
    assert (cfg.dataset_dir, cfg.subset, cfg.compile, cfg.seed) == ("/d", 100, True, 7)
    assert cfg.weight_decay == TrainConfig().weight_decay
    assert train_config_from_args(ns, learning_rate=0.5).learning_rate == 0.5
    assert train_config_from_args(argparse.Namespace()) == TrainConfig()
    with pytest.raises(TypeError):
        train_config_from_args(ns, nonsense=1)


def test_options_reject_unknown_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--optimizer", "rmsprop"])
    assert "sgd_momentum" in capsys.readouterr().err


@pytest.mark.slow
def test_progress_reports_each_epoch_and_within_epochs_at_a_bounded_pace(
    cfg: TrainConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each epoch's end (a whole ``done``, with the validation error), and within an epoch no more than the
    interval allows (here: every batch, the interval set to 0)."""
    monkeypatch.setattr(train_module, "PROGRESS_INTERVAL_S", 0.0)
    seen: list[Progress] = []
    short = dataclasses.replace(cfg, num_train_epochs=2, max_train_batches=3)  # 3 batches an epoch
    result = train(short, on_progress=seen.append)
    assert result.state == "complete", result.error
    assert [p.done for p in seen] == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    assert all(p.total == 2 and p.unit == "epoch" for p in seen)
    ends = [p for p in seen if p.done == int(p.done)]
    assert [set(p.metrics) for p in ends] == [{"loss", "val_error", "val_loss", "images_per_s", "epoch_s"}] * 2
    assert ends[-1].metrics["val_error"] == result.value
    inside = [p for p in seen if p.done != int(p.done)]
    assert all(set(p.metrics) == {"loss", "images_per_s"} and p.metrics["images_per_s"] > 0 for p in inside)
    assert [p.elapsed_s for p in seen] == sorted(p.elapsed_s for p in seen)
    assert seen[-1].eta_s == 0.0 and seen[0].eta_s is not None and seen[0].eta_s > 0


@pytest.mark.slow
def test_progress_within_an_epoch_is_throttled(cfg: TrainConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_module, "PROGRESS_INTERVAL_S", 3600.0)
    seen: list[Progress] = []
    train(dataclasses.replace(cfg, num_train_epochs=2, max_train_batches=3), on_progress=seen.append)
    assert [p.done for p in seen] == [1, 2]  # an hour between reports: only the epochs' ends


class _Killed(Exception):
    """Stands in for a kill of the training process after an epoch (its checkpoint written)."""


def test_a_run_killed_after_an_epoch_continues_from_its_checkpoint(cfg: TrainConfig, tmp_path: Path) -> None:
    quick = dataclasses.replace(cfg, num_train_epochs=3, max_train_batches=2, max_eval_batches=1)
    whole = train(quick)
    checkpoint = tmp_path / "checkpoint.pt"

    def killed_after_two(epoch: int, _val_error: float) -> None:
        if epoch == 2:
            raise _Killed

    with pytest.raises(_Killed):
        train(quick, on_epoch=killed_after_two, checkpoint=checkpoint)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2
    epochs: list[int] = []
    resumed = train(quick, on_epoch=lambda e, _v: epochs.append(e), checkpoint=checkpoint)
    assert epochs == [3], "only the epoch the killed run had not finished"
    assert resumed.metrics["val_loss"] == whole.metrics["val_loss"], "as if it had never stopped"
    assert resumed.metrics["epochs_run"] == 3
