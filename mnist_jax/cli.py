"""The one command line every experiment shares:
`python -m experiments.<name> [flags] [KEY=VALUE ...]`.

`KEY=VALUE` sets any setting (`model.hidden=[512,512]`, `optimizer=adamw`, `batch_size=128`);
`KEY=A,B,C` or `KEY=start:stop:count` sweeps it, several swept keys make the grid. The flags
(`--lr`, `--seeds`, `--epochs`, ...) are shorthands for some keys. Every bad flag, key, value,
combination or path is refused before any work starts, in one line with exit status 2:
`python -m experiments.<name>: error: MESSAGE`.
"""

import argparse
import math
import os
import shlex
import signal
import sys
from typing import NoReturn

import jax
import numpy as np

from mnist_jax import (
    compile_cache,
    data,
    devices,
    experiment,
    files,
    interrupt,
    losses,
    models,
    overrides,
    sweep,
    watchdog,
)
from mnist_jax.config import DTYPES, MAX_SEED, Config, ConfigError
from mnist_jax.results import Result, summary_table
from mnist_jax.writer import LogWriteError

LR_FORMS = "a rate like 1e-3, a list like 3e-4,1e-3 or a range start:stop:count like 1e-4:1e-2:5"


class Parser(argparse.ArgumentParser):
    """argparse's parser, its errors one line: the usage block it prints first buries them."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _lr_error(problem: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{problem}; expected {LR_FORMS}")


def _rate(piece: str, text: str) -> float:
    """One positive, finite rate of `text`."""
    where = "" if piece == text else f"{text!r}: "
    if not piece.strip():
        raise _lr_error(f"{text!r}: an empty entry")
    try:
        rate = float(piece)
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        raise _lr_error(f"{where}{piece!r} is not a positive finite number")
    return rate


def learning_rates(text: str) -> tuple[float, ...]:
    """`0.001`, a list `3e-4,1e-3,3e-3`, or a log-spaced range `start:stop:count`."""
    if ":" not in text:
        return tuple(_rate(piece, text) for piece in text.split(","))
    parts = text.split(":")
    if len(parts) != 3:
        raise _lr_error(f"{text!r}: a range has 3 parts, start:stop:count, not {len(parts)}")
    start, stop = _rate(parts[0], text), _rate(parts[1], text)
    try:
        count = int(parts[2])
    except ValueError:
        count = 0
    if count < 1:
        raise _lr_error(f"{text!r}: the count {parts[2]!r} is not a whole number of at least 1")
    return tuple(float(v) for v in np.geomspace(start, stop, count))


def _whole_number(text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bound = f"of at least {low}" if high is None else f"from {low} to {high}"
        raise argparse.ArgumentTypeError(f"expected a whole number {bound}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def seed(text: str) -> int:
    return _whole_number(text, 0, MAX_SEED)


def seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(seed(v) for v in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected seeds like 0,1,2 (whole numbers from 0 to {MAX_SEED}), got {text!r}"
        ) from None


def mesh_layout(text: str) -> dict[str, int]:
    """`members=8` or `data=2,members=4`: the device mesh's axis sizes."""
    layout = {}
    for piece in text.split(","):
        axis, _, size = piece.partition("=")
        if axis not in devices.AXES or axis in layout:
            raise argparse.ArgumentTypeError(
                f"expected AXIS=N[,AXIS=N] with axes {' and '.join(devices.AXES)}, got {text!r}"
            )
        layout[axis] = _whole_number(size, 1)
    return layout


