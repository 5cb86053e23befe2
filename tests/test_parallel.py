"""Data parallelism: the batch sharded over several CPU devices, and two processes on
localhost talking over gloo, each against the same run on one device (tfds mock data)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MOCK_RUN = str(Path(__file__).with_name("mock_run.py"))


def env(devices: int) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
    }


def command(logdir, json_path, *flags) -> list[str]:
    """A short five_layer_relu_dropout run on mock data, writing `json_path`."""
    return [
        sys.executable, MOCK_RUN, "five_layer_relu_dropout", "--steps", "6", "--batch-size", "20",
        "--logdir", str(logdir), "--json", str(json_path), "--quiet", *flags,
    ]  # fmt: skip


def mock_run(tmp_path, name, devices, *flags, env_devices=4):
    out = tmp_path / f"{name}.json"
    subprocess.run(
        command(tmp_path / name, out, "--devices", str(devices), *flags),
        env=env(env_devices),
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    return json.loads(out.read_text())


def numbers(report):
    return np.array(
        [
            [e[k] for e in r["epochs"] for k in ("loss", "test_loss", "test_accuracy")]
            for r in report["runs"]
        ]
    )


@pytest.mark.slow  # two fresh processes on four forced CPU devices
@pytest.mark.parametrize(
    "flags", [(), ("--lr", "1e-3,3e-3", "--seed", "0,1")], ids=["single", "sweep"]
)
def test_four_devices_equal_one_mock_data(tmp_path, flags):
    one = mock_run(tmp_path, "one", 1, *flags)
    four = mock_run(tmp_path, "four", 4, *flags)
    assert numbers(four).shape == numbers(one).shape
    np.testing.assert_allclose(numbers(four), numbers(one), rtol=1e-5, atol=1e-6)
    assert (
        json.loads(
            (
                tmp_path / "four" / "five_layer_relu_dropout" / "lr_0.001-seed_0" / "config.json"
            ).read_text()
        )["devices"]
        == 4
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # three fresh processes, two of them joined over gloo
def test_two_processes_on_localhost_equal_one_mock_data(tmp_path):
    port = free_port()
    procs = [
        subprocess.Popen(
            command(
                tmp_path / f"logs{i}",
                tmp_path / f"p{i}.json",
                *("--coordinator", f"localhost:{port}", "--num-processes", "2"),
                *("--process-id", str(i)),
            ),
            env=env(1),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not (tmp_path / "p1.json").exists() and not (tmp_path / "logs1").exists()
    two = json.loads((tmp_path / "p0.json").read_text())
    one = mock_run(tmp_path, "one", 1, env_devices=1)
    np.testing.assert_allclose(numbers(two), numbers(one), rtol=1e-5, atol=1e-6)
