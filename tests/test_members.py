"""Sweeps sharded by member: each device trains its share of the members on the whole batch,
against the same sweep on one device (tfds mock data, forced CPU devices, two processes)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mock_run import argv_with

ROOT = Path(__file__).resolve().parents[1]
MOCK_RUN = str(Path(__file__).with_name("mock_run.py"))
SWEEP = ["--lr", "1e-3,3e-3", "--seed", "0,1"]  # 4 members


def run(tmp_path, name, *flags, devices=4, check=True):
    """A short five_layer_relu_dropout sweep on `devices` forced CPU devices; its JSON."""
    out = tmp_path / f"{name}.json"
    defaults = ["--steps", "12", "--batch-size", "20", "--logdir", str(tmp_path / name)]
    command = [
        sys.executable, MOCK_RUN, "five_layer_relu_dropout",
        *argv_with([*defaults, "--json", str(out)], flags),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
    }
    proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
        return json.loads(out.read_text()), proc
    return None, proc


def numbers(report) -> np.ndarray:
    return np.array(
        [[e[k] for e in r["epochs"] for k in ("loss", "test_loss")] for r in report["runs"]]
    )


@pytest.mark.slow
def test_members_over_1_2_4_devices_equal_one_device_mock_data(tmp_path):
    one, _ = run(tmp_path, "one", *SWEEP, "--devices", "1")
    assert one["mesh"] == {"data": 1, "members": 1}
    for n in (2, 4):
        spread, proc = run(tmp_path, f"members{n}", *SWEEP, "--devices", str(n))
        assert spread["mesh"] == {"data": 1, "members": n}  # members first, by default
        assert f"{n} device(s) as data=1 x members={n}" in proc.stdout
        np.testing.assert_allclose(numbers(spread), numbers(one), rtol=2e-5)
    batch, _ = run(tmp_path, "data4", *SWEEP, "--mesh", "data=4")
    assert batch["mesh"] == {"data": 4, "members": 1}
    np.testing.assert_allclose(numbers(batch), numbers(one), rtol=2e-5)
    mixed, _ = run(tmp_path, "mixed", *SWEEP, "--mesh", "data=2,members=2")
    np.testing.assert_allclose(numbers(mixed), numbers(one), rtol=2e-5)


@pytest.mark.slow
def test_a_single_run_on_several_devices_splits_the_batch_mock_data(tmp_path):
    report, _ = run(tmp_path, "single", devices=2)
    assert report["mesh"] == {"data": 2, "members": 1}


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--mesh", "members=4", "--lr", "1e-3,2e-3,3e-3"], "3 members do not split evenly"),
        (["--mesh", "data=3"], "spans 3 devices, but the run has 4"),
        (["--mesh", "batch=2"], "expected AXIS=N[,AXIS=N] with axes data and members"),
    ],
)
def test_a_layout_that_does_not_fit_is_refused_in_one_line(tmp_path, flags, words):
    _, proc = run(tmp_path, "bad", *flags, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr
    assert not (tmp_path / "bad").exists()  # refused before any log was written


@pytest.mark.slow
def test_resume_on_another_layout_continues_the_same_sweep_mock_data(tmp_path):
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt")]  # 200 mock examples: 10 steps an epoch
    straight, _ = run(tmp_path, "straight", *SWEEP, "--steps", "20", "--devices", "1")
    run(tmp_path, "first", *SWEEP, "--steps", "10", "--mesh", "members=4", *ckpt)
    resumed, _ = run(tmp_path, "first", *SWEEP, "--steps", "20", "--mesh", "data=4", *ckpt,
                     "--resume")  # fmt: skip
    np.testing.assert_allclose(numbers(resumed), numbers(straight), rtol=2e-5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_each_with_half_the_members_equal_one_mock_data(tmp_path):
    one, _ = run(tmp_path, "one", *SWEEP, "--devices", "1")
    port = free_port()
    out = tmp_path / "two.json"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                MOCK_RUN,
                "five_layer_relu_dropout",
                "--steps",
                "12",
                "--batch-size",
                "20",
                "--logdir",
                str(tmp_path / "two"),
                "--json",
                str(out),
                *SWEEP,
                "--mesh",
                "members=2",
                "--coordinator",
                f"localhost:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],  # fmt: skip
            env={**os.environ, "PYTHONPATH": str(ROOT), "XLA_FLAGS": ""},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    two = json.loads(out.read_text())
    assert two["mesh"] == {"data": 1, "members": 2}
    np.testing.assert_allclose(numbers(two), numbers(one), rtol=2e-5)
    runs = sorted(p.name for p in (tmp_path / "two" / "five_layer_relu_dropout").glob("lr_*"))
    assert len(runs) == 4  # process 0 wrote every member's logs, gathered from both
