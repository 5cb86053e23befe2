"""The one command line every experiment shares: `python -m experiments.<name> [flags]`."""

import argparse
import dataclasses
import sys

import jax
import numpy as np

from mnist_jax import data, experiment, losses, models
from mnist_jax.config import Config, ConfigError


def learning_rates(text: str) -> tuple[float, ...]:
    """`0.001`, a list `3e-4,1e-3,3e-3`, or a log-spaced range `start:stop:count`."""
    try:
        if ":" in text:
            start, stop, count = text.split(":")
            return tuple(float(v) for v in np.geomspace(float(start), float(stop), int(count)))
        rates = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a rate, a list like 3e-4,1e-3 or a range like 1e-4:1e-2:5"
        ) from None
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: learning rates must be positive")
    return rates


def seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seeds like 0,1,2") from None


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def parser(config: Config) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m experiments.{config.name}",
        description=sys.modules["__main__"].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    length = f"{config.epochs} epochs" if config.steps is None else f"{config.steps} steps"
    p.add_argument(
        "--tutorial",
        action="store_true",
        help="the tutorial's exact setting: raw pixels, binary cross-entropy, its "
        f"optimizer and rate ({config.tutorial_setting().learning_rates})",
    )
    p.add_argument("--epochs", type=positive_int, help=f"default: {length}")
    p.add_argument("--steps", type=positive_int, help="total batches instead of epochs")
    p.add_argument("--batch-size", type=positive_int, help=f"default {config.batch_size}")
    p.add_argument(
        "--lr",
        type=learning_rates,
        help=f"learning rate(s), default {config.learning_rates[0]:g}; a sweep: "
        "3e-4,1e-3,3e-3 or 1e-4:1e-2:5 (log-spaced start:stop:count)",
    )
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--seeds", type=seeds, help="repeats, e.g. 0,1,2 (one member per seed)")
    p.add_argument("--loss", choices=sorted(losses.LOSSES), help=f"default {config.loss}")
    p.add_argument(
        "--raw-pixels",
        action="store_true",
        default=None,
        help="feed pixels 0..255 unscaled, as the tutorial did",
    )
    p.add_argument("--dtype", choices=models.DTYPES, help="matmul precision, default float32")
    p.add_argument("--data-dir", help="tfds data dir (default: $TFDS_DATA_DIR or tfds' own)")
    p.add_argument("--logdir", default="logs", help="TensorBoard logs (default logs/)")
    p.add_argument("--json", dest="json_path", help="write the results as JSON here")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace earlier logs of the same runs (and the checkpoints in --checkpoint-dir) "
        "instead of keeping them beside the new ones",
    )
    p.add_argument(
        "--checkpoint-dir", help="save the whole training state here after every epoch"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the latest checkpoint in --checkpoint-dir (--epochs stays the total)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the final table")
    p.add_argument(
        "--devices", type=positive_int, help="local devices to shard each batch over (default all)"
    )
    p.add_argument(
        "--max-members",
        type=positive_int,
        default=experiment.Options.max_members,
        help="sweep members trained together in one program; more train in chunks of this size "
        f"(default {experiment.Options.max_members})",
    )
    cluster = p.add_argument_group(
        "several hosts", "one process per host; only process 0 writes logs and JSON"
    )
    cluster.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run found in the environment (SLURM, Open MPI, Cloud TPU, "
        "Kubernetes, or $JAX_COORDINATOR_ADDRESS)",
    )
    cluster.add_argument("--coordinator", help="HOST:PORT of process 0 (implies --distributed)")
    cluster.add_argument("--num-processes", type=positive_int)
    cluster.add_argument("--process-id", type=int)
    return p


def init_distributed(args: argparse.Namespace) -> None:
    """Joins the other processes before any device is touched; CPUs talk over gloo."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )


def resolve(config: Config, args: argparse.Namespace) -> Config:
    """`config`, in the tutorial's setting if asked, with the flags given on top."""
    if args.tutorial:
        config = config.tutorial_setting()
    changes = {
        "batch_size": args.batch_size,
        "learning_rates": args.lr,
        "loss": args.loss,
        "raw_pixels": args.raw_pixels,
        "dtype": args.dtype,
        "seeds": args.seeds or (None if args.seed is None else (args.seed,)),
    }
    config = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
    if args.epochs is not None or args.steps is not None:
        config = dataclasses.replace(config, epochs=args.epochs, steps=args.steps)
    return config


def main(config: Config, argv: list[str] | None = None) -> dict:
    p = parser(config)
    args = p.parse_args(argv)
    if args.epochs is not None and args.steps is not None:
        p.error("give --epochs or --steps, not both")
    if args.seed is not None and args.seeds is not None:
        p.error("give --seed or --seeds, not both")
    if args.distributed or args.coordinator:
        init_distributed(args)
    options = experiment.Options(
        data_dir=args.data_dir,
        logdir=args.logdir,
        json_path=args.json_path,
        quiet=args.quiet,
        overwrite=args.overwrite,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        devices=args.devices,
        max_members=args.max_members,
    )
    try:
        return experiment.run(resolve(config, args), options)
    except (data.MnistError, ConfigError) as error:
        p.exit(2, f"{p.prog}: error: {error}\n")
