"""What the benchmark runs: each variant a command of this project or of a peer, and how long."""

import dataclasses
import importlib.util

import numpy as np

PROJECT = "experiments.five_layer_relu"
DROPOUT = "experiments.five_layer_relu_dropout"
CNN = "experiments.gorner_cnn"
TBX = "experiments.peers.plain_jax_tbx"
SWEEP_RATES = tuple(float(f"{lr:.4g}") for lr in np.geomspace(1e-4, 1e-2, 8))
DROPOUT_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
BASELINE, TORCH = "plain_jax", "torch_eager"  # the variants every other is set against
ACCELERATOR_MEMBERS = (1, 8, 64, 256)
CNN_EPOCHS = 2  # the CNN's processes: one epoch to compile and warm, one timed

# How a variant is run and read.
KIND_PROJECT = "project"  # an experiment module: `--json` report, logs or `--no-logs`
KIND_PEER = "peer"  # experiments/peers contract: `--data NPZ`, one JSON line on stdout
KIND_TBX = "tbx"  # plain_jax_tbx: `--mnist IDX_DIR --logdir D`, progress lines on stdout
KIND_LOAD = "load"  # running.LOAD_SCRIPT: load both splits in a fresh process, one JSON line
# How many epochs a variant's process trains.
LENGTH_EPOCHS, LENGTH_ONE, LENGTH_LONG, LENGTH_CNN = "epochs", "one", "long", "cnn"


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    module: str  # run as `python -m module`
    args: tuple[str, ...] = ()
    requires: str | None = None  # a module that must be importable, else the variant is skipped
    kind: str = KIND_PEER
    length: str = LENGTH_EPOCHS  # --epochs, 1, --long-epochs, or CNN_EPOCHS
    logs: bool = True  # a project variant writes TensorBoard logs, else `--no-logs`
    host_devices: int | None = None  # CPU devices to force (XLA_FLAGS), for a layout on a CPU
    quiet: bool = True  # a project variant gets `--quiet`; a user's command does not

    @property
    def is_project(self) -> bool:
        return self.kind == KIND_PROJECT


def lr_sweep(rates) -> tuple[str, str]:
    return ("--lr", ",".join(f"{lr:g}" for lr in rates))


def layout_variants(devices: int, host_devices: int | None = None) -> tuple[Variant, ...]:
    """The 8-member learning-rate sweep with its members spread over `devices` devices, and
    with each batch split over them instead."""
    return tuple(
        Variant(
            f"sweep8_by_{axis}",
            PROJECT,
            (*lr_sweep(SWEEP_RATES), "--mesh", f"{axis}={devices}"),
            kind=KIND_PROJECT,
            logs=False,
            host_devices=host_devices,
        )
        for axis in ("members", "data")
    )


VARIANTS = (
    Variant("float32", PROJECT, kind=KIND_PROJECT),
    Variant("float32_nologs", PROJECT, kind=KIND_PROJECT, logs=False),
    Variant("bfloat16", PROJECT, ("--dtype", "bfloat16"), kind=KIND_PROJECT),
    Variant("sweep8", PROJECT, lr_sweep(SWEEP_RATES), kind=KIND_PROJECT),
    Variant("dropout_lr8", DROPOUT, lr_sweep(SWEEP_RATES), kind=KIND_PROJECT),
    Variant(
        "dropout_rate8",
        DROPOUT,
        ("model.dropout_rate=" + ",".join(f"{r:g}" for r in DROPOUT_RATES),),
        kind=KIND_PROJECT,
    ),
    Variant("plain_jax", "experiments.peers.plain_jax"),
    Variant("torch_eager", "experiments.peers.torch_eager", requires="torch"),
    Variant("torch_compile", "experiments.peers.torch_eager", ("--compile",), requires="torch"),
    Variant("keras_jax", "experiments.peers.keras_jax", requires="keras"),
    Variant("cnn", CNN, kind=KIND_PROJECT, length=LENGTH_CNN, logs=False),
    Variant("torch_cnn", "experiments.peers.torch_cnn", requires="torch", length=LENGTH_CNN),
    Variant("run_1", PROJECT, kind=KIND_PROJECT, length=LENGTH_ONE, quiet=False),
    Variant("tbx_1", TBX, requires="tensorboardX", kind=KIND_TBX, length=LENGTH_ONE),
    Variant("run_long", PROJECT, kind=KIND_PROJECT, length=LENGTH_LONG, quiet=False),
    Variant("tbx_long", TBX, requires="tensorboardX", kind=KIND_TBX, length=LENGTH_LONG),
    Variant("load", "mnist_jax.data", kind=KIND_LOAD),
    *layout_variants(2, host_devices=2),
)


def accelerator_variants(members: tuple[int, ...]) -> tuple[Variant, ...]:
    """five_layer_relu as sweeps of `members` learning rates, each one compiled program."""
    variants = []
    for n in members:
        rates = (1e-3,) if n == 1 else np.geomspace(1e-4, 1e-2, n)
        variants.append(
            Variant(
                f"members_{n}",
                PROJECT,
                ("--max-members", str(n), *lr_sweep(float(f"{r:.4g}") for r in rates)),
                kind=KIND_PROJECT,
                logs=False,
            )
        )
    return tuple(variants)


def available(variants) -> tuple[list[Variant], list[Variant]]:
    """Variants whose framework is importable, and those skipped; nothing is imported here."""
    ok = [v for v in variants if v.requires is None or importlib.util.find_spec(v.requires)]
    return ok, [v for v in variants if v not in ok]


def epochs_for(variant: Variant, epochs: int, long_epochs: int) -> int:
    """How many epochs `variant`'s process trains, given `--epochs` and `--long-epochs`."""
    return {
        LENGTH_EPOCHS: epochs,
        LENGTH_ONE: 1,
        LENGTH_LONG: long_epochs,
        LENGTH_CNN: CNN_EPOCHS,
    }[variant.length]
