"""Keras 3 on the JAX backend: the same MLP trained by `model.fit`.

`keras.Sequential` of `Dense` layers (Keras's defaults are already Glorot-uniform weights and zero
biases), `Adam(1e-3)`, sparse categorical cross-entropy from logits, `fit(batch_size=100,
shuffle=True)` with no extra metrics. An epoch is timed by a callback from `on_epoch_begin` to
`on_epoch_end` after blocking on the weights. Needs `pip install keras` (no TensorFlow: Keras 3
feeds numpy arrays itself).

    python -m experiments.peers.keras_jax --data MNIST.npz --epochs 5
"""

import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported

import time  # noqa: E402

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from experiments.peers import (  # noqa: E402
    BATCH_SIZE,
    LEARNING_RATE,
    SIZES,
    load_npz,
    parse_args,
    report,
)


class EpochTimer(keras.callbacks.Callback):
    """Wall clock of every epoch, with no work of it left pending."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        jax.block_until_ready([v.value for v in self.model.trainable_variables])
        self.epoch_seconds.append(time.perf_counter() - self._start)


def make_model() -> keras.Sequential:
    hidden = [keras.layers.Dense(n, activation="relu") for n in SIZES[1:-1]]
    return keras.Sequential([keras.Input((SIZES[0],)), *hidden, keras.layers.Dense(SIZES[-1])])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    keras.utils.set_random_seed(args.seed)
    data = load_npz(args.data)
    model = make_model()
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    timer = EpochTimer()
    model.fit(
        data["x_train"],
        data["y_train"],
        batch_size=BATCH_SIZE,
        epochs=args.epochs,
        shuffle=True,
        verbose=0,
        callbacks=[timer],
    )
    logits = model.predict(data["x_test"], batch_size=1000, verbose=0)
    test_accuracy = np.mean(logits.argmax(-1) == data["y_test"])
    report("keras_jax", timer.epoch_seconds, test_accuracy)


if __name__ == "__main__":
    main()
