"""CIFAR-10 as uint8 tensors in memory, with batched augmentation on whatever device trains.

The ``cifar-10-batches-py`` pickles are read directly (torchvision's ``CIFAR10`` md5-checks them and refuses
anything else, synthetic copies included); torchvision is used only to download a missing copy. The images
are decoded once per process and kept as uint8; a batch is gathered, randomly cropped (padding 4) and flipped
in one vectorised indexing operation, then normalised with the reference's CIFAR mean/std into a
channels-last float tensor. This replaces the reference's per-image PIL transforms and DataLoader.
"""

from __future__ import annotations

import codecs
import functools
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluators.base import SetupError

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR10_URL",
    "FOLDER",
    "CifarNotFoundError",
    "CifarSplits",
    "ImageSet",
    "augment",
    "check_dataset",
    "check_split",
    "count_training_images",
    "eval_batches",
    "load_cifar10",
    "normalize",
    "num_train_batches",
    "train_batches",
]

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# The reference's torchvision Normalize constants.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.247, 0.243, 0.261)


class CifarNotFoundError(FileNotFoundError):
    """The CIFAR-10 python pickles are not where they were looked for, and could not be downloaded."""


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images as uint8 ``[N, 3, 32, 32]`` and labels as int64 ``[N]``, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, eq=False)
class CifarSplits:
    """Training images (after holding out ``val``, and after ``subset``), validation, and the test set."""

    train: ImageSet
    val: ImageSet
    test: ImageSet


def _missing_message(root: Path, missing: Path, reason: str) -> str:
    return (
        f"CIFAR-10 not found: {missing} is missing ({reason}). Place the python version of CIFAR-10 so "
        f"that {root / FOLDER}/data_batch_1 ... data_batch_5, test_batch and batches.meta exist: download "
        f"{CIFAR10_URL} and extract it into {root}, or run "
        f"`python -c \"import torchvision; torchvision.datasets.CIFAR10('{root}', download=True)\"` "
        "on a machine with network access and copy the folder over."
    )


def _download(root: Path) -> None:
    from torchvision.datasets import CIFAR10

    root.mkdir(parents=True, exist_ok=True)
    CIFAR10(str(root), train=True, download=True)


def _locate(root: Path, download: bool) -> Path:
    folder = root / FOLDER
    if not folder.is_dir():
        if not download:
            raise CifarNotFoundError(_missing_message(root, folder / TRAIN_FILES[0], "download=False"))
        try:
            _download(root)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError; torchvision raises RuntimeError
            raise CifarNotFoundError(
                _missing_message(root, folder / TRAIN_FILES[0], f"download failed: {exc}")
            ) from exc
    for name in (*TRAIN_FILES, TEST_FILE):
        if not (folder / name).is_file():
            raise CifarNotFoundError(_missing_message(root, folder / name, "incomplete copy"))
    return folder


def _read_batch(path: Path) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    with path.open("rb") as f:
        entry = pickle.load(f, encoding="bytes")
    data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(entry[b"labels"], dtype=np.int64)
    if data.shape[0] != labels.shape[0]:
        raise ValueError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    return data, labels


