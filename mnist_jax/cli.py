"""The one command line every experiment shares:
`python -m experiments.<name> [KEY=VALUE ...] [flags]`, in any order.

`KEY=VALUE` is the language: it sets any setting (`model.hidden=[512,512]`, `optimizer=adamw`,
`batch_size=128`); `KEY=A,B,C` or `KEY=start:stop:count` sweeps it, several swept keys make the
grid. A few settings have short forms (`SHORT_FORMS`: `--lr 1e-3` is `lr=1e-3`), parsed by the
same grammar into the same overrides. The other flags say where a run reads and writes and how
it reports. Every bad flag, key, value, combination or path is refused before any work starts,
in one line with exit status 2: `python -m experiments.<name>: error: MESSAGE`. The command
line is parsed once (`settings`), then trained (`experiment.run`).
"""

import argparse
import dataclasses
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

import jax

from mnist_jax import (
    checkpoint_folder,
    commands,
    compile_cache,
    datasets,
    experiment,
    files,
    interrupt,
    locations,
    overrides,
    search,
    sweep,
    watchdog,
)
from mnist_jax.config import Config, ConfigError
from mnist_jax.flags import (
    SHORT_FORMS,
    data_dir_problem,
    flag_problem,
    kept_defaults,
    mesh_layout,
    non_negative_int,
    positive_int,
    seconds,
    unknown_flag,
)
from mnist_jax.results import Result
from mnist_jax.tables import summary_table
from mnist_jax.writer import LogWriteError


class Parser(argparse.ArgumentParser):
    """argparse's parser, its errors one line: the usage block it prints first buries them."""

    setting_keys: list[str] = []  # the experiment's keys: a flag named like one is pointed there

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser(config: Config) -> Parser:
    p = Parser(
        prog=f"python -m {experiment_module(config)}",
        description=sys.modules["__main__"].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # `--epoch` is a typo to name, not `--epochs` to guess
    )
    p.setting_keys = sweep.valid_keys(config, sweep.names_in(config))
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="set or sweep any setting, before, between or after the flags: "
        "model.hidden=[512,512], model.dropout_rate=0,0.25, optimizer=adamw, "
        "optimizer.weight_decay=1e-4:1e-2:3, lr=..., seed=0,1, batch_size=128",
    )
    p.add_argument(
        "--tutorial",
        action="store_true",
        help="the tutorial's exact setting: raw pixels, binary cross-entropy, its "
        f"optimizer and rate ({config.tutorial_setting().lr:g})",
    )
    short = p.add_argument_group(
        "short forms", "each the same as its KEY=VALUE, and taking the same values and sweeps"
    )
    for form in SHORT_FORMS:
        metavar = form.key.rpartition(".")[2].upper()
        kind = {"action": "store_const", "const": "true"} if form.switch else {"metavar": metavar}
        same = f"{form.key}={'true' if form.switch else metavar}"
        help = f"{form.help}; default {_default(config, form.key)} (the same as {same})"
        short.add_argument(form.flag, dest=form.key, help=help, **kind)
    p.add_argument("--data-dir", help="tfds data dir (default: $TFDS_DATA_DIR or tfds' own)")
    p.add_argument("--logdir", default="logs", help="TensorBoard logs (default logs/)")
    p.add_argument(
        "--no-logs",
        dest="logdir",
        action="store_const",
        const=None,
        help="write no TensorBoard logs (for timing runs)",
    )
    p.add_argument("--json", dest="json_path", help="write the results as JSON here")
    p.add_argument("--csv", dest="csv_path", help="write one row per run, swept keys first")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace earlier logs of the same runs (and the checkpoints in --checkpoint-dir) "
        "instead of keeping them beside the new ones",
    )
    p.add_argument(
        "--checkpoint-dir",
        help="save the whole training state here, after the last epoch and as --checkpoint-every "
        "says (a stopped run saves the epoch it stops after)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=seconds,
        metavar="SECONDS",
        help="save after the first epoch that ends this long after the last save began "
        f"(default {experiment.Options.checkpoint_every:g}; 0: after every epoch)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the latest checkpoint in --checkpoint-dir (--epochs stays the total)",
    )
    p.add_argument(
        "--quiet", dest="verbose", action="store_false", help="print only the final table"
    )
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
    return p


