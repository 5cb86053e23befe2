"""Running the variants: each a fresh process, interleaved round-robin, the host's load noted."""

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.benchmark.inputs import Inputs
from experiments.benchmark.parsing import Process, json_line, last_line, read_process
from experiments.benchmark.variants import KIND_LOAD, KIND_PEER, KIND_TBX, Variant, epochs_for

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPILE_CACHE_ENV = "MNIST_JAX_COMPILE_CACHE"  # as mnist_jax.compile_cache reads it

LOAD_SCRIPT = """
import json, sys, time
from mnist_jax import data
start = time.perf_counter()
for split in ("train", "test"):
    data.load_mnist(split, data_dir=sys.argv[1] or None)
print(json.dumps({"load_seconds": time.perf_counter() - start}))
"""

BACKEND_SCRIPT = """
import json, jax
device = jax.devices()[0]
print(json.dumps({"backend": jax.default_backend(), "device": device.device_kind,
                  "count": jax.device_count()}))
"""


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
    elif variant.kind == KIND_PEER:
        cmd += ["--data", str(inputs.npz)]
    return cmd + list(variant.args)


def run_once(variant: Variant, epochs: int, inputs: Inputs, timeout: float) -> Process:
    """One fresh process of `variant`; a failure comes back as a Process with `error` set."""
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
            return Process(error=f"timed out after {timeout:g} s")
        seconds = time.perf_counter() - start
        others = None
        if busy is not None and (busy_after := cpu_busy_seconds()) is not None:
            others_busy = busy_after - busy - (children_cpu_seconds() - child)
            others = max(0.0, others_busy) / (seconds * (os.cpu_count() or 1))
        if proc.returncode != 0:
            return Process(error=f"exit {proc.returncode}: {last_line(proc.stderr)}")
        try:
            result = read_process(variant, proc.stdout, workdir)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
            return Process(error=f"unreadable output: {type(error).__name__}: {error}")
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


def run_rounds(
    variants: list[Variant],
    inputs: Inputs,
    rounds: int,
    epochs: int,
    long_epochs: int,
    timeout: float,
    warmup: bool,
) -> dict[str, list[Process]]:
    """The untimed warm-up round (1 epoch each) unless `warmup` is off, then `rounds`
    interleaved rounds; each variant's processes in round order."""
    if warmup:
        for v in variants:
            r = run_once(v, 1, inputs, timeout)
            print(f"warm-up {v.name}: {r.error or 'done'}", file=sys.stderr)
    results: dict[str, list[Process]] = {v.name: [] for v in variants}
    for round_ in range(1, rounds + 1):
        for v in variants:
            r = run_once(v, epochs_for(v, epochs, long_epochs), inputs, timeout)
            results[v.name].append(r)
            if r.error:
                seen = r.error
            elif len(r.epoch_seconds) >= 2:
                seen = f"{process_median(r.epoch_seconds):.3f} s/epoch"
            else:
                seen = f"{r.process_seconds:.2f} s"
            print(f"round {round_}/{rounds} {v.name}: {seen}", file=sys.stderr)
    return results


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
