"""Training images/s: our CIFAR loop against the reference code's loop, same model, same device, same run.

The reference loop is the paper's (arXiv 2312.04528, ``cifar/train.py``): a torchvision-style Dataset
whose ``__getitem__`` makes a PIL image and applies RandomCrop(32, padding=4), RandomHorizontalFlip,
ToTensor and Normalize, a DataLoader with ``num_workers=0``, fp32, contiguous memory. Ours is
``evaluators.cifar.train.train`` (uint8 tensors on the device, batched augmentation, channels-last, bf16
autocast where it pays), measured in fp32 and with its automatic precision. Both read a synthetic
CIFAR-10 written to a temporary folder. Each loop gets ``--warmup`` untimed batches, then ``--batches``
timed ones; with ``--repeats`` the loops take turns and the best of each is kept (other processes on a
shared machine only ever slow a run down).

    python benchmarks/cifar_throughput.py --arch resnet9 --batches 8 --batch_size 128
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from torch.utils import data

from evaluators.cifar.data import CIFAR10_MEAN, CIFAR10_STD, FOLDER, TRAIN_FILES
from evaluators.cifar.models import build_model
from evaluators.cifar.synthetic import write_synthetic_cifar
from evaluators.cifar.train import TrainConfig, lr_factor, resolve_device, train, use_bf16


class ReferenceCIFAR10(data.Dataset[tuple[Any, int]]):
    """What ``torchvision.datasets.CIFAR10`` does once its md5 check passes: HWC uint8 -> PIL -> transform."""

    def __init__(self, root: Path, transform: T.Compose) -> None:
        images, labels = [], []
        for name in TRAIN_FILES:
            with (root / FOLDER / name).open("rb") as f:
                entry = pickle.load(f, encoding="latin1")
            images.append(entry["data"] if "data" in entry else entry[b"data"])
            labels.extend(entry["labels"] if "labels" in entry else entry[b"labels"])
        self.data = np.vstack(images).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))
        self.targets = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


def reference_images_per_s(
    root: Path, arch: str, batch_size: int, warmup: int, batches: int, device: torch.device
) -> float:
    transform = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean=CIFAR10_MEAN, std=CIFAR10_STD),
        ]
    )
    loader = data.DataLoader(
        ReferenceCIFAR10(root, transform), batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0
    )
    torch.manual_seed(0)
    model = build_model("vit" if arch == "vit" else "resnet9").to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    total = warmup + batches
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, steps_per_epoch=total, num_epochs=1)
    )
    model.train()
    total_loss = torch.zeros((), device=device)
    start = 0.0
    for step, (inputs, labels) in enumerate(loader):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        if step == total:
            break
        model.zero_grad()
        inputs, labels = inputs.to(device), labels.to(device)
        loss: torch.Tensor = F.cross_entropy(model(inputs), labels)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        scheduler.step()
        total_loss += loss.detach().float()
    total_loss.item()  # waits for the device, as the reference's logging does
    return batches * batch_size / (time.perf_counter() - start)


def our_images_per_s(
    root: Path, arch: str, batch_size: int, warmup: int, batches: int, device: torch.device, precision: str
) -> float:
    cfg = TrainConfig(
        arch=arch,
        num_train_epochs=1,
        train_batch_size=batch_size,
        eval_batch_size=batch_size,
        max_eval_batches=1,
        dataset_dir=str(root),
        val_size=batch_size,
        device=str(device),
        precision=precision,
    )
    if warmup:
        train(TrainConfig(**{**cfg.__dict__, "max_train_batches": warmup}))
    result = train(TrainConfig(**{**cfg.__dict__, "max_train_batches": batches}))
    if result.state != "complete":
        raise RuntimeError(f"our loop failed: {result.error}")
    return float(result.metrics["images_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("resnet9", "vit"), default="resnet9")
    parser.add_argument("--batches", type=int, default=8, help="timed training batches per loop")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of all loops; the best is kept")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best present)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    precisions = ["fp32"] + (["auto"] if use_bf16(device, "auto") else [])
    names = {"fp32": "ours fp32", "auto": "ours bf16"}
    print(
        f"{args.arch} on {device} ({torch.get_num_threads()} threads), batch {args.batch_size}, "
        f"{args.warmup} warm-up + {args.batches} timed batches, best of {args.repeats}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n_train = (max(args.warmup, args.batches) + 1) * args.batch_size + args.batch_size
        write_synthetic_cifar(root, n_train=n_train, n_test=10, seed=0)
        best: dict[str, float] = {}
        for round_ in range(1, args.repeats + 1):
            common = (root, args.arch, args.batch_size, args.warmup, args.batches, device)
            runs: dict[str, Callable[[], float]] = {"reference": partial(reference_images_per_s, *common)}
            for p in precisions:
                runs[names[p]] = partial(our_images_per_s, *common, p)
            for name, run in runs.items():
                value = run()
                best[name] = max(best.get(name, 0.0), value)
                print(f"  round {round_}: {name:10s} {value:8.1f} img/s")
    print("best:")
    for name, value in best.items():
        ratio = value / best["reference"]
        print(f"  {name:10s} {value:8.1f} img/s  {ratio:5.2f}x reference")


if __name__ == "__main__":
    main()
