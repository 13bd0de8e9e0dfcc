from __future__ import annotations

import pickle
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.base import SetupError
from evaluators.cifar import data
from evaluators.cifar.data import (
    CifarNotFoundError,
    augment,
    check_dataset,
    count_training_images,
    eval_batches,
    load_cifar10,
    normalize,
    num_train_batches,
    train_batches,
)
from evaluators.cifar.synthetic import write_synthetic_cifar

N_TRAIN, N_TEST = 300, 50


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar(root, n_train=N_TRAIN, n_test=N_TEST, seed=0)
    return root


def _rows(images: torch.Tensor) -> set[bytes]:
    return {bytes(img.numpy().tobytes()) for img in images}


def test_synthetic_files_have_the_real_format(dataset_dir: Path) -> None:
    folder = dataset_dir / "cifar-10-batches-py"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["batches.meta", *(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    with (folder / "data_batch_1").open("rb") as f:
        entry = pickle.load(f, encoding="bytes")
    assert entry[b"data"].dtype == np.uint8 and entry[b"data"].shape == (N_TRAIN // 5, 3072)
    assert isinstance(entry[b"labels"], list) and len(entry[b"labels"]) == N_TRAIN // 5
    with (folder / "batches.meta").open("rb") as f:
        assert len(pickle.load(f, encoding="bytes")[b"label_names"]) == 10


def test_round_trip_shapes_dtypes_and_labels(dataset_dir: Path) -> None:
    splits = load_cifar10(dataset_dir, val_size=60, download=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (N_TRAIN - 60, 60, N_TEST)
    for part in (splits.train, splits.val, splits.test):
        assert part.images.dtype == torch.uint8 and part.images.shape[1:] == (3, 32, 32)
        assert part.labels.dtype == torch.int64
        assert 0 <= int(part.labels.min()) and int(part.labels.max()) <= 9
    assert set(splits.train.labels.tolist()) == set(range(10))


def test_split_is_disjoint_seeded_and_subset_takes_the_first(dataset_dir: Path) -> None:
    a = load_cifar10(dataset_dir, val_size=60, download=False)
    b = load_cifar10(dataset_dir, val_size=60, download=False)
    other = load_cifar10(dataset_dir, val_size=60, split_seed=1, download=False)
    assert not _rows(a.train.images) & _rows(a.val.images)
    assert len(_rows(a.train.images) | _rows(a.val.images)) == N_TRAIN
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.train.labels, b.train.labels)
    assert not torch.equal(a.val.images, other.val.images)
    small = load_cifar10(dataset_dir, val_size=60, subset=25, download=False)
    assert len(small.train) == 25 and torch.equal(small.train.images, a.train.images[:25])
    assert torch.equal(small.val.images, a.val.images)


def test_bad_split_sizes_are_refused(dataset_dir: Path) -> None:
    with pytest.raises(SetupError, match=f"--val_size {N_TRAIN} .* choose a --val_size below {N_TRAIN}"):
        load_cifar10(dataset_dir, val_size=N_TRAIN, download=False)
    with pytest.raises(SetupError, match="--subset must be a positive"):
        load_cifar10(dataset_dir, val_size=10, subset=0, download=False)
    with pytest.raises(SetupError, match=f"--subset {N_TRAIN} .* at most {N_TRAIN - 10}"):
        load_cifar10(dataset_dir, val_size=10, subset=N_TRAIN, download=False)


def test_augment_keeps_shape_and_changes_pixels() -> None:
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert out.is_contiguous(memory_format=torch.channels_last)
    changed = (out != images).flatten(1).any(1)
    assert changed.sum() >= 12  # 1/81 * 1/2 of draws are the identity
    again = augment(images, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_augment_is_a_crop_of_the_padded_image_maybe_flipped() -> None:
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    out = augment(images, torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for img, pad in zip(out, padded, strict=True):
        crops = [pad[:, y : y + 32, x : x + 32] for y in range(9) for x in range(9)]
        assert any(torch.equal(img, c) or torch.equal(img, c.flip(2)) for c in crops)


def test_normalize_is_channels_last_and_standardised() -> None:
    images = torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)
    out = normalize(images)
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)
    expected = (128 / 255 - torch.tensor(data.CIFAR10_MEAN)) / torch.tensor(data.CIFAR10_STD)
    torch.testing.assert_close(out[0, :, 5, 5], expected)


def test_train_batches_drop_last_and_cap(dataset_dir: Path) -> None:
    splits = load_cifar10(dataset_dir, val_size=60, download=False)  # 240 training images
    batches = list(train_batches(splits.train, 64, generator=torch.Generator().manual_seed(0)))
    assert len(batches) == num_train_batches(240, 64) == 3
    assert all(x.shape == (64, 3, 32, 32) and y.shape == (64,) for x, y in batches)
    assert len(list(train_batches(splits.train, 64, max_batches=2))) == 2
    evals = list(eval_batches(splits.val, 25))
    assert [len(y) for _, y in evals] == [25, 25, 10]
    assert len(list(eval_batches(splits.val, 25, max_batches=1))) == 1


def test_missing_folder_names_the_file_and_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(CifarNotFoundError) as info:
        load_cifar10(tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in message
    assert "cifar-10-python.tar.gz" in message and "download=True" in message
    assert isinstance(info.value, FileNotFoundError)


def test_failed_download_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(root: Path) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(CifarNotFoundError, match="download failed: .*no network"):
        load_cifar10(tmp_path)


def test_incomplete_copy_names_the_missing_file(dataset_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(dataset_dir / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(CifarNotFoundError, match="test_batch"):
        load_cifar10(tmp_path)


def test_training_images_are_counted_without_decoding_images(
    dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_arrays(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image array was built")

    monkeypatch.setattr("numpy._core.multiarray._reconstruct", no_arrays)  # how pickles rebuild arrays
    folder, n = count_training_images(dataset_dir, download=False)
    assert (folder, n) == (dataset_dir / "cifar-10-batches-py", N_TRAIN)


def test_check_dataset_names_the_flag_to_change(dataset_dir: Path, tmp_path: Path) -> None:
    assert check_dataset(dataset_dir, val_size=60, subset=200, download=False)[1] == N_TRAIN
    with pytest.raises(SetupError, match=f"--val_size 5000 .*{N_TRAIN} training images.*below {N_TRAIN}"):
        check_dataset(dataset_dir, val_size=5000, subset=None, download=False)
    with pytest.raises(SetupError, match="--val_size 0 leaves no validation images"):
        check_dataset(dataset_dir, val_size=0, subset=None, download=False)
    with pytest.raises(SetupError, match="--subset 250 .* 240 left"):
        check_dataset(dataset_dir, val_size=60, subset=250, download=False)
    with pytest.raises(CifarNotFoundError, match="cifar-10-batches-py"):
        check_dataset(tmp_path / "none", val_size=60, subset=None, download=False)


def test_a_file_that_is_not_a_batch_is_a_setup_error(dataset_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(dataset_dir / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({b"data": [1, 2]}))
    with pytest.raises(SetupError, match="data_batch_3 is not a CIFAR-10 batch file"):
        count_training_images(tmp_path, download=False)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps(shutil.copytree))
    with pytest.raises(SetupError, match="has no place in a CIFAR-10 batch file"):
        count_training_images(tmp_path, download=False)
