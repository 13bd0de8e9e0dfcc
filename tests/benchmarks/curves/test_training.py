"""Tests for benchmarks/curves/training.py: a stack of models trains each exactly as it would train alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from benchmarks.curves.training import Split, epoch_order, initial_weights, layer_sizes, train_alone, train_stack

MOMENTUM = 0.9


@pytest.fixture(scope="module")
def digits() -> Split:
    """240 training and 300 validation digits, standardized, in float64 (so that sums in another order agree)."""
    x, y = load_digits(return_X_y=True)
    x = (x - x[:240].mean(axis=0)) / (x[:240].std(axis=0) + 1e-9)
    return Split(torch.tensor(x[:240]), torch.tensor(y[:240]), torch.tensor(x[-300:]), torch.tensor(y[-300:]), 10)


def test_a_stack_gives_each_model_the_curves_it_has_alone(digits: Split) -> None:
    # Different learning rates, weight decays and seeds in one stack; lr 30 diverges (non-finite) in epoch 2.
    sizes = layer_sizes(64, 16, 2, 10)
    rates, decays, seeds = [0.003, 0.1, 0.1, 30.0], [1e-4, 1e-2, 0.0, 1e-2], [0, 1, 2, 0]
    stack = train_stack(digits, sizes, 20, rates, decays, seeds, epochs=3, momentum=MOMENTUM)
    for k in range(4):
        alone = train_alone(digits, sizes, 20, rates[k], decays[k], seeds[k], epochs=3, momentum=MOMENTUM)
        np.testing.assert_allclose(stack.val_error[k], alone.val_error[0], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(stack.diverged[k], alone.diverged[0])
        finite = np.isfinite(alone.train_loss[0])
        np.testing.assert_allclose(stack.train_loss[k][finite], alone.train_loss[0][finite], rtol=1e-9)
        assert np.array_equal(np.isfinite(stack.train_loss[k]), finite)
    assert stack.diverged[3].tolist() == [False, True, True]
    assert not stack.diverged[:3].any()
    assert stack.val_error[3, 1:].tolist() == [0.9, 0.9]  # chance once diverged
    assert stack.val_error[:3, -1].min() < 0.5  # the others really learn (chance is 0.9)


def test_a_diverged_model_does_not_disturb_its_stack(digits: Split) -> None:
    sizes = layer_sizes(64, 16, 2, 10)
    together = train_stack(digits, sizes, 20, [0.1, 30.0], [1e-4, 1e-2], [0, 0], epochs=3, momentum=MOMENTUM)
    apart = train_stack(digits, sizes, 20, [0.1], [1e-4], [0], epochs=3, momentum=MOMENTUM)
    assert together.diverged[1, -1]
    np.testing.assert_array_equal(together.val_error[0], apart.val_error[0])


def test_a_seed_fixes_the_initial_weights_and_the_data_order() -> None:
    sizes = layer_sizes(5, 4, 2, 3)
    first, again, other = initial_weights(sizes, 1), initial_weights(sizes, 1), initial_weights(sizes, 2)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0][0], other[0][0])
    bound = 1 / np.sqrt(5)
    assert first[0][0].abs().max() <= bound and first[0][1].abs().max() <= bound  # nn.Linear's default range
    assert np.array_equal(epoch_order(50, 1, 0), epoch_order(50, 1, 0))
    assert not np.array_equal(epoch_order(50, 1, 0), epoch_order(50, 1, 1))
    assert not np.array_equal(epoch_order(50, 1, 0), epoch_order(50, 2, 0))
    assert sorted(epoch_order(50, 1, 0)) == list(range(50))
