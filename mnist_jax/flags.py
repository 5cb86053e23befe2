"""The command line's flags apart from the parser: the short forms of settings, the flags'
values, and the checks of flags and paths made before any work."""

import argparse
import dataclasses
import difflib
import os
from collections.abc import Sequence

from mnist_jax import data, datasets, devices, files, losses, models, search
from mnist_jax.config import DTYPES
from mnist_jax.overrides import EXCLUSIVE


@dataclasses.dataclass(frozen=True)
class ShortForm:
    """A flag that stands for a key: `--lr 1e-3,3e-3` is `lr=1e-3,3e-3`, value and all."""

    flag: str
    key: str
    help: str
    switch: bool = False  # takes no value: `--raw-pixels` is `raw_pixels=true`
    also: tuple[str, ...] = ()  # other spellings a user may guess, answered with `flag`


SHORT_FORMS = (
    ShortForm(
        "--lr",
        "lr",
        "learning rate; a sweep: 3e-4,1e-3,3e-3 or 1e-4:1e-2:5 (log-spaced start:stop:count)",
        also=("--learning-rate",),
    ),
    ShortForm("--seed", "seed", "initialisation and dropout; repeats: 0,1,2 (a member each)"),
    ShortForm("--epochs", "epochs", "passes over the training set"),
    ShortForm("--steps", "steps", "total batches instead of epochs"),
    ShortForm("--init-from", "init_from", "start from this checkpoint dir's trained parameters"),
    ShortForm("--batch-size", "batch_size", "examples per batch"),
    ShortForm("--loss", "loss", f"one of {', '.join(losses.LOSSES.names())}"),
    ShortForm(
        "--raw-pixels", "raw_pixels", "feed pixels 0..255 unscaled, as the tutorial did", True
    ),
    ShortForm("--dtype", "dtype", f"matmul precision: {', '.join(DTYPES)}"),
    ShortForm(
        "--activation",
        "model.activation",
        f"the hidden layers' activation: {', '.join(models.ACTIVATIONS)}",
    ),
    ShortForm(
        "--search",
        "search",
        f"a search on the validation split: {', '.join(search.STRATEGIES)} (random is the "
        "default with --samples)",
    ),
    ShortForm("--samples", "search.samples", "settings drawn from the distributions given"),
    ShortForm("--search-seed", "search.seed", "the draws' seed, and PBT's"),
    ShortForm("--eta", "search.eta", "halving keeps the best 1/eta of each rung"),
    ShortForm("--rung-epochs", "search.rung_epochs", "epochs each halving rung trains"),
    ShortForm("--pbt-interval", "search.pbt_interval", "epochs between PBT's copies"),
)


def _whole_number(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, got {text!r}")
    return value


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


def unknown_flag(p: argparse.ArgumentParser, flag: str, keys: list[str]) -> str:
    """`--epohcs`: did you mean --epochs? `--dropout-rate`: model.dropout_rate= is a KEY=VALUE
    (`keys`: the settings there are)."""
    flags = [o for a in p._actions for o in a.option_strings if o.startswith("--")]
    if flag.replace("_", "-") in flags:
        return f"unknown flag {flag}; did you mean {flag.replace('_', '-')}?"
    key = flag.lstrip("-").replace("-", "_")
    meant = [k for k in keys if key in (k, k.rpartition(".")[2])] or ([key] if "." in key else [])
    if meant:
        return f"unknown flag {flag}; settings are KEY=VALUE, without dashes: {meant[0]}=..."
    spellings = {f: f for f in flags} | {
        other: form.flag for form in SHORT_FORMS for other in form.also
    }
    near = difflib.get_close_matches(flag.replace("_", "-"), list(spellings), n=1, cutoff=0.7)
    if near:
        return f"unknown flag {flag}; did you mean {spellings[near[0]]}?"
    return f"unknown flag {flag}; see --help for the flags, and any setting is KEY=VALUE"


def kept_defaults(defaults: Sequence[str], args: argparse.Namespace) -> list[str]:
    """The `defaults` whose keys the command line leaves alone (`epochs` and `steps` count as
    one key: giving either replaces a default of the other)."""
    given = {text.partition("=")[0].strip() for text in args.overrides}
    given |= {form.key for form in SHORT_FORMS if getattr(args, form.key) is not None}
    for exclusive in EXCLUSIVE:
        if given & set(exclusive):
            given |= set(exclusive)
    return [d for d in defaults if d.partition("=")[0].strip() not in given]


def flag_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the flags taken together or with the paths they name; None if nothing.

    Checked before anything runs, so that a bad path fails at once and not after training.
    """
    if args.resume and args.checkpoint_dir is None:
        return "--resume needs --checkpoint-dir, the folder of the checkpoints to resume from"
    if args.checkpoint_every is not None and args.checkpoint_dir is None:
        return "--checkpoint-every needs --checkpoint-dir, the folder to save the checkpoints in"
    if args.resume and args.overwrite:
        return "give --resume or --overwrite, not both: --overwrite starts afresh"
    for flag, path in [("--json", args.json_path), ("--csv", args.csv_path)]:
        if path is not None and (why := files.length_problem(path)):
            return f"{flag} {files.shortened(path)}: {why}"
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
        if path is not None and (why := files.folder_problem(folder)):
            return f"{flag} {files.shortened(path)}: {why}"
    return None


def data_dir_problem(data_dir: str | None, names: set[str]) -> str | None:
    """Why `--data-dir` can neither provide nor receive the tfds datasets `names`, or None."""
    if data_dir is None:
        return None
    why = files.folder_problem(os.path.expanduser(data_dir))
    for name in sorted(n for n in names if datasets.tfds_spec(n)):
        if why and not data.is_prepared(data_dir, name):
            return f"--data-dir {data_dir}: holds no prepared {name} to read and {why}"
    return None
