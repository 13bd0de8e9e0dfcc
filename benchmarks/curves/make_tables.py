"""Generate the learning-curve tables: real MLP training, every configuration of a product grid x seeds x epochs.

    python -m benchmarks.curves.make_tables --estimate          # time one epoch of every group, extrapolate
    nohup nice -n 19 env OMP_NUM_THREADS=1 python -m benchmarks.curves.make_tables \\
        --work ~/.cache/llm-hpo-curves > curves-gen.log 2>&1 &  # the tables (about an hour of one core)
    python -m benchmarks.curves.report                          # the sanity report in README.md

Run from the repository root (mnist needs the ``curves`` extra: ``pip install -e '.[curves]'``). The settings
(datasets, splits, grid, epochs, seeds) are in ``settings.py``. One table per dataset is written to
``evaluators/data/curves/<dataset>.npz`` (compressed) once all its groups are done; a group (one architecture
and batch size: every learning rate x weight decay x seed of it, trained as one stack, see ``training.py``) is
written to WORK as it finishes, so a restart skips what is done. It all runs on one thread.

Seconds per epoch are real but not those of the stack: for each architecture and batch size, one epoch
(training and validation) of one model trained alone, ``torch.nn`` and ``torch.optim.SGD`` on one thread, timed
as CPU seconds ``timing_repeats`` times after a warm-up, the median; every configuration of the group gets it
(a configuration's cost depends on its architecture and batch size only).

A table (``numpy.load``, no pickle) holds: ``param_names`` and ``choices_<name>`` (the grid, in index order),
``val_error``, ``diverged`` and ``train_loss`` ([configuration, seed, epoch]; epoch e is after e+1 epochs),
``seconds_per_epoch`` ([configuration]), ``val_index`` (the source's examples in the validation split) and
``metadata`` (JSON: dataset, sizes, split, preprocessing, model, optimizer, settings, library versions, date).
``evaluators/curves.py`` reads it.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.curves.datasets import Prepared, prepare
from benchmarks.curves.settings import DATASETS, FULL, TINY, DatasetSpec, Settings
from benchmarks.curves.training import layer_sizes, seconds_per_epoch, train_stack

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "evaluators" / "data" / "curves"
DEFAULT_WORK = Path.home() / ".cache" / "llm-hpo-curves"
_PER_GROUP = ("learning_rate", "weight_decay")  # trained together in one stack; the other names make the group
_TIMING_LR = 0.01  # the learning rate the timed epochs use (it does not change the cost)

Group = tuple[int, ...]


def groups(settings: Settings) -> list[Group]:
    names = list(settings.grid)
    if tuple(names[-len(_PER_GROUP) :]) != _PER_GROUP:
        raise ValueError(f"the grid must end with {_PER_GROUP} (they are trained as one stack), got {names}")
    return [tuple(int(v) for v in values) for values in itertools.product(*list(settings.grid.values())[:-2])]


def _group_name(settings: Settings, group: Group) -> str:
    return "-".join(f"{name}={value}" for name, value in zip(settings.grid, group, strict=False))


def _save(path: Path, **arrays: Any) -> None:
    """Write a compressed .npz atomically: a killed run leaves either the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    os.replace(partial, path)


def run_group(prepared: Prepared, settings: Settings, group: Group) -> dict[str, Any]:
    """Train every learning rate x weight decay x seed of one (batch size, width, depth) and time it alone."""
    batch_size, width, depth = group
    split = prepared.split
    sizes = layer_sizes(split.x_train.shape[1], width, depth, split.classes)
    cells = list(itertools.product(settings.grid["learning_rate"], settings.grid["weight_decay"]))
    models = [(lr, wd, seed) for lr, wd in cells for seed in settings.seeds]
    start = time.thread_time()
    curves = train_stack(
        split,
        sizes,
        batch_size,
        [m[0] for m in models],
        [m[1] for m in models],
        [m[2] for m in models],
        settings.epochs,
        settings.momentum,
    )
    train_cpu = time.thread_time() - start
    seconds_per_epoch(split, sizes, batch_size, _TIMING_LR, settings.momentum, 1)  # warm-up, not counted
    seconds = seconds_per_epoch(split, sizes, batch_size, _TIMING_LR, settings.momentum, settings.timing_repeats)
    shape = (len(cells), len(settings.seeds), settings.epochs)
    return {
        "val_error": curves.val_error.reshape(shape).astype(np.float32),
        "diverged": curves.diverged.reshape(shape),
        "train_loss": curves.train_loss.reshape(shape).astype(np.float32),
        "seconds_per_epoch": np.float64(seconds),
        "stack_cpu_seconds": np.float64(train_cpu),
    }


