"""A small real training run: a neural network on scikit-learn's handwritten digits (the data ships with
scikit-learn, so it runs offline in a second or two).

As a command (digits.yaml)::

    python digits.py --learning-rate 0.01 --alpha 1e-4 --hidden 64 --batch-size 32

prints one JSON line per epoch, ``{"step": 1, "val_error": ..., "val_accuracy": ..., "train_loss": ...}``,
then the final one without ``step``. As a Python objective (digits-objective.yaml), ``objective(config)``
returns the final dict.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

EPOCHS = 10


def train(config: dict[str, Any], epochs: int = EPOCHS, on_epoch: Callable[[dict[str, Any]], None] | None = None):
    """Train with Adam for ``epochs`` passes; the validation error after each goes to ``on_epoch``."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    model = MLPClassifier(
        hidden_layer_sizes=(int(config["hidden"]),),
        learning_rate_init=float(config["learning_rate"]),
        alpha=float(config["alpha"]),
        batch_size=int(config["batch_size"]),
        random_state=0,
    )
    result: dict[str, Any] = {}
    with threadpool_limits(limits=1):  # a network this small trains 2-3x faster on one thread than on several
        for epoch in range(1, epochs + 1):
            model.partial_fit(x_train, y_train, classes=np.arange(10))
            accuracy = float(model.score(x_val, y_val))
            result = {"val_error": 1.0 - accuracy, "val_accuracy": accuracy, "train_loss": float(model.loss_)}
            if on_epoch is not None:
                on_epoch({"step": epoch, **result})
    return {**result, "epochs": epochs}


def objective(config: dict[str, Any]) -> dict[str, Any]:
    """The Python-objective form: the configuration in, the final metrics out."""
    return train(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning-rate", type=float, required=True)
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--hidden", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args()
    config = {"learning_rate": args.learning_rate, "alpha": args.alpha, "hidden": args.hidden}
    config["batch_size"] = args.batch_size
    final = train(config, args.epochs, on_epoch=lambda line: print(json.dumps(line), flush=True))
    print(json.dumps(final), flush=True)


if __name__ == "__main__":
    main()