def experiment_module(config: Config) -> str:
    """The module this command runs: `__main__` when it defines an experiment (`python -m
    experiments.X`, or a module of one's own), else the experiment named by `config`."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and hasattr(main, "CONFIG"):
        return spec.name
    return f"experiments.{config.name}"


def _default(config: Config, key: str) -> str:
    """`key`'s value in `config`, as the help shows it."""
    if key == "epochs" and config.steps is not None:
        return f"{config.steps} steps"
    kind, _, setting = key.partition(".")
    if kind == "search":
        value = getattr(search.Search(), search.KEYS[key])
        return "none" if value is None else str(value)
    if setting:
        value = getattr(config, kind).get(setting)
        return "none" if value is None else str(value)
    value = getattr(config, key)
    return f"{value:g}" if isinstance(value, float) else str(value).lower()


def parse(p: Parser, argv: list[str] | None) -> argparse.Namespace:
    """The flags and `KEY=VALUE`s in any order; a flag that does not exist is refused naming
    the nearest one (or the setting it meant), and no flag is taken from its abbreviation. A
    flag given twice is refused, as a key given twice is; after `--` every word is a
    `KEY=VALUE`."""
    words = list(sys.argv[1:] if argv is None else argv)
    if problem := repeated_flag(p, words[: words.index("--")] if "--" in words else words):
        p.error(problem)
    args, unknown = p.parse_known_intermixed_args(argv)
    for word in unknown:
        if word.startswith("-"):
            p.error(unknown_flag(p, word.partition("=")[0], p.setting_keys))
    if unknown:  # not a flag: what argparse could not place after a flag of no value
        p.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def repeated_flag(p: Parser, words: list[str]) -> str | None:
    """`--steps 50 --steps 60`: a flag given more than once, or two that set the same thing
    (`--logdir x --no-logs`), or None."""
    seen: dict[str, list[str]] = {}
    for word in words:
        action = p._option_string_actions.get(word.partition("=")[0])
        if action is not None and word.startswith("--"):
            seen.setdefault(action.dest, []).append(word.partition("=")[0])
    for flags in seen.values():
        if len(set(flags)) > 1:
            return f"give {' or '.join(dict.fromkeys(flags))}, not both"
        if len(flags) > 1:
            return f"{flags[0]} is given {len(flags)} times; give it once"
    return None


def init_distributed(args: argparse.Namespace) -> None:
    """Joins the other processes before any device is touched; CPUs talk over gloo."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )


def settings(
    config: Config, args: argparse.Namespace, opts: experiment.Options
) -> tuple[Config, search.Population]:
    """The base config (the tutorial's setting if asked) and the members the overrides ask
    for, parsed, checked and drawn here, once: a bad override is named as the user wrote it
    (`--lr 0:1`, `'lr=0:1'`). The short forms come first, in `SHORT_FORMS`' order."""
    if args.tutorial:
        config = config.tutorial_setting()
    texts, shown = [], []  # each override as KEY=VALUE, and as the user wrote it
    for form in SHORT_FORMS:
        value = getattr(args, form.key)
        if value is not None:
            texts.append(f"{form.key}={value}")
            shown.append(form.flag if form.switch else f"{form.flag} {value}")
    texts += args.overrides
    shown += [repr(text) for text in args.overrides]
    try:
        given = overrides.parse_all(texts, shown)
    except overrides.OverrideError as error:
        raise ConfigError(str(error)) from None
    population = experiment.populate(config, given, opts)
    names = {m.config.dataset for m in population.members}
    if problem := data_dir_problem(args.data_dir, names):
        raise ConfigError(problem)
    return config, population


def main(config: Config, argv: list[str] | None = None, defaults: Sequence[str] = ()) -> Result:
    """Parses the command line once, then trains (`experiment.run`); exits with a line on what
    failed. `defaults`: `KEY=VALUE`s an experiment module adds (a search's settings), each
    dropped when the command line sets its key."""
    p = parser(config)
    args = parse(p, argv)
    args.overrides = [*kept_defaults(defaults, args), *args.overrides]
    if problem := flag_problem(args):
        p.error(problem)
    # The search's settings travel as overrides (`search.samples=9`).
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(experiment.Options)}
    del given["search"]
    if given["checkpoint_every"] is None:  # left out: `Options`' default
        del given["checkpoint_every"]
    opts = experiment.Options(**given)
    try:
        if args.resume:  # the saved run's own modules, from their files if need be
            locations.import_for_resume(args.checkpoint_dir)
        config, population = settings(config, args, opts)
    except ConfigError as error:
        p.error(str(error))
    compile_cache.enable()
    if args.distributed or args.coordinator:
        init_distributed(args)
    processes = jax.process_count()  # here: the watchdog's thread must not start JAX's backend
    watching = watchdog.start(
        p.prog, lambda: resume_hint(args.checkpoint_dir, processes, args.logdir)
    )
    experiment.announce_chunks(population, opts)
    try:
        result = experiment.run(config, population, opts)
    except (datasets.DataError, ConfigError) as error:
        p.error(str(error))
    except files.WriteError as error:  # a result file or a checkpoint: it says what is kept
        p.exit(1, f"{p.prog}: stopped: {error}\n")
    except LogWriteError as error:
        hint = resume_hint(args.checkpoint_dir, jax.process_count(), args.logdir)
        p.exit(1, f"{p.prog}: stopped: {error}; {hint}\n")
    except (interrupt.Interrupted, KeyboardInterrupt) as stopped:
        signum = getattr(stopped, "signum", signal.SIGINT)
        p.exit(128 + signum, stop_message(p.prog, stopped, argv, args))
    except Exception:
        if watching is not None:  # a collective failed: if a peer died, the watchdog says so
            watching.join(2 * watchdog.LOST_AFTER_S)  # and ends the process in one line
        raise
    if not args.verbose and jax.process_index() == 0:
        print(summary_table(result))
    if result.runs and all(r.diverged for r in result.runs):
        p.exit(1, divergence_message(p.prog, result))
    return result