def _versions(spec: DatasetSpec) -> dict[str, str]:
    package = spec.source.split(".")[0]
    names = ["torch", "numpy", "scikit-learn"] + ([package] if package in ("mlxtend", "river") else [])
    versions = {name: importlib.metadata.version(name) for name in names}
    versions["python"] = platform.python_version()
    return versions


def _metadata(spec: DatasetSpec, settings: Settings, prepared: Prepared, cpu_seconds: float) -> dict[str, Any]:
    split = prepared.split
    return {
        "dataset": spec.name,
        "description": spec.description,
        "source": spec.source,
        "arguments": spec.arguments,
        "n_examples": prepared.n_examples,
        "n_train": int(split.x_train.shape[0]),
        "n_val": int(split.x_val.shape[0]),
        "n_features_raw": prepared.n_features_raw,
        "n_features": int(split.x_train.shape[1]),
        "classes": split.classes,
        "split": {
            "method": "sklearn.model_selection.train_test_split, stratified by class; indices in val_index",
            "val_fraction": settings.val_fraction,
            "random_state": settings.split_seed,
            "max_train": settings.max_train,
        },
        "preprocessing": (f"PCA to {spec.pca} components, then " if spec.pca else "")
        + "standardized (mean 0, variance 1 per feature), both fitted on the training split",
        "model": "MLP: depth hidden layers of width ReLU units, then a linear layer to the classes; nn.Linear init",
        "optimizer": f"SGD, momentum {settings.momentum}, constant learning rate, weight decay (coupled, as "
        "torch.optim.SGD), mean cross-entropy per minibatch; data reshuffled every epoch",
        "seeds": list(settings.seeds),
        "seed_meaning": "a seed fixes the initial weights and the data order (the same for every learning rate "
        "and weight decay of an architecture and batch size)",
        "epochs": settings.epochs,
        "val_error": "1 - accuracy on the validation split after each epoch",
        "diverged": "the training loss or the weights were not finite by that epoch; the validation error is "
        "then chance (1 - 1/classes)",
        "seconds_per_epoch": "CPU seconds of one epoch (training and validation) of one model of that "
        f"architecture and batch size trained alone on one thread: median of {settings.timing_repeats} after a "
        f"warm-up; {platform.processor() or platform.machine()}",
        "grid": {name: list(choices) for name, choices in settings.grid.items()},
        "fingerprint": settings.fingerprint(spec),
        "generation_cpu_seconds": round(cpu_seconds, 1),
        "versions": _versions(spec),
        "date": datetime.date.today().isoformat(),
    }


