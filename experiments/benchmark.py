"""How fast this project is, against hand-written peers, as ratios to targets, in one run.

Every variant runs in a fresh process, interleaved round-robin (A B C ... A B C ..., `--rounds`
times) so that a slow spell of the host hits them all alike, after one untimed warm-up round of
1-epoch processes that fills the caches a user's second run finds (decoded MNIST, the OS's file
cache, and JAX's compilation cache, kept private to the benchmark in its temporary folder through
$MNIST_JAX_COMPILE_CACHE: a user's own cache is neither read nor written). Per process the first
epoch (compilation, warm-up) is dropped and the median of the rest kept; per variant the median
over rounds. Prints one table of the variants, then every comparison as its two figures and the
ratio against its target, pass or fail.

    python -m experiments.benchmark --rounds 5 --epochs 5 [--long-epochs 10] [--json bench.json]
    python -m experiments.benchmark --rounds 1 --epochs 3 --long-epochs 3   # a quick check
    python -m experiments.benchmark --accelerator [--members 1,8,64,256]    # a GPU or TPU host

The variants:
- seconds per epoch: this project (five_layer_relu) in float32 with TensorBoard logs and with
  `--no-logs`, in `--dtype bfloat16`, as an 8-member learning-rate sweep; five_layer_relu_dropout
  as an 8-member learning-rate sweep and as an 8-member dropout-rate sweep; then the peers of
  `experiments/peers/`: plain JAX always, PyTorch eager, torch.compile and Keras 3 on JAX when
  installed (`pip install -e .[bench]`). Adding a peer is one line in `VARIANTS`.
- whole processes: `python -m experiments.five_layer_relu --epochs 1` and `--epochs 10` as a
  user runs them (logs written, progress printed), against the same job written by hand in
  `experiments/peers/plain_jax_tbx.py`, which reads the four gzip IDX files: the benchmark writes
  them from the prepared dataset (gzip level 6) unless `--mnist DIR` names the originals.
- start-up: the project's `startup_seconds` (process start to first step), and a fresh process
  loading both MNIST splits with `data.load_mnist` (its imports not counted).
- around the epoch: (sum of `wall_seconds` - `seconds`) / sum of `seconds` over the epochs after
  the first, from the project's JSON: evaluation, metric transfer, handing the logs to the writer
  thread and everything else between two compiled epochs, as a share of training.

`--accelerator` times, on whatever JAX's default backend is, five_layer_relu as learning-rate
sweeps of `--members` members (1 is a single run), without logs: steady epoch seconds, training
examples per second (members x 60,000 / epoch seconds) and each member's cost against a run alone.

Only measured numbers are printed: a sweep's test accuracy is its best member's; `others` is the
share of the CPUs that other processes took during a variant's runs (/proc/stat less the child's
CPU time), a warning that the host was not quiet.
"""

