"""Training MLP classifiers for the curve tables: many models at once (a stack), or one alone (the reference).

A model is an MLP (``depth`` hidden layers of ``width`` ReLU units, then a linear output) trained with SGD and
momentum on the mean cross-entropy of each minibatch, at a constant learning rate, for whole epochs; after each
epoch it is scored on the validation split. A seed fixes what a user's script with ``torch.manual_seed(seed)``
fixes: the initial weights (PyTorch's ``nn.Linear`` default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
biases, drawn in layer order) and the data order (a fresh permutation of the training split per epoch; the last
batch of an epoch may be smaller). Configurations that differ only in learning rate or weight decay therefore
start from the same weights and see the same batches, as they would in the user's script.

:func:`train_stack` trains K models of one architecture and one batch size together: the weights are stacked
along a first axis, the layers are batched matrix products, and SGD is written on the stacked tensors, with a
learning rate and a weight decay per model. :func:`train_alone` trains one model with ``torch.nn`` and
``torch.optim.SGD``, as a user would; the tests check that both give the same curves, and the tables' seconds
per epoch are measured on it (:func:`seconds_per_epoch`).

A model has diverged once its training loss or its weights are not finite; it stays diverged, and from that
epoch on its validation error is chance (1 - 1/classes: a model whose outputs are not numbers predicts nothing).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Curves",
    "Split",
    "epoch_order",
    "initial_weights",
    "layer_sizes",
    "seconds_per_epoch",
    "train_alone",
    "train_stack",
]

_EVAL_CHUNK = 1024  # validation examples scored at once (bounds the memory of a wide stack)


@dataclass(frozen=True)
class Split:
    """A dataset, split and preprocessed: float features and integer labels in 0..classes-1."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    classes: int

    def to(self, dtype: torch.dtype) -> Split:
        return Split(self.x_train.to(dtype), self.y_train, self.x_val.to(dtype), self.y_val, self.classes)


@dataclass(frozen=True)
class Curves:
    """Per model and epoch (arrays [models, epochs]): validation error, diverged by then, mean training loss."""

    val_error: np.ndarray
    diverged: np.ndarray
    train_loss: np.ndarray


def layer_sizes(n_in: int, width: int, depth: int, n_out: int) -> list[int]:
    return [n_in, *([width] * depth), n_out]