def make_table(spec: DatasetSpec, settings: Settings, out: Path, work: Path) -> Path:
    """Train what is missing of one dataset's table and write it; a finished table is left as it is."""
    target = out / f"{spec.name}.npz"
    if target.exists():
        print(f"[{spec.name}] {target} exists: skipped", flush=True)
        return target
    prepared = prepare(spec, settings)
    fingerprint = settings.fingerprint(spec)
    parts = []
    all_groups = groups(settings)
    for number, group in enumerate(all_groups, 1):
        path = work / spec.name / f"{_group_name(settings, group)}.npz"
        if path.exists():
            with np.load(path) as done:
                if str(done["fingerprint"]) != fingerprint:
                    raise SystemExit(f"{path} was made with other settings: delete {work / spec.name} to regenerate")
                part = {key: done[key] for key in done.files}
            print(f"[{spec.name}] {number}/{len(all_groups)} {path.stem}: done before", flush=True)
        else:
            start = time.thread_time()
            part = run_group(prepared, settings, group)
            _save(path, fingerprint=np.array(fingerprint), **part)
            print(
                f"[{spec.name}] {number}/{len(all_groups)} {path.stem}: {time.thread_time() - start:.1f} s CPU "
                f"(stack {float(part['stack_cpu_seconds']):.1f} s), {float(part['seconds_per_epoch']):.4f} s/epoch "
                f"alone, diverged {part['diverged'][..., -1].mean():.0%}, best final error "
                f"{part['val_error'][..., -1].mean(axis=1).min():.4f}",
                flush=True,
            )
        parts.append(part)
    per_group = parts[0]["val_error"].shape[0]
    cpu = sum(float(p["stack_cpu_seconds"]) for p in parts)
    metadata = _metadata(spec, settings, prepared, cpu)
    choices = {f"choices_{name}": np.asarray(values) for name, values in settings.grid.items()}
    _save(
        target,
        param_names=np.asarray(list(settings.grid)),
        **choices,
        val_error=np.concatenate([p["val_error"] for p in parts]),
        diverged=np.concatenate([p["diverged"] for p in parts]),
        train_loss=np.concatenate([p["train_loss"] for p in parts]),  # float32: a huge finite loss stays finite
        seconds_per_epoch=np.repeat([float(p["seconds_per_epoch"]) for p in parts], per_group).astype(np.float32),
        val_index=prepared.val_index.astype(np.int32),
        metadata=np.array(json.dumps(metadata, sort_keys=True)),
    )
    size = target.stat().st_size / 1e6
    print(f"[{spec.name}] wrote {target} ({size:.2f} MB, {cpu / 60:.1f} CPU minutes of training)", flush=True)
    return target


def estimate(specs: list[DatasetSpec], settings: Settings) -> float:
    """Seconds of one core the tables would take: one epoch of every group's stack, times the epochs, plus the
    timing runs (measured as they would run, one epoch each)."""
    total = 0.0
    for spec in specs:
        prepared = prepare(spec, settings)
        split = prepared.split
        dataset_total = 0.0
        for group in groups(settings):
            batch_size, width, depth = group
            sizes = layer_sizes(split.x_train.shape[1], width, depth, split.classes)
            cells = list(itertools.product(settings.grid["learning_rate"], settings.grid["weight_decay"]))
            models = [(lr, wd, seed) for lr, wd in cells for seed in settings.seeds]
            start = time.thread_time()
            train_stack(
                split, sizes, batch_size, [m[0] for m in models], [m[1] for m in models], [m[2] for m in models], 1, 0.9
            )
            stack = time.thread_time() - start
            alone = seconds_per_epoch(split, sizes, batch_size, _TIMING_LR, settings.momentum, 1)
            dataset_total += stack * settings.epochs + alone * (settings.timing_repeats + 1)
        print(f"[{spec.name}] estimated {dataset_total / 60:.1f} CPU minutes", flush=True)
        total += dataset_total
    print(f"all: estimated {total / 3600:.2f} CPU hours", flush=True)
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the tables go (default: %(default)s)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="finished groups (default: %(default)s)")
    parser.add_argument("--estimate", action="store_true", help="time one epoch of every group and extrapolate")
    parser.add_argument("--tiny", action="store_true", help="a tiny grid, 2 epochs, 300 examples (for tests)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    settings = TINY if args.tiny else FULL
    specs = [DATASETS[name] for name in args.datasets]
    if args.estimate:
        estimate(specs, settings)
        return
    start = time.time()
    for spec in specs:
        make_table(spec, settings, args.out, args.work)
    print(f"done in {(time.time() - start) / 3600:.2f} h wall ({time.process_time() / 3600:.2f} h CPU)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
