"""Plain JAX with TensorBoard logs: `python -m experiments.five_layer_relu` as a user writes it.

The whole job by hand, no library: the four gzip IDX files read with numpy, pixels scaled to
[0, 1], the 784-200-100-60-30-10 ReLU MLP (Glorot-uniform weights, zero biases), optax Adam 1e-3
on softmax cross-entropy, a `jax.jit` step returning the loss and accuracy, called from a Python
loop over host-sliced batches of 100 (a numpy permutation every epoch). Each batch's loss and
accuracy come back with `float()` and go to a tensorboardX `SummaryWriter` as `batch_loss` and
`batch_accuracy` in LOGDIR/batch; each epoch's mean training loss and accuracy and the test set's
go to LOGDIR/epoch as `loss`, `accuracy`, `val_loss`, `val_accuracy` (the tags this project
writes). The step donates params and optimizer state, as `plain_jax` does, so the two differ
only in the data reading and the per-batch round trip and logging.

Not a benchmark peer: it reads the IDX files, not the .npz, and prints lines, not JSON.

    python -m experiments.peers.plain_jax_tbx --mnist ../shared/mnist --epochs 10 --logdir logs

Measured (seed 0, 2-core Intel Xeon @ 2.5 GHz, whole process with `time`, the second of two
runs; other jobs kept the load average at 5-8, so the seconds are rough, CPU seconds in brackets):
    --epochs 1:  test accuracy 0.9486, 19.8 s (13.4 s CPU)
    --epochs 10: test accuracy 0.9756, 46.1 s (31.2 s CPU)
beside `python -m experiments.five_layer_relu --data-dir TFDS --logdir L`, same conditions:
    --epochs 1:  test accuracy 0.9620, 34.5 s (26.4 s CPU)
    --epochs 10: test accuracy 0.9789, 50.1 s (32.8 s CPU)
"""

import argparse
import functools
import gzip
import os
import time

import jax
import numpy as np
import optax
from tensorboardX import SummaryWriter

from experiments.peers import BATCH_SIZE, LEARNING_RATE
from experiments.peers.plain_jax import Params, forward, init_params  # the same MLP

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: str) -> np.ndarray:
    """One gzip IDX file as uint8: a 4-byte magic, one big-endian int32 per dimension, the data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = np.frombuffer(raw, ">i4", count=ndim, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(mnist_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """float32 [N, 784] pixels in [0, 1] and int32 [N] labels."""
    images, labels = (read_idx(os.path.join(mnist_dir, name)) for name in FILES[split])
    x_NxD = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return x_NxD, labels.astype(np.int32)


def loss_and_accuracy(params: Params, x_BxD: jax.Array, y_B: jax.Array):
    logits_BxC = forward(params, x_BxD)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits_BxC, y_B).mean()
    return loss, (logits_BxC.argmax(-1) == y_B).mean()


optimizer = optax.adam(LEARNING_RATE)


@functools.partial(jax.jit, donate_argnums=(0, 1))
def train_step(params: Params, opt_state: optax.OptState, x_BxD: jax.Array, y_B: jax.Array):
    (loss, accuracy), grads = jax.value_and_grad(loss_and_accuracy, has_aux=True)(
        params, x_BxD, y_B
    )
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, accuracy


evaluate = jax.jit(loss_and_accuracy)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", required=True, help="folder with the four MNIST .gz IDX files")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--logdir", default="logs/plain_jax_tbx")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")

    x_train, y_train = load_split(args.mnist, "train")
    x_test, y_test = load_split(args.mnist, "test")
    rng = np.random.default_rng(args.seed)
    params = init_params(jax.random.key(args.seed))
    opt_state = optimizer.init(params)
    batch_writer = SummaryWriter(os.path.join(args.logdir, "batch"))
    epoch_writer = SummaryWriter(os.path.join(args.logdir, "epoch"))
    steps = len(x_train) // BATCH_SIZE

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        perm = rng.permutation(len(x_train))
        losses, accuracies = [], []
        for i in range(steps):
            idx = perm[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
            params, opt_state, loss, accuracy = train_step(
                params, opt_state, x_train[idx], y_train[idx]
            )
            losses.append(float(loss))
            accuracies.append(float(accuracy))
            step = (epoch - 1) * steps + i
            batch_writer.add_scalar("batch_loss", losses[-1], step)
            batch_writer.add_scalar("batch_accuracy", accuracies[-1], step)
        test_loss, test_accuracy = (float(v) for v in evaluate(params, x_test, y_test))
        scalars = {
            "loss": np.mean(losses),
            "accuracy": np.mean(accuracies),
            "val_loss": test_loss,
            "val_accuracy": test_accuracy,
        }
        for tag, value in scalars.items():
            epoch_writer.add_scalar(tag, value, epoch)
        print(
            f"epoch {epoch}/{args.epochs}  {time.perf_counter() - start:.2f}s  "
            + "  ".join(f"{tag} {value:.4f}" for tag, value in scalars.items()),
            flush=True,
        )
    batch_writer.close()
    epoch_writer.close()
    print(f"test accuracy {test_accuracy:.4f}")


if __name__ == "__main__":
    main()