def initial_weights(sizes: list[int], seed: int, dtype: torch.dtype = torch.float32) -> list[tuple[Tensor, Tensor]]:
    """(W [in, out], b [out]) per layer: nn.Linear's default initialization, drawn from the seed."""
    generator = torch.Generator().manual_seed(seed)
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(fan_in, fan_out, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        b = (torch.rand(fan_out, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        weights.append((w.to(dtype), b.to(dtype)))
    return weights


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which a model of this seed sees the n training examples in this epoch."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def _chance(classes: int) -> float:
    return 1.0 - 1.0 / classes


def train_stack(
    split: Split,
    sizes: list[int],
    batch_size: int,
    learning_rates: list[float],
    weight_decays: list[float],
    seeds: list[int],
    epochs: int,
    momentum: float,
) -> Curves:
    """Train len(seeds) models of one architecture together; model k has learning_rates[k], weight_decays[k]."""
    k = len(seeds)
    dtype = split.x_train.dtype
    n = split.x_train.shape[0]
    inits = {seed: initial_weights(sizes, seed, dtype) for seed in set(seeds)}
    params: list[Tensor] = []
    for layer in range(len(sizes) - 1):
        params.append(torch.stack([inits[s][layer][0] for s in seeds]).requires_grad_())
        params.append(torch.stack([inits[s][layer][1] for s in seeds]).unsqueeze(1).requires_grad_())
    buffers = [torch.zeros_like(p) for p in params]
    lr = torch.tensor(learning_rates, dtype=dtype).view(k, 1, 1)
    wd = torch.tensor(weight_decays, dtype=dtype).view(k, 1, 1)
    diverged = torch.zeros(k, dtype=torch.bool)
    out = Curves(
        val_error=np.zeros((k, epochs), dtype=np.float64),
        diverged=np.zeros((k, epochs), dtype=bool),
        train_loss=np.zeros((k, epochs), dtype=np.float64),
    )
    for epoch in range(epochs):
        diverged_before = diverged.clone()
        orders = {s: torch.from_numpy(epoch_order(n, s, epoch)) for s in set(seeds)}
        order = torch.stack([orders[s] for s in seeds])  # [K, n]
        loss_sum = torch.zeros(k, dtype=torch.float64)
        for start in range(0, n, batch_size):
            index = order[:, start : start + batch_size]
            logits = _forward(params, split.x_train[index])
            losses = F.cross_entropy(
                logits.reshape(-1, split.classes), split.y_train[index].reshape(-1), reduction="none"
            ).view(k, -1)
            loss = losses.mean(dim=1)
            grads = torch.autograd.grad(loss.sum(), params)
            with torch.no_grad():
                for p, g, buf in zip(params, grads, buffers, strict=True):
                    buf.mul_(momentum).add_(g + wd * p)
                    p.sub_(lr * buf)
            loss_sum += loss.detach().to(torch.float64) * index.shape[1]
        with torch.no_grad():
            finite = torch.isfinite(loss_sum)
            for p in params:
                finite &= torch.isfinite(p).flatten(1).all(dim=1)
            diverged |= ~finite
            # A diverged model is frozen at zero so that its NaNs cost nothing and never reach the others.
            lr[diverged] = 0.0
            for p, buf in zip(params, buffers, strict=True):
                p[diverged] = 0.0
                buf[diverged] = 0.0
            errors = _val_errors(params, split)
        errors[diverged.numpy()] = _chance(split.classes)
        out.val_error[:, epoch] = errors
        out.diverged[:, epoch] = diverged.numpy()
        loss_sum[diverged_before] = math.nan  # what the frozen model's loss would have been
        out.train_loss[:, epoch] = (loss_sum / n).numpy()
    return out


def _forward(params: list[Tensor], x: Tensor) -> Tensor:
    """Logits [K, batch, classes] of the stacked models for inputs [K, batch, in] (or [batch, in], shared)."""
    h = x
    layers = len(params) // 2
    for layer in range(layers):
        w, b = params[2 * layer], params[2 * layer + 1]
        h = torch.baddbmm(b, h, w) if h.dim() == 3 else torch.matmul(h, w) + b
        if layer < layers - 1:
            h = torch.relu(h)
    return h


def _val_errors(params: list[Tensor], split: Split) -> np.ndarray:
    wrong = torch.zeros(params[0].shape[0], dtype=torch.int64)
    for start in range(0, split.x_val.shape[0], _EVAL_CHUNK):
        x = split.x_val[start : start + _EVAL_CHUNK]
        predicted = _forward(params, x).argmax(dim=2)
        wrong += (predicted != split.y_val[start : start + _EVAL_CHUNK]).sum(dim=1)
    return wrong.numpy() / split.x_val.shape[0]


def _model(sizes: list[int], seed: int, dtype: torch.dtype) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index, (w, b) in enumerate(initial_weights(sizes, seed, dtype)):
        linear = nn.Linear(w.shape[0], w.shape[1], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(w.T)
            linear.bias.copy_(b)
        layers.append(linear)
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def train_alone(
    split: Split,
    sizes: list[int],
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    seed: int,
    epochs: int,
    momentum: float,
) -> Curves:
    """Train one model the way a user's script would (nn.Sequential, torch.optim.SGD); curves of shape [1, E]."""
    model = _model(sizes, seed, split.x_train.dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum, weight_decay=weight_decay)
    n = split.x_train.shape[0]
    out = Curves(
        val_error=np.zeros((1, epochs)), diverged=np.zeros((1, epochs), dtype=bool), train_loss=np.zeros((1, epochs))
    )
    diverged = False
    for epoch in range(epochs):
        order = torch.from_numpy(epoch_order(n, seed, epoch))
        loss_sum = 0.0
        model.train()
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(split.x_train[index]), split.y_train[index])
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * index.shape[0]
        model.eval()
        with torch.no_grad():
            finite = math.isfinite(loss_sum) and all(bool(torch.isfinite(p).all()) for p in model.parameters())
            diverged = diverged or not finite
            if diverged:
                error = _chance(split.classes)
            else:
                error = float((model(split.x_val).argmax(dim=1) != split.y_val).double().mean())
        out.val_error[0, epoch] = error
        out.diverged[0, epoch] = diverged
        out.train_loss[0, epoch] = loss_sum / n
    return out


def seconds_per_epoch(
    split: Split, sizes: list[int], batch_size: int, learning_rate: float, momentum: float, repeats: int
) -> float:
    """CPU seconds of this thread for one epoch (training and validation) of one model trained alone: the
    median of ``repeats`` runs. CPU time, not wall time, so that other processes on a shared machine (and the
    generator's own ``nice``) do not inflate it; the caller sets one thread."""
    times = []
    for repeat in range(repeats):
        start = time.thread_time()
        train_alone(split, sizes, batch_size, learning_rate, 0.0, repeat, 1, momentum)
        times.append(time.thread_time() - start)
    return statistics.median(times)
