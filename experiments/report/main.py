"""The report's command line: train every experiment's two settings over the seeds, record where
the report came from (naming no path of this machine), and write the markdown."""

import argparse
import dataclasses
import datetime
import importlib
import os
import platform
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import jax

import experiments.report as package
from experiments import MNIST_EXPERIMENTS
from experiments.report import QUICK_STEPS, SEEDS, markdown
from mnist_jax import experiment, files, flags, interrupt
from mnist_jax.config import Config

SEED_SWEEP = f"seed={','.join(map(str, SEEDS))}"
OUT = "REPORT.md"  # the committed report
# Beside OUT in the current directory, so a smoke run is easy to find, and git-ignored, so its
# meaningless numbers never replace the committed report or get committed by accident.
QUICK_OUT = "REPORT.quick.md"
LOGDIR = "logs/report"  # the full report's; a quick one keeps its logs only with --logdir


def settings(name: str, quick: bool) -> dict[str, Config]:
    """The experiment's two settings (each trained as one sweep over SEEDS); a few steps if
    `quick`."""
    config = importlib.import_module(f"experiments.{name}").CONFIG
    if quick:
        config = dataclasses.replace(config, epochs=None, steps=QUICK_STEPS)
    return {"tutorial": config.tutorial_setting(), "corrected": config}


SWEEPS = len(MNIST_EXPERIMENTS) * len(package.SETTINGS)


def run_all(
    quick: bool, data_dir: str | None, logdir: str, stop: interrupt.StopOnSignal
) -> Iterator[tuple[str, str, dict]]:
    """(experiment, setting, that sweep's result as its JSON report has it), sweep by sweep, so
    the caller keeps those done when a signal stops the rest: none starts once `stop` has one,
    and a sweep it stops part-way yields nothing."""
    for name in MNIST_EXPERIMENTS:
        for setting, config in settings(name, quick).items():
            if stop.signum is not None:
                return
            print(f"== {name}, {setting} setting", flush=True)
            try:
                result = experiment.train_and_evaluate(
                    config, [SEED_SWEEP], data_dir=data_dir, logdir=os.path.join(logdir, setting)
                )
            except interrupt.Interrupted:
                return
            yield name, setting, result.to_json()


def partial_out(out: str) -> str:
    """Where a report stopped by a signal goes: beside `out`, never over a whole one."""
    path = Path(out)
    return str(path.with_name(f"{path.stem}.partial{path.suffix or '.md'}"))


def collect(runs: Iterator[tuple[str, str, dict]]) -> dict[str, dict[str, dict]]:
    """`results[experiment][setting]` from `run_all`, up to a second signal's KeyboardInterrupt
    (which abandons the sweep in flight)."""
    results = {}
    try:
        for name, setting, report in runs:
            results.setdefault(name, {})[setting] = report
    except KeyboardInterrupt:
        pass
    return results


def git_commit() -> str:
    """The checkout's commit, flagged when the library or experiments differ from it."""
    repo = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changes = git(
            "status", "--porcelain", "--untracked-files=no", "--", "mnist_jax", "experiments"
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" with uncommitted changes" if changes else "")


def shown_path(path: str, placeholder: str) -> str:
    """`path` as given when relative; an absolute one names this machine's layout, so
    `placeholder` stands for it."""
    return placeholder if os.path.isabs(os.path.expanduser(path)) else path


def command_text(args: argparse.Namespace) -> str:
    """The command as the report prints it, rebuilt from the parsed flags (so `--data=/x` and
    `--data-dir /x` read alike): no `--data-dir`, which only says where this machine keeps
    MNIST, and absolute paths as placeholders."""
    words = ["--quick"] if args.quick else []
    if args.out is not None:
        words += ["--out", shown_path(args.out, "OUT")]
    if args.logdir not in (None, default_logdir(args.quick)):
        words += ["--logdir", shown_path(args.logdir, "LOGDIR")]
    return " ".join(["python -m experiments.report", *map(shlex.quote, words)])


