"""Reading what each kind of process reports: the project's `--json`, a peer's JSON line,
plain_jax_tbx's progress lines, the load script's line."""

import dataclasses
import json
import os
import re

from experiments.benchmark.variants import KIND_LOAD, KIND_PEER, KIND_TBX, Variant


@dataclasses.dataclass
class Process:
    """One process of one variant: what it measured, or why it failed."""

    epoch_seconds: list[float] = dataclasses.field(default_factory=list)
    wall_seconds: list[float | None] = dataclasses.field(default_factory=list)  # project only
    test_accuracy: float | None = None
    startup_seconds: float | None = None  # this project only: process start to first step
    load_seconds: float | None = None  # the load variant only: both splits
    process_seconds: float | None = None  # wall clock of the whole process, seen by the driver
    others_cpu: float | None = None  # share of all CPUs that other processes used meanwhile
    error: str | None = None


def parse_project(report: dict) -> Process:
    """This project's `--json`: every member shares the epoch time; the best member's accuracy."""
    runs = report["runs"]
    accuracies = [r["test_accuracy"] for r in runs if r.get("test_accuracy") is not None]
    return Process(
        epoch_seconds=[float(e["seconds"]) for e in runs[0]["epochs"]],
        wall_seconds=[e.get("wall_seconds") for e in runs[0]["epochs"]],
        test_accuracy=max(accuracies) if accuracies else None,
        startup_seconds=report.get("startup_seconds"),
    )


def json_line(stdout: str) -> dict:
    """The last line of stdout that looks like a JSON object."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError("no JSON line on stdout")
    return json.loads(lines[-1])


def parse_peer(stdout: str) -> Process:
    """A peer's one JSON line."""
    record = json_line(stdout)
    return Process(epoch_seconds=record["epoch_seconds"], test_accuracy=record["test_accuracy"])


def parse_tbx(stdout: str) -> Process:
    """plain_jax_tbx's lines: `epoch 1/10  0.91s  loss ...` per epoch (its whole epoch, logs
    and test set included), then `test accuracy 0.9486`."""
    seconds = [float(s) for s in re.findall(r"^epoch \d+/\d+\s+([\d.]+)s", stdout, re.M)]
    accuracy = re.findall(r"^test accuracy ([\d.]+)", stdout, re.M)
    if not accuracy:
        raise ValueError("no 'test accuracy' line on stdout")
    return Process(epoch_seconds=seconds, test_accuracy=float(accuracy[-1]))


def parse_load(stdout: str) -> Process:
    return Process(load_seconds=float(json_line(stdout)["load_seconds"]))


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def read_process(variant: Variant, stdout: str, workdir: str) -> Process:
    """What `variant`'s process reported: its `--json` in `workdir`, or its stdout."""
    if variant.is_project:
        with open(os.path.join(workdir, "out.json")) as f:
            return parse_project(json.load(f))
    parse = {KIND_PEER: parse_peer, KIND_TBX: parse_tbx, KIND_LOAD: parse_load}[variant.kind]
    return parse(stdout)