class _Stub:
    """Whatever numpy object a batch file names, unbuilt: counting labels needs no image array."""

    def __init__(self, *args: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


class _LabelsOnly(pickle.Unpickler):
    """Unpickles a batch file with numpy's classes replaced by stubs (and nothing else allowed)."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy":
            return _Stub
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 spells bytes written by Python 3
            return codecs.encode
        raise pickle.UnpicklingError(f"{module}.{name} has no place in a CIFAR-10 batch file")


def count_training_images(dataset_dir: str | Path, *, download: bool = True) -> tuple[Path, int]:
    """The CIFAR-10 folder under ``dataset_dir`` and its number of training images, read from the labels of
    the five batch files without decoding any image (cheap enough to check a setup before a study).
    Downloads a missing copy when ``download`` and the network allow; else :class:`CifarNotFoundError`."""
    folder = _locate(Path(dataset_dir).expanduser(), download)
    total = 0
    for name in TRAIN_FILES:
        path = folder / name
        try:
            with path.open("rb") as f:
                entry = _LabelsOnly(f, encoding="bytes").load()
            total += len(entry[b"labels"])
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SetupError(
                f"{path} is not a CIFAR-10 batch file ({type(exc).__name__}: {exc}); replace the copy in "
                f"{folder} (--dataset_dir)"
            ) from None
    return folder, total


def check_split(n_train: int, *, val_size: int, subset: int | None, folder: Path | str, scored: bool = True) -> None:
    """Raise :class:`SetupError` naming the flag to change when ``n_train`` training images cannot give the
    split asked for: ``val_size`` held out (at least one when trials are ``scored`` on it) and ``subset``
    images left to train on."""
    smallest = 1 if scored else 0
    if not smallest <= val_size < n_train:
        if val_size < smallest:
            raise SetupError(
                f"--val_size {val_size} leaves no validation images to score trials on: choose a --val_size "
                f"of at least 1 (a tenth of the {n_train} training images, {max(n_train // 10, 1)}, is usual)"
            )
        raise SetupError(
            f"--val_size {val_size} holds out at least as many images as the {n_train} training images in "
            f"{folder}: choose a --val_size below {n_train} (a tenth, {max(n_train // 10, 1)}, is usual)"
        )
    if subset is not None:
        left = n_train - val_size
        if subset < 1:
            raise SetupError(f"--subset must be a positive number of images, got {subset}")
        if subset > left:
            raise SetupError(
                f"--subset {subset} asks for more training images than the {left} left in {folder} after "
                f"--val_size {val_size}: choose a --subset of at most {left}, or a smaller --val_size"
            )


def check_dataset(
    dataset_dir: str | Path, *, val_size: int, subset: int | None, download: bool = True
) -> tuple[Path, int]:
    """What a study needs of its data, checked before it starts: the copy present (downloaded if missing and
    possible) and large enough for ``val_size`` and ``subset``. Returns the folder and its training images."""
    folder, n_train = count_training_images(dataset_dir, download=download)
    check_split(n_train, val_size=val_size, subset=subset, folder=folder)
    return folder, n_train


@functools.lru_cache(maxsize=2)
def _decode(folder: str, _stamp: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """Decoded (train images, train labels, test images, test labels), cached per folder and file mtimes."""
    parts = [_read_batch(Path(folder) / name) for name in TRAIN_FILES]
    test_x, test_y = _read_batch(Path(folder) / TEST_FILE)
    train_x = np.concatenate([x for x, _ in parts])
    train_y = np.concatenate([y for _, y in parts])
    return tuple(torch.from_numpy(a) for a in (train_x, train_y, test_x, test_y))


def load_cifar10(
    dataset_dir: str | Path,
    *,
    val_size: int = 5000,
    subset: int | None = None,
    split_seed: int = 0,
    device: torch.device | str = "cpu",
    download: bool = True,
) -> CifarSplits:
    """Read (or download) CIFAR-10 under ``dataset_dir`` and split it.

    ``val_size`` training images chosen by a permutation seeded with ``split_seed`` are held out for
    validation; the split does not depend on the training seed, so every trial of a study is scored on the
    same images. ``subset`` keeps the first N of the remaining training images. Tensors are copies, placed
    on ``device``. A split the data cannot give raises :class:`SetupError` (see :func:`check_split`).
    """
    root = Path(dataset_dir).expanduser()
    folder = _locate(root, download)
    stamp = tuple((folder / name).stat().st_mtime_ns for name in (*TRAIN_FILES, TEST_FILE))
    train_x, train_y, test_x, test_y = _decode(str(folder.resolve()), stamp)
    n = int(train_y.shape[0])
    check_split(n, val_size=val_size, subset=subset, folder=folder, scored=False)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    val_idx, train_idx = order[:val_size], order[val_size:]
    if subset is not None:
        train_idx = train_idx[:subset]
    dev = torch.device(device)

    def take(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None = None) -> ImageSet:
        if idx is None:
            x, y = x.clone(), y.clone()
        else:
            x, y = x[idx], y[idx]
        return ImageSet(x.to(dev), y.to(dev))

    return CifarSplits(
        train=take(train_x, train_y, train_idx), val=take(train_x, train_y, val_idx), test=take(test_x, test_y)
    )


def augment(images: torch.Tensor, generator: torch.Generator | None = None, padding: int = 4) -> torch.Tensor:
    """RandomCrop(size, padding) with zero fill and a horizontal flip with p=0.5, drawn per image.

    Takes and returns uint8 ``[B, C, H, W]``; the result has channels-last strides. Both are one
    ``index_select`` of pixels from the padded batch (flipping a crop = reading its columns backwards).
    """
    b, c, h, w = images.shape
    dev = images.device
    ph, pw = h + 2 * padding, w + 2 * padding
    padded = images.new_zeros((b, ph, pw, c))
    padded[:, padding : padding + h, padding : padding + w, :] = images.permute(0, 2, 3, 1)
    dy = torch.randint(0, 2 * padding + 1, (b, 1, 1), generator=generator, device=dev)
    dx = torch.randint(0, 2 * padding + 1, (b, 1, 1), generator=generator, device=dev)
    flip = torch.rand((b, 1, 1), generator=generator, device=dev) < 0.5
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    cols = torch.where(flip, w - 1 - cols, cols) + dx
    pixel = (torch.arange(b, device=dev).view(b, 1, 1) * ph + dy + rows) * pw + cols
    out = padded.view(b * ph * pw, c).index_select(0, pixel.view(-1))
    return out.view(b, h, w, c).permute(0, 3, 1, 2)


@functools.lru_cache(maxsize=8)
def _norm_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(CIFAR10_MEAN, device=device).view(1, 3, 1, 1) * 255
    inv_std = 1 / (torch.tensor(CIFAR10_STD, device=device).view(1, 3, 1, 1) * 255)
    return mean, inv_std


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, 3, H, W]`` -> float32, standardised with the CIFAR mean/std, channels-last."""
    mean, inv_std = _norm_constants(images.device)
    out = (images.float() - mean) * inv_std
    return out.contiguous(memory_format=torch.channels_last)


def num_train_batches(n_images: int, batch_size: int, max_batches: int | None = None) -> int:
    """Training batches per epoch: full batches only (drop_last), capped by ``max_batches``."""
    full = n_images // batch_size
    return full if max_batches is None else min(full, max_batches)


def train_batches(
    data: ImageSet,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    max_batches: int | None = None,
    augmentation: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled, augmented, normalised batches; the last partial batch is dropped."""
    n = len(data)
    order = torch.randperm(n, generator=generator, device=data.labels.device)
    for i in range(num_train_batches(n, batch_size, max_batches)):
        idx = order[i * batch_size : (i + 1) * batch_size]
        images = data.images[idx]
        if augmentation:
            images = augment(images, generator)
        yield normalize(images), data.labels[idx]


def eval_batches(
    data: ImageSet, batch_size: int, *, max_batches: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches in order, the last one partial, normalised and not augmented."""
    for i, start in enumerate(range(0, len(data), batch_size)):
        if max_batches is not None and i >= max_batches:
            return
        yield normalize(data.images[start : start + batch_size]), data.labels[start : start + batch_size]