def parser(config: Config) -> Parser:
    p = Parser(
        prog=f"python -m experiments.{config.name}",
        description=sys.modules["__main__"].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    length = f"{config.epochs} epochs" if config.steps is None else f"{config.steps} steps"
    activation = config.model.get("activation", "none")
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
    p.add_argument("--seed", type=seed, help="default 0")
    p.add_argument("--seeds", type=seeds, help="repeats, e.g. 0,1,2 (one member per seed)")
    p.add_argument("--loss", choices=sorted(losses.LOSSES), help=f"default {config.loss}")
    p.add_argument(
        "--raw-pixels",
        action="store_true",
        default=None,
        help="feed pixels 0..255 unscaled, as the tutorial did",
    )
    p.add_argument("--dtype", choices=DTYPES, help="matmul precision, default float32")
    p.add_argument(
        "--activation",
        choices=list(models.ACTIVATIONS),
        help=f"the hidden layers' activation, default {activation}",
    )
    p.add_argument("--data-dir", help="tfds data dir (default: $TFDS_DATA_DIR or tfds' own)")
    p.add_argument("--logdir", default="logs", help="TensorBoard logs (default logs/)")
    p.add_argument(
        "--no-logs", action="store_true", help="write no TensorBoard logs (for timing runs)"
    )
    p.add_argument("--json", dest="json_path", help="write the results as JSON here")
    p.add_argument("--csv", dest="csv_path", help="write one row per run, swept keys first")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace earlier logs of the same runs (and the checkpoints in --checkpoint-dir) "
        "instead of keeping them beside the new ones",
    )
    p.add_argument("--checkpoint-dir", help="save the whole training state here after every epoch")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the latest checkpoint in --checkpoint-dir (--epochs stays the total)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the final table")
    p.add_argument("--devices", type=positive_int, help="local devices to use (default all)")
    p.add_argument(
        "--mesh",
        type=mesh_layout,
        help="how the devices are used: members=N spreads a sweep's members over N devices, "
        "data=N splits each batch over N, e.g. data=2,members=4 (default: members first, as "
        "many as divide the members evenly, the batch over the rest)",
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
    cluster.add_argument("--process-id", type=non_negative_int)
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="set or sweep any setting: model.hidden=[512,512], model.dropout_rate=0,0.25, "
        "optimizer=adamw, optimizer.weight_decay=1e-4:1e-2:3, lr=..., seed=0,1, batch_size=128",
    )
    return p