import argparse
import contextlib
import dataclasses
import gzip
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT = "experiments.five_layer_relu"
DROPOUT = "experiments.five_layer_relu_dropout"
TBX = "experiments.peers.plain_jax_tbx"
SWEEP_RATES = tuple(float(f"{lr:.4g}") for lr in np.geomspace(1e-4, 1e-2, 8))
DROPOUT_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
BASELINE, TORCH = "plain_jax", "torch_eager"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "torch", "keras")
COMPILE_CACHE_ENV = "MNIST_JAX_COMPILE_CACHE"  # as mnist_jax.compile_cache reads it
IDX_FILES = {  # as plain_jax_tbx reads them
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
ACCELERATOR_MEMBERS = (1, 8, 64, 256)

# How a variant is run and read.
KIND_PROJECT = "project"  # an experiment module: `--json` report, logs or `--no-logs`
KIND_PEER = "peer"  # experiments/peers contract: `--data NPZ`, one JSON line on stdout
KIND_TBX = "tbx"  # plain_jax_tbx: `--mnist IDX_DIR --logdir D`, progress lines on stdout
KIND_LOAD = "load"  # LOAD_SCRIPT: load both splits in a fresh process, one JSON line
# How many epochs a variant's process trains.
LENGTH_EPOCHS, LENGTH_ONE, LENGTH_LONG = "epochs", "one", "long"  # --epochs, 1, --long-epochs

LOAD_SCRIPT = """
import json, sys, time
from mnist_jax import data
start = time.perf_counter()
for split in ("train", "test"):
    data.load_mnist(split, data_dir=sys.argv[1] or None)
print(json.dumps({"load_seconds": time.perf_counter() - start}))
"""


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    module: str  # run as `python -m module`
    args: tuple[str, ...] = ()
    requires: str | None = None  # a module that must be importable, else the variant is skipped
    kind: str = KIND_PEER
    length: str = LENGTH_EPOCHS
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
    with each batch split over them instead (issue 13)."""
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
    Variant("run_1", PROJECT, kind=KIND_PROJECT, length=LENGTH_ONE, quiet=False),
    Variant("tbx_1", TBX, requires="tensorboardX", kind=KIND_TBX, length=LENGTH_ONE),
    Variant("run_long", PROJECT, kind=KIND_PROJECT, length=LENGTH_LONG, quiet=False),
    Variant("tbx_long", TBX, requires="tensorboardX", kind=KIND_TBX, length=LENGTH_LONG),
    Variant("load", "mnist_jax.data", kind=KIND_LOAD),
    *layout_variants(2, host_devices=2),
)


def layout_line(summary: dict[str, dict], devices: int) -> str:
    by_member = summary.get("sweep8_by_members", {}).get("seconds_per_epoch")
    by_data = summary.get("sweep8_by_data", {}).get("seconds_per_epoch")
    return (
        f"8-member sweep on {devices} devices: members sharded {fmt(by_member, '.3f')} s/epoch,"
        f" batch split (data parallel) {fmt(by_data, '.3f')} s/epoch, ratio"
        f" {fmt(ratio(by_member, by_data), '.3f')}"
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


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What the processes read, and the compilation cache the project's processes share."""

    data_dir: str | None = None  # the tfds data dir, as the experiments take it
    npz: str | None = None  # the peers' .npz
    idx_dir: str | None = None  # the four gzip IDX files, for plain_jax_tbx
    compile_cache: str | None = None  # $MNIST_JAX_COMPILE_CACHE for every process


@dataclasses.dataclass
class Result:
    """One process of one variant: what it measured, or why it failed."""

    epoch_seconds: list[float] = dataclasses.field(default_factory=list)
    wall_seconds: list[float | None] = dataclasses.field(default_factory=list)  # project only
    test_accuracy: float | None = None
    startup_seconds: float | None = None  # this project only: process start to first step
    load_seconds: float | None = None  # the load variant only: both splits
    process_seconds: float | None = None  # wall clock of the whole process, seen by the driver
    others_cpu: float | None = None  # share of all CPUs that other processes used meanwhile
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Target:
    what: str
    measured: float | None  # None: a variant it needs is missing or failed
    limit: float | None  # None: shown for information, no target
    strict: bool = False  # `measured < limit` rather than `<=`
    figures: str = ""  # the measured figures the ratio comes from

    @property
    def passed(self) -> bool | None:
        if self.measured is None or self.limit is None:
            return None
        return self.measured < self.limit if self.strict else self.measured <= self.limit


def available(variants) -> tuple[list[Variant], list[Variant]]:
    """Variants whose framework is importable, and those skipped; nothing is imported here."""
    ok = [v for v in variants if v.requires is None or importlib.util.find_spec(v.requires)]
    return ok, [v for v in variants if v not in ok]


def load_split(split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    from mnist_jax import data

    try:
        return data.load_mnist(split, data_dir=data_dir)
    except data.MnistError as error:
        raise SystemExit(f"benchmark: {error}") from error


def write_npz(path: str, data_dir: str | None) -> None:
    """MNIST as the peers read it: float32 [N, 784] pixels in [0, 1], int32 labels."""
    from mnist_jax import data

    arrays = {}
    for split in ("train", "test"):
        images, labels = load_split(split, data_dir)
        arrays[f"x_{split}"] = data.flatten(data.to_inputs(images))  # as the project feeds it
        arrays[f"y_{split}"] = np.asarray(labels, np.int32)
    np.savez(path, **arrays)


def write_idx_file(path: str, array: np.ndarray) -> None:
    """One gzip IDX file of uint8: magic 0 0 8 ndim, one big-endian int32 per dimension, data."""
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    with gzip.open(path, "wb", compresslevel=6) as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def write_idx(folder: str, data_dir: str | None) -> None:
    """The prepared dataset as the four gzip IDX files plain_jax_tbx reads (same pixels)."""
    os.makedirs(folder, exist_ok=True)
    for split, (images_file, labels_file) in IDX_FILES.items():
        images, labels = load_split(split, data_dir)
        write_idx_file(os.path.join(folder, images_file), images.reshape(len(images), 28, 28))
        write_idx_file(os.path.join(folder, labels_file), np.asarray(labels, np.uint8))


def train_examples(data_dir: str | None) -> int:
    """Training examples in an epoch of batches of 100 (MNIST's 60,000)."""
    return len(load_split("train", data_dir)[1]) // 100 * 100


def epochs_for(variant: Variant, args: argparse.Namespace) -> int:
    return {LENGTH_EPOCHS: args.epochs, LENGTH_ONE: 1, LENGTH_LONG: args.long_epochs}[
        variant.length
    ]


def command(variant: Variant, epochs: int, inputs: Inputs, workdir: str) -> list[str]:
    if variant.kind == KIND_LOAD:
        return [sys.executable, "-c", LOAD_SCRIPT, inputs.data_dir or ""]
    cmd = [sys.executable, "-m", variant.module, "--epochs", str(epochs)]
    logdir = os.path.join(workdir, "logs")
    if variant.is_project:
        cmd += ["--quiet"] if variant.quiet else []
        cmd += ["--logdir", logdir] if variant.logs else ["--no-logs"]
        cmd += ["--json", os.path.join(workdir, "out.json")]
        cmd += ["--data-dir", inputs.data_dir] if inputs.data_dir else []
    elif variant.kind == KIND_TBX:
        cmd += ["--mnist", str(inputs.idx_dir), "--logdir", logdir]
    else:
        cmd += ["--data", str(inputs.npz)]
    return cmd + list(variant.args)


def parse_project(report: dict) -> Result:
    """This project's `--json`: every member shares the epoch time; the best member's accuracy."""
    runs = report["runs"]
    accuracies = [r["test_accuracy"] for r in runs if r.get("test_accuracy") is not None]
    return Result(
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


def parse_peer(stdout: str) -> Result:
    """A peer's one JSON line."""
    record = json_line(stdout)
    return Result(epoch_seconds=record["epoch_seconds"], test_accuracy=record["test_accuracy"])


def parse_tbx(stdout: str) -> Result:
    """plain_jax_tbx's lines: `epoch 1/10  0.91s  loss ...` per epoch (its whole epoch, logs
    and test set included), then `test accuracy 0.9486`."""
    seconds = [float(s) for s in re.findall(r"^epoch \d+/\d+\s+([\d.]+)s", stdout, re.M)]
    accuracy = re.findall(r"^test accuracy ([\d.]+)", stdout, re.M)
    if not accuracy:
        raise ValueError("no 'test accuracy' line on stdout")
    return Result(epoch_seconds=seconds, test_accuracy=float(accuracy[-1]))


def parse_load(stdout: str) -> Result:
    return Result(load_seconds=float(json_line(stdout)["load_seconds"]))


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def read_result(variant: Variant, stdout: str, workdir: str) -> Result:
    if variant.is_project:
        with open(os.path.join(workdir, "out.json")) as f:
            return parse_project(json.load(f))
    parse = {KIND_PEER: parse_peer, KIND_TBX: parse_tbx, KIND_LOAD: parse_load}[variant.kind]
    return parse(stdout)


def run_once(variant: Variant, epochs: int, inputs: Inputs, timeout: float) -> Result:
    """One fresh process of `variant`; a failure comes back as a Result with `error` set."""
    env = dict(os.environ)
    if inputs.compile_cache:
        env[COMPILE_CACHE_ENV] = inputs.compile_cache
    if variant.host_devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={variant.host_devices}"
    with tempfile.TemporaryDirectory(prefix=f"bench-{variant.name}-") as workdir:
        cmd = command(variant, epochs, inputs, workdir)
        busy, child = cpu_busy_seconds(), children_cpu_seconds()
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Result(error=f"timed out after {timeout:g} s")
        seconds = time.perf_counter() - start
        others = None
        if busy is not None and (busy_after := cpu_busy_seconds()) is not None:
            others_busy = busy_after - busy - (children_cpu_seconds() - child)
            others = max(0.0, others_busy) / (seconds * (os.cpu_count() or 1))
        if proc.returncode != 0:
            return Result(error=f"exit {proc.returncode}: {last_line(proc.stderr)}")
        try:
            result = read_result(variant, proc.stdout, workdir)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
            return Result(error=f"unreadable output: {type(error).__name__}: {error}")
    result.process_seconds, result.others_cpu = seconds, others
    expected = 0 if variant.kind == KIND_LOAD else epochs
    if len(result.epoch_seconds) != expected:
        result.error = f"{len(result.epoch_seconds)} epoch times for {expected} epochs"
    return result


def cpu_busy_seconds() -> float | None:
    """Non-idle time of all CPUs since boot, steal included (Linux's /proc/stat), else None."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, idle, iowait, irq, softirq, steal = map(
                int, f.readline().split()[1:9]
            )
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_median(epoch_seconds: list[float]) -> float:
    """A process's seconds per epoch: its first epoch (compile, warm-up) dropped."""
    if len(epoch_seconds) < 2:
        raise ValueError("need at least 2 epochs: the first one is dropped")
    return statistics.median(epoch_seconds[1:])


def around_epoch(result: Result) -> float | None:
    """(sum of wall_seconds - seconds) / sum of seconds over the epochs after the first: what
    the work between compiled epochs adds to training; None without two timed epochs."""
    pairs = list(zip(result.epoch_seconds[1:], result.wall_seconds[1:], strict=False))
    if not pairs or any(wall is None for _, wall in pairs):
        return None
    train = sum(seconds for seconds, _ in pairs)
    return sum(wall - seconds for seconds, wall in pairs) / train if train > 0 else None


def median_or_none(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(results: list[Result]) -> dict:
    """A variant's rounds: the median over rounds of each process's figures."""
    good = [r for r in results if r.error is None]
    timed = [r for r in good if len(r.epoch_seconds) >= 2]
    per_round = [process_median(r.epoch_seconds) for r in timed]
    walls = [
        r.wall_seconds for r in timed if len(r.wall_seconds) >= 2 and None not in r.wall_seconds
    ]
    return {
        "seconds_per_epoch": median_or_none(per_round),
        "per_round": per_round,
        "wall_seconds_per_epoch": median_or_none([process_median(w) for w in walls]),
        "around_epoch": median_or_none([around_epoch(r) for r in timed]),
        "rounds_ok": len(good),
        "rounds": len(results),
        "test_accuracy": median_or_none([r.test_accuracy for r in good]),
        "startup_seconds": median_or_none([r.startup_seconds for r in good]),
        "load_seconds": median_or_none([r.load_seconds for r in good]),
        "process_seconds": median_or_none([r.process_seconds for r in good]),
        "others_cpu": median_or_none([r.others_cpu for r in good]),
        "errors": [r.error for r in results if r.error is not None],
        "results": [dataclasses.asdict(r) for r in results],
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def add_ratios(summary: dict[str, dict]) -> None:
    for s in summary.values():
        for key, base in (("vs_plain_jax", BASELINE), ("vs_torch_eager", TORCH)):
            other = summary.get(base, {}).get("seconds_per_epoch")
            s[key] = ratio(s["seconds_per_epoch"], other)


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def compare(what: str, a: float | None, b: float | None, limit: float | None, spec=".3f"):
    """A target on the ratio a / b, showing both figures."""
    return Target(
        what, ratio(a, b), limit, figures=f"{in_seconds(a, spec)} / {in_seconds(b, spec)}"
    )


def in_seconds(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else f"{fmt(value, spec)} s"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{fmt(100 * value, '.1f')} % of training"


def targets(summary: dict[str, dict], long_epochs: int = 10) -> list[Target]:
    """Every comparison, from the measured summary: issue 11's and issue 10's speed targets,
    and the earlier ones against the peers."""

    def get(name: str, key: str = "seconds_per_epoch") -> float | None:
        return summary.get(name, {}).get(key)

    f32, bf16, plain, torch = get("float32"), get("bfloat16"), get(BASELINE), get(TORCH)
    acc_f32, acc_bf16 = get("float32", "test_accuracy"), get("bfloat16", "test_accuracy")
    accuracy_gap = None if acc_f32 is None or acc_bf16 is None else abs(acc_bf16 - acc_f32) * 100
    around_logs = get("float32", "around_epoch")
    around_nologs = get("float32_nologs", "around_epoch")
    startup, load = get("float32", "startup_seconds"), get("load", "load_seconds")
    return [
        compare("float32 epoch / plain JAX", f32, plain, 0.75),
        compare("float32 epoch / PyTorch eager", f32, torch, 0.4),
        compare("bfloat16 epoch / plain JAX", bf16, plain, 0.65),
        Target(
            "|bfloat16 - float32| test accuracy, points",
            accuracy_gap,
            0.2,
            figures=f"{fmt(acc_bf16, '.4f')} / {fmt(acc_f32, '.4f')}",
        ),
        compare(
            "whole process, 1 epoch / plain_jax_tbx",
            get("run_1", "process_seconds"),
            get("tbx_1", "process_seconds"),
            1.0,
            ".2f",
        ),
        compare(
            f"whole process, {long_epochs} epochs / plain_jax_tbx",
            get("run_long", "process_seconds"),
            get("tbx_long", "process_seconds"),
            0.8,
            ".2f",
        ),
        Target(
            "float32 start-up to first step, s",
            startup,
            10,
            True,
            in_seconds(startup, ".2f"),
        ),
        Target("load both MNIST splits, s", load, 0.5, figures=in_seconds(load)),
        Target("around the epoch, with logs", around_logs, 0.05, figures=percent(around_logs)),
        Target("around the epoch, --no-logs", around_nologs, 0.05, figures=percent(around_nologs)),
        compare(
            "epoch wall s, logs / --no-logs",
            get("float32", "wall_seconds_per_epoch"),
            get("float32_nologs", "wall_seconds_per_epoch"),
            None,
        ),
        compare("sweep8 epoch / (8 x float32 epoch)", get("sweep8"), 8 * f32 if f32 else None, 0.8),
        compare(
            "dropout-rate sweep8 / lr sweep8 epoch (dropout)",
            get("dropout_rate8"),
            get("dropout_lr8"),
            1.0,
        ),
        compare(
            "sweep8 on 2 CPU devices: members sharded / batch split",
            get("sweep8_by_members"),
            get("sweep8_by_data"),
            None,
        ),
    ]


NOISY = 0.1  # others' CPU share above which a variant's figures are flagged


COLUMNS = (  # title, width
    ("variant", 14), ("ok", 5), ("s/epoch", 8), ("range", 13), ("x plain JAX", 11),
    ("x torch eager", 13), ("wall s/ep", 9), ("around", 6), ("test acc", 8),
    ("start-up s", 10), ("process s", 9), ("others", 6),
)  # fmt: skip


def row(cells: list[str], columns=COLUMNS) -> str:
    return "  ".join(
        cell.ljust(width) if i == 0 else cell.rjust(width)
        for i, (cell, (_, width)) in enumerate(zip(cells, columns, strict=False))
    ).rstrip()


def spread(s: dict) -> str:
    return f"{min(s['per_round']):.3f}-{max(s['per_round']):.3f}" if s["per_round"] else "-"


def failed(name: str, s: dict, columns=COLUMNS) -> str:
    ok = f"{s['rounds_ok']}/{s['rounds']}"
    return row([name, ok], columns) + f"  FAILED: {s['errors'][-1] if s['errors'] else '?'}"


def busy_note(summary: dict[str, dict]) -> list[str]:
    noisy = [n for n, s in summary.items() if (s["others_cpu"] or 0) > NOISY]
    if not noisy:
        return []
    return [
        "others: median share of all CPUs that other processes used during a variant's runs;"
        f" above {NOISY:.0%} for {', '.join(noisy)}: those figures are not from a quiet host."
    ]


def variant_table(summary: dict[str, dict]) -> list[str]:
    lines = [row([title for title, _ in COLUMNS])]
    lines.append("-" * len(lines[0]))
    for name, s in summary.items():
        if s["rounds_ok"] == 0:
            lines.append(failed(name, s))
            continue
        around = s["around_epoch"]
        cells = [
            name,
            f"{s['rounds_ok']}/{s['rounds']}",
            fmt(s["seconds_per_epoch"], ".3f"),
            spread(s),
            fmt(s["vs_plain_jax"], ".2f"),
            fmt(s["vs_torch_eager"], ".2f"),
            fmt(s["wall_seconds_per_epoch"], ".3f"),
            "-" if around is None else f"{100 * around:.1f}%",
            fmt(s["test_accuracy"], ".4f"),
            fmt(s["startup_seconds"], ".2f"),
            fmt(s["process_seconds"], ".2f"),
            fmt(s["others_cpu"], ".0%"),
        ]
        lines.append(row(cells))
        lines += [f"{'':<16}failed round: {e}" for e in s["errors"]]
    return lines + busy_note(summary)


def target_table(goals: list[Target]) -> list[str]:
    header = f"{'comparison':<48}{'figures':>28}{'measured':>10}{'target':>10}  result"
    lines = [header, "-" * (len(header) + 4)]
    verdict = {True: "PASS", False: "FAIL", None: "n/a (variant missing or failed)"}
    for t in goals:
        if t.limit is None:
            goal, result = "", "(information)"
        else:
            goal, result = f"{'<' if t.strict else '<='} {t.limit:g}", verdict[t.passed]
        lines.append(f"{t.what:<48}{t.figures:>28}{fmt(t.measured, '.3f'):>10}{goal:>10}  {result}")
    return lines


def table(summary: dict[str, dict], goals: list[Target]) -> str:
    lines = variant_table(summary)
    lines += [""] + target_table(goals)
    lines += [
        "s/epoch: the project's compiled epoch, a peer's own epoch time (plain_jax_tbx's with its"
        " logs and test set), the first dropped; wall s/ep: the project's epochs with everything"
        " around them; around: (wall - compiled) / compiled; process s: the whole process.",
        "The accuracy gap is of one seed after --epochs epochs, where seeds alone differ by"
        " tenths of a point: judge it on full runs over several seeds (seed=0,1,2).",
    ]
    return "\n".join(lines)


ACCELERATOR_COLUMNS = (
    ("members", 8), ("ok", 5), ("s/epoch", 8), ("range", 13), ("examples/s", 11),
    ("x 1 run per member", 18), ("test acc", 8), ("start-up s", 10), ("process s", 9),
    ("others", 6),
)  # fmt: skip


def accelerator_rows(summary: dict[str, dict], members: tuple[int, ...], examples: int) -> list:
    """Per sweep size: its figures, examples per second, and a member's cost against a run."""
    single = summary.get("members_1", {}).get("seconds_per_epoch")
    rows = []
    for n in members:
        s = summary[f"members_{n}"]
        seconds = s["seconds_per_epoch"]
        rows.append(
            {
                "members": n,
                "seconds_per_epoch": seconds,
                "examples_per_second": ratio(n * examples, seconds),
                "per_member_vs_single": ratio(seconds, None if single is None else n * single),
            }
        )
    return rows


def accelerator_table(summary: dict[str, dict], rows: list[dict]) -> str:
    lines = [row([title for title, _ in ACCELERATOR_COLUMNS], ACCELERATOR_COLUMNS)]
    lines.append("-" * len(lines[0]))
    for r in rows:
        name = str(r["members"])
        s = summary[f"members_{name}"]
        if s["seconds_per_epoch"] is None:
            lines.append(failed(name, s, ACCELERATOR_COLUMNS))
            continue
        cells = [
            name,
            f"{s['rounds_ok']}/{s['rounds']}",
            fmt(s["seconds_per_epoch"], ".4f"),
            spread(s),
            fmt(r["examples_per_second"], ",.0f"),
            fmt(r["per_member_vs_single"], ".3f"),
            fmt(s["test_accuracy"], ".4f"),
            fmt(s["startup_seconds"], ".2f"),
            fmt(s["process_seconds"], ".2f"),
            fmt(s["others_cpu"], ".0%"),
        ]
        lines.append(row(cells, ACCELERATOR_COLUMNS))
        lines += [f"{'':<10}failed round: {e}" for e in s["errors"]]
    return "\n".join(lines + busy_note(summary))


BACKEND_SCRIPT = """
import json, jax
device = jax.devices()[0]
print(json.dumps({"backend": jax.default_backend(), "device": device.device_kind,
                  "count": jax.device_count()}))
"""


def backend() -> dict:
    """JAX's default backend and device as a fresh process sees them (the driver itself never
    initialises a backend, so it holds no accelerator memory)."""
    proc = subprocess.run(
        [sys.executable, "-c", BACKEND_SCRIPT], capture_output=True, text=True, check=False
    )
    try:
        return json_line(proc.stdout)
    except ValueError:
        return {"backend": "unknown", "device": last_line(proc.stderr), "count": 0}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown CPU"


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    return found


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
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--epochs", type=int, default=5, help="per process, first dropped (default 5)")
    p.add_argument(
        "--long-epochs",
        type=int,
        default=10,
        help="epochs of the longer whole-process comparison (default 10, as issue 11 has it)",
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
        default=ACCELERATOR_MEMBERS,
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
        return list(accelerator_variants(args.members)), []
    variants, skipped = available(VARIANTS)
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {v.name for v in VARIANTS}
        if unknown:
            sys.exit(f"unknown variant(s) {sorted(unknown)}; known: {[v.name for v in VARIANTS]}")
        variants = [v for v in variants if v.name in wanted]
        skipped = [v for v in skipped if v.name in wanted]
    return variants, skipped


def prepare(variants: list[Variant], args: argparse.Namespace, tmp: str) -> Inputs:
    """Write what the chosen peers read; the driver's own load also fills the decoded cache."""
    kinds = {v.kind for v in variants}
    npz = idx_dir = None
    if KIND_PEER in kinds:
        npz = os.path.join(tmp, "mnist.npz")
        write_npz(npz, args.data_dir)
    if KIND_TBX in kinds:
        idx_dir = args.mnist
        if idx_dir is None:
            idx_dir = os.path.join(tmp, "idx")
            write_idx(idx_dir, args.data_dir)
    return Inputs(args.data_dir, npz, idx_dir, os.path.join(tmp, "jax-compile-cache"))


def run_rounds(variants: list[Variant], args: argparse.Namespace, inputs: Inputs) -> dict:
    """The untimed warm-up round (1 epoch each), then `--rounds` interleaved rounds."""
    if args.warmup:
        for v in variants:
            r = run_once(v, 1, inputs, args.timeout)
            print(f"warm-up {v.name}: {r.error or 'done'}", file=sys.stderr)
    results: dict[str, list[Result]] = {v.name: [] for v in variants}
    for round_ in range(1, args.rounds + 1):
        for v in variants:
            r = run_once(v, epochs_for(v, args), inputs, args.timeout)
            results[v.name].append(r)
            if r.error:
                seen = r.error
            elif len(r.epoch_seconds) >= 2:
                seen = f"{process_median(r.epoch_seconds):.3f} s/epoch"
            else:
                seen = f"{r.process_seconds:.2f} s"
            print(f"round {round_}/{args.rounds} {v.name}: {seen}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    variants, skipped = choose(args)
    if skipped:
        print(f"skipped, not installed: {', '.join(v.name for v in skipped)}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        inputs = prepare(variants, args, tmp)
        examples = train_examples(args.data_dir) if args.accelerator else None
        found = backend() if args.accelerator else None
        if found and found["count"] > 1 and 8 % found["count"] == 0:
            variants += layout_variants(found["count"])
        results = run_rounds(variants, args, inputs)

    summary = {name: summarise(rs) for name, rs in results.items()}
    add_ratios(summary)
    warm = "after an untimed warm-up round" if args.warmup else "cold (--no-warmup)"
    report = {
        "config": {k: getattr(args, k) for k in ("rounds", "epochs", "long_epochs", "data_dir")}
        | {"warmup": args.warmup, "accelerator": args.accelerator},
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_name(), "platform": platform.platform()},
        "versions": versions(),
        "skipped": [v.name for v in skipped],
        "variants": summary,
    }
    if args.accelerator:
        rows = accelerator_rows(summary, args.members, examples)
        print(
            f"five_layer_relu learning-rate sweeps, batch 100, no logs, on {found['backend']}"
            f" ({found['count']} x {found['device']}): {args.rounds} interleaved rounds x"
            f" {args.epochs} epochs per process (first dropped), {warm}; {examples:,} training"
            f" examples an epoch; host {os.cpu_count()} CPUs, {cpu_name()}"
        )
        print(", ".join(f"{k} {v}" for k, v in versions().items()))
        print(accelerator_table(summary, rows))
        if "sweep8_by_members" in summary:
            print(layout_line(summary, found["count"]))
        report |= {"backend": found, "train_examples": examples, "accelerator": rows}
    else:
        goals = targets(summary, args.long_epochs)
        print(
            f"batch 100: {args.rounds} interleaved rounds, {args.epochs} epochs per process (first"
            f" dropped; whole processes 1 and {args.long_epochs}), {warm}; {os.cpu_count()} CPUs,"
            f" {cpu_name()}"
        )
        print(", ".join(f"{k} {v}" for k, v in versions().items()))
        print(table(summary, goals))
        report["targets"] = [dataclasses.asdict(t) | {"passed": t.passed} for t in goals]
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