def default_logdir(quick: bool) -> str | None:
    """Where the runs log without `--logdir`: LOGDIR, or nowhere kept for a quick report."""
    return None if quick else LOGDIR


def metadata(args: argparse.Namespace, seconds: float) -> dict:
    """The run's provenance for `render`: no absolute path of this machine in any of it."""
    logdir = args.logdir or default_logdir(args.quick)
    device = jax.devices()[0]
    return {
        "command": command_text(args),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "device": f"{jax.device_count()} × {device.device_kind}, {os.cpu_count()} CPU cores",
        "jax": jax.__version__,
        "commit": git_commit(),
        "seconds": seconds,
        "logdir": logdir and shown_path(logdir, "LOGDIR"),
        "quick": args.quick,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m experiments.report",
        description=package.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a few steps per run: a smoke test")
    p.add_argument("--out", help=f"default {OUT}, or {QUICK_OUT} with --quick")
    p.add_argument("--data-dir", help="tfds data dir (default: $TFDS_DATA_DIR or tfds' own)")
    p.add_argument(
        "--logdir", help=f"default {LOGDIR}; with --quick, a temporary folder removed at the end"
    )
    args = p.parse_args(argv)
    out = args.out or (QUICK_OUT if args.quick else OUT)
    if why := files.destination_problem(out):  # refused now, not after the long run
        p.exit(2, f"{p.prog}: error: --out {out}: {why}\n")
    if problem := set_up_problem(args.data_dir, args.logdir):  # and so is its own set-up
        p.exit(2, f"{p.prog}: error: {problem}\n")
    start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="mnist_jax-quick-report-") as scratch,
        interrupt.StopOnSignal(after="this epoch of this sweep") as stop,
    ):
        logdir = args.logdir or default_logdir(args.quick) or scratch
        results = collect(run_all(args.quick, args.data_dir, logdir, stop))
    kept = "" if logdir == scratch else f"; the runs' logs are in {logdir}"
    if stop.signum is not None:
        stopped(p, args, results, stop.signum, time.perf_counter() - start, out, kept)
    try:
        files.write_atomic(
            out, markdown.render(results, metadata(args, time.perf_counter() - start))
        )
    except files.WriteError as error:
        p.exit(1, f"{p.prog}: stopped: {error}{kept}\n")
    if args.quick:
        print(
            f"wrote the quick smoke report (its numbers mean nothing) to {Path(out).resolve()}"
            + (kept or "; its logs were not kept (--logdir DIR keeps them)")
        )
    else:
        print(f"wrote the report to {Path(out).resolve()}{kept}")


def set_up_problem(data_dir: str | None, logdir: str | None) -> str | None:
    """What stops the report before its first run, as it would stop each experiment: a data dir
    that neither holds MNIST nor can receive it, a log folder that cannot be made; else None."""
    if problem := flags.data_dir_problem(data_dir, {"mnist"}):
        return problem
    if logdir is not None and (why := files.folder_problem(logdir)):
        return f"--logdir {logdir}: {why}"
    return None


def stopped(p, args, results, signum: int, seconds: float, out: str, kept: str) -> None:
    """Exits 128 + `signum` after writing the sweeps that finished as a partial report."""
    done = sum(len(by_setting) for by_setting in results.values())
    what = f"{signal.Signals(signum).name} after {done} of {SWEEPS} sweeps"
    if not done:
        p.exit(128 + signum, f"{p.prog}: stopped: {what}; no report written{kept}\n")
    partial = partial_out(out)
    meta = {**metadata(args, seconds), "partial": what}
    try:
        files.write_atomic(partial, markdown.render_partial(results, meta))
    except files.WriteError as error:
        p.exit(1, f"{p.prog}: stopped: {what}; {error}{kept}\n")
    p.exit(128 + signum, f"{p.prog}: stopped: {what}; the partial report is in {partial}{kept}\n")