def init_distributed(args: argparse.Namespace) -> None:
    """Joins the other processes before any device is touched; CPUs talk over gloo."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )


# Flags that are shorthands for a key, and the key each sets.
FLAG_KEYS = {
    "lr": "lr",
    "seeds": "seed",
    "seed": "seed",
    "epochs": "epochs",
    "steps": "steps",
    "batch_size": "batch_size",
    "loss": "loss",
    "raw_pixels": "raw_pixels",
    "dtype": "dtype",
    "activation": "model.activation",
}


def resolve(config: Config, args: argparse.Namespace) -> tuple[Config, list[overrides.Override]]:
    """The base config (the tutorial's setting if asked) and every override, the flags' first."""
    if args.tutorial:
        config = config.tutorial_setting()
    try:
        given = overrides.parse_all(args.overrides)
    except overrides.OverrideError as error:
        raise ConfigError(str(error)) from None
    keys = {o.key: o for o in given}
    from_flags = []
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if key in keys:
            raise ConfigError(f"give --{flag.replace('_', '-')} or {key}=, not both")
        values = value if isinstance(value, tuple) else (value,)
        if not any(o.key == key for o in from_flags):
            from_flags.append(overrides.Override(key, values))
    return config, [*from_flags, *given]


def unwritable(path: str) -> str | None:
    """Why `path` cannot be written as a directory, or None when it can; creates nothing.

    A path that does not exist yet is judged by its nearest existing parent.
    """
    existing = os.path.abspath(path)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def flag_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the flags taken together or with the paths they name; None if nothing.

    Checked before anything runs, so that a bad path fails at once and not after training.
    """
    if args.epochs is not None and args.steps is not None:
        return "give --epochs or --steps, not both"
    if args.seed is not None and args.seeds is not None:
        return "give --seed or --seeds, not both"
    if args.resume and args.checkpoint_dir is None:
        return "--resume needs --checkpoint-dir, the folder of the checkpoints to resume from"
    if args.resume and args.overwrite:
        return "give --resume or --overwrite, not both: --overwrite starts afresh"
    if args.json_path is not None and os.path.isdir(args.json_path):
        return f"--json {args.json_path}: is a directory, expected a file name"
    json_folder = (
        None if args.json_path is None else os.path.dirname(os.path.abspath(args.json_path))
    )
    for flag, path, folder in [
        ("--logdir", args.logdir, args.logdir),
        ("--checkpoint-dir", args.checkpoint_dir, args.checkpoint_dir),
        ("--json", args.json_path, json_folder),
    ]:
        if path is not None and (why := unwritable(folder)):
            return f"{flag} {path}: {why}"
    if args.data_dir is not None:
        why = unwritable(os.path.expanduser(args.data_dir))
        if why and not data.is_prepared(args.data_dir):
            return f"--data-dir {args.data_dir}: holds no prepared MNIST to read and {why}"
    return None


def main(config: Config, argv: list[str] | None = None) -> Result:
    p = parser(config)
    args = p.parse_args(argv)
    if problem := flag_problem(args):
        p.error(problem)
    try:
        config, given = resolve(config, args)
        members = sweep.expand(config, given)
    except ConfigError as error:
        p.error(str(error))
    compile_cache.enable()
    if args.distributed or args.coordinator:
        init_distributed(args)
    watching = watchdog.start(p.prog, resume_hint(args.checkpoint_dir))
    options = experiment.Options(
        data_dir=args.data_dir,
        logdir=None if args.no_logs else args.logdir,
        json_path=args.json_path,
        csv_path=args.csv_path,
        verbose=not args.quiet,
        overwrite=args.overwrite,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        devices=args.devices,
        mesh=args.mesh,
        max_members=args.max_members,
    )
    swept = [o.key for o in given if len(o.values) > 1]
    try:
        result = experiment.run(config, members, swept, options)
    except (data.MnistError, ConfigError) as error:
        p.error(str(error))
    except (LogWriteError, files.WriteError) as error:
        p.exit(1, f"{p.prog}: stopped: {error}; {resume_hint(options.checkpoint_dir)}\n")
    except (interrupt.Interrupted, KeyboardInterrupt) as stopped:
        signum = getattr(stopped, "signum", signal.SIGINT)
        p.exit(128 + signum, stop_message(p.prog, stopped, argv, options.checkpoint_dir))
    except Exception:
        if watching is not None:  # a collective failed: if a peer died, the watchdog says so
            watching.join(2 * watchdog.LOST_AFTER_S)  # and ends the process in one line
        raise
    if args.quiet and jax.process_index() == 0:
        print(summary_table(result))
    if result.runs and all(r.diverged for r in result.runs):
        p.exit(1, divergence_message(p.prog, result))
    return result


def resume_hint(checkpoint_dir: str | None) -> str:
    if checkpoint_dir:
        every = " (on every process)" if jax.process_count() > 1 else ""
        return (
            f"the last checkpoint in {checkpoint_dir} is intact: run the same command again "
            f"with --resume{every}"
        )
    return "logs so far are kept; without --checkpoint-dir the run cannot be resumed"


def stop_message(prog: str, stopped: Exception, argv: list[str] | None, checkpoint_dir) -> str:
    """What stopped the run and, with a checkpoint, the command that resumes it."""
    what = str(stopped) if isinstance(stopped, interrupt.Interrupted) else "interrupted at once"
    if not checkpoint_dir:
        return (
            f"{prog}: stopped: {what}; logs so far are kept. Without --checkpoint-dir the run "
            "cannot be resumed\n"
        )
    args = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join([*prog.split(), *args, *([] if "--resume" in args else ["--resume"])])
    return (
        f"{prog}: stopped: {what}; the latest checkpoint is in {checkpoint_dir}. Resume with:\n"
        f"  {command}\n"
    )


def divergence_message(prog: str, result: Result) -> str:
    where = ", ".join(
        f"step {r.diverged_at_step} for {sweep.run_name(r.member)}" for r in result.runs
    )
    return (
        f"{prog}: stopped: the loss is not finite at {where}; nothing more can be learned, "
        "try a smaller --lr\n"
    )
