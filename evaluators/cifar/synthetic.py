"""A small, learnable stand-in for CIFAR-10 in the real ``cifar-10-batches-py`` format.

Each class has its own colour and stripe pattern (orientation and period), drawn under per-image noise and a
random phase, so a few steps of training visibly lower the loss while the task is not solved by one pixel.
Tests and offline smoke runs use it; nothing here pretends to be the real data.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.cifar.data import FOLDER, TEST_FILE, TRAIN_FILES

__all__ = ["CLASSES", "write_synthetic_cifar"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# (R, G, B) base colour, stripe direction (0 horizontal, 1 vertical, 2 diagonal), stripe period in pixels
_PROTOTYPES = (
    ((200, 60, 60), 0, 8),
    ((60, 200, 60), 1, 8),
    ((60, 60, 200), 2, 8),
    ((200, 200, 60), 0, 4),
    ((200, 60, 200), 1, 4),
    ((60, 200, 200), 2, 4),
    ((140, 140, 140), 0, 16),
    ((230, 130, 40), 1, 16),
    ((40, 130, 230), 2, 16),
    ((110, 60, 20), 0, 2),
)


def _images(labels: np.ndarray[Any, Any], rng: np.random.Generator) -> np.ndarray[Any, Any]:
    n = labels.shape[0]
    yy, xx = np.mgrid[0:32, 0:32]
    out = np.empty((n, 3, 32, 32), dtype=np.float32)
    for i, label in enumerate(labels):
        colour, direction, period = _PROTOTYPES[int(label)]
        coord = (yy, xx, yy + xx)[direction]
        phase = rng.uniform(0, 2 * np.pi)
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * coord / period + phase)
        brightness = rng.uniform(0.7, 1.1)
        out[i] = np.asarray(colour, dtype=np.float32)[:, None, None] * (0.45 + 0.55 * stripes) * brightness
    out += rng.normal(0, 25, size=out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def _write(path: Path, entry: dict[bytes, Any]) -> None:
    with path.open("wb") as f:
        pickle.dump(entry, f, protocol=2)


def write_synthetic_cifar(root: Path, n_train: int = 500, n_test: int = 100, seed: int = 0) -> Path:
    """Write ``n_train`` training and ``n_test`` test images under ``root/cifar-10-batches-py``.

    The training images are spread over ``data_batch_1`` .. ``data_batch_5`` like the real set; labels are
    balanced and shuffled. Pass ``root`` as the dataset directory; the folder written is returned.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)

    def labels(n: int) -> np.ndarray[Any, Any]:
        return rng.permutation(np.arange(n) % len(CLASSES))

    train_labels = labels(n_train)
    train_images = _images(train_labels, rng).reshape(n_train, 3072)
    chunks = np.array_split(np.arange(n_train), len(TRAIN_FILES))
    for number, (name, idx) in enumerate(zip(TRAIN_FILES, chunks, strict=True), start=1):
        _write(
            folder / name,
            {
                b"batch_label": f"synthetic training batch {number} of {len(TRAIN_FILES)}".encode(),
                b"labels": [int(v) for v in train_labels[idx]],
                b"data": train_images[idx],
                b"filenames": [f"synthetic_{int(j)}.png".encode() for j in idx],
            },
        )
    test_labels = labels(n_test)
    _write(
        folder / TEST_FILE,
        {
            b"batch_label": b"synthetic testing batch 1 of 1",
            b"labels": [int(v) for v in test_labels],
            b"data": _images(test_labels, rng).reshape(n_test, 3072),
            b"filenames": [f"synthetic_test_{j}.png".encode() for j in range(n_test)],
        },
    )
    _write(
        folder / "batches.meta",
        {
            b"num_cases_per_batch": max(len(c) for c in chunks),
            b"label_names": [c.encode() for c in CLASSES],
            b"num_vis": 3072,
        },
    )
    return folder
