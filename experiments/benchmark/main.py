"""The benchmark's command line: choose the variants, run them, print and write the figures."""

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile

import experiments.benchmark as package
from experiments.benchmark import inputs, report, running, summary, variants
from experiments.benchmark.variants import Variant
from mnist_jax import commands


def member_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(v) for v in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected member counts like 1,8,64, got {text!r}")
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m experiments.benchmark",
        description=package.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--epochs", type=int, default=5, help="per process, first dropped (default 5)")
    p.add_argument(
        "--long-epochs",
        type=int,
        default=10,
        help="epochs of the longer whole-process comparison (default 10)",
    )
    p.add_argument("--data-dir", help="MNIST data dir, as the experiments take it")
    p.add_argument("--mnist", help="the four gzip IDX files for plain_jax_tbx (default: written)")
    p.add_argument("--only", help="comma-separated variant names (default: all installed)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per process (default 600)")
    p.add_argument("--json", dest="json_path", help="write every figure as JSON here")
    p.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the untimed warm-up round: figures of cold caches (for a quick check)",
    )
    p.add_argument(
        "--accelerator",
        action="store_true",
        help="time sweeps of --members members on JAX's default backend instead",
    )
    p.add_argument(
        "--members",
        type=member_counts,
        default=variants.ACCELERATOR_MEMBERS,
        help="with --accelerator: sweep sizes (default 1,8,64,256)",
    )
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be at least 2: each process's first epoch is dropped")
    if args.long_epochs < 1:
        p.error("--long-epochs must be at least 1")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def choose(args: argparse.Namespace) -> tuple[list[Variant], list[Variant]]:
    """The variants to run and those skipped for want of their framework."""
    if args.accelerator:
        return list(variants.accelerator_variants(args.members)), []
    chosen, skipped = variants.available(variants.VARIANTS)
    if args.only:
        wanted = args.only.split(",")
        known = [v.name for v in variants.VARIANTS]
        unknown = set(wanted) - set(known)
        if unknown:
            sys.exit(f"unknown variant(s) {sorted(unknown)}; known: {known}")
        chosen = [v for v in chosen if v.name in wanted]
        skipped = [v for v in skipped if v.name in wanted]
    return chosen, skipped


def skipped_note(skipped: list[Variant]) -> str:
    """The variants left out, and the command that installs what they import."""
    missing = ", ".join(sorted({v.requires for v in skipped}))
    return (
        f"skipped, not installed: {', '.join(v.name for v in skipped)} (they need {missing}: "
        f"{commands.python()} -m pip install -e '.[bench]')"
    )


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    chosen, skipped = choose(args)
    if skipped:
        print(skipped_note(skipped), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        read = inputs.prepare(chosen, args.data_dir, args.mnist, tmp)
        examples = inputs.train_examples(args.data_dir) if args.accelerator else None
        found = running.backend() if args.accelerator else None
        if found and found["count"] > 1 and 8 % found["count"] == 0:
            chosen += variants.layout_variants(found["count"])
        processes = running.run_rounds(
            chosen, read, args.rounds, args.epochs, args.long_epochs, args.timeout, args.warmup
        )

    summaries = {name: summary.summarise(ps) for name, ps in processes.items()}
    summary.add_ratios(summaries)
    record = {
        "config": {k: getattr(args, k) for k in ("rounds", "epochs", "long_epochs", "data_dir")}
        | {"warmup": args.warmup, "accelerator": args.accelerator},
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": report.cpu_name(),
            "platform": platform.platform(),
        },
        "versions": report.versions(),
        "skipped": [v.name for v in skipped],
        "variants": {name: dataclasses.asdict(s) for name, s in summaries.items()},
    }
    if args.accelerator:
        record |= print_accelerator(args, summaries, found, examples)
    else:
        record |= print_cpu(args, summaries)
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(record, f, indent=2)
    return record


def heading(args: argparse.Namespace) -> str:
    warm = "after an untimed warm-up round" if args.warmup else "cold (--no-warmup)"
    return (
        f"{args.rounds} interleaved rounds x {args.epochs} epochs per process (first dropped),"
        f" {warm}; host {os.cpu_count()} CPUs, {report.cpu_name()}"
    )


def print_cpu(args: argparse.Namespace, summaries: dict) -> dict:
    goals = summary.targets(summaries, args.long_epochs)
    print(
        f"batch 100: {heading(args)}; whole processes 1 and {args.long_epochs} epochs,"
        f" the CNN's {variants.CNN_EPOCHS}"
    )
    print(", ".join(f"{k} {v}" for k, v in report.versions().items()))
    print(report.table(summaries, goals))
    return {"targets": [dataclasses.asdict(t) | {"passed": t.passed} for t in goals]}


def print_accelerator(args, summaries: dict, found: dict, examples: int) -> dict:
    rows = report.accelerator_rows(summaries, args.members, examples)
    print(
        f"five_layer_relu learning-rate sweeps, batch 100, no logs, on {found['backend']}"
        f" ({found['count']} x {found['device']}): {heading(args)}; {examples:,} training"
        " examples an epoch"
    )
    print(", ".join(f"{k} {v}" for k, v in report.versions().items()))
    print(report.accelerator_table(summaries, rows))
    if "sweep8_by_members" in summaries:
        print(report.layout_line(summaries, found["count"]))
    return {
        "backend": found,
        "train_examples": examples,
        "accelerator": [dataclasses.asdict(r) for r in rows],
    }