def resume_hint(checkpoint_dir: str | None, processes: int = 1, logdir: str | None = "") -> str:
    every = " (on every process)" if processes > 1 else ""
    if checkpoint_dir and not checkpoint_folder.has_run(checkpoint_dir):
        return f"nothing was saved in {checkpoint_dir} yet: run the same command again"
    if checkpoint_dir and not checkpoint_folder.has_saved_epoch(checkpoint_dir):
        return (
            f"no epoch was saved in {checkpoint_dir} yet: run the same command again with "
            f"--resume{every}, which starts from the first epoch"
        )
    if checkpoint_dir:
        return (
            f"the last checkpoint in {checkpoint_dir} is intact: run the same command again "
            f"with --resume{every}"
        )
    kept = "logs so far are kept; " if logdir is not None else ""
    return f"{kept}without --checkpoint-dir the run cannot be resumed"


def stop_message(prog: str, stopped: Exception, argv: list[str] | None, parsed) -> str:
    """What stopped the run and the command that runs it again: with a checkpoint, the one that
    resumes it; without, the same command, and how to make the next one resumable."""
    what = str(stopped) if isinstance(stopped, interrupt.Interrupted) else "interrupted at once"
    args = list(sys.argv[1:] if argv is None else argv)
    module, checkpoint_dir = prog.split()[-1], parsed.checkpoint_dir
    if not checkpoint_dir:
        kept = "the logs so far are kept, but " if parsed.logdir is not None else ""
        return (
            f"{prog}: stopped: {what}; {kept}nothing was saved to resume "
            f"from. Run it again with:\n  {commands.python_module(module, *args)}\n"
            "(add --checkpoint-dir DIR to save it as it trains: then --resume continues it)\n"
        )
    if not checkpoint_folder.has_run(checkpoint_dir):  # stopped before a save
        return (
            f"{prog}: stopped: {what}; nothing was saved in {checkpoint_dir} yet. Run it again "
            f"with:\n  {commands.python_module(module, *args)}\n"
        )
    command = commands.python_module(module, *args, *([] if "--resume" in args else ["--resume"]))
    if not checkpoint_folder.has_saved_epoch(checkpoint_dir):  # stopped before its first save
        return (
            f"{prog}: stopped: {what}; no epoch was saved in {checkpoint_dir} yet. Run it again, "
            f"from the first epoch, with:\n  {command}\n"
        )
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
