"""The benchmark driver's arithmetic and plumbing, and the peers on mock data.

No timing is asserted here: speed is what `python -m experiments.benchmark` measures.
"""

import importlib.util
import math
import subprocess
import sys

import numpy as np
import pytest

from experiments import benchmark
from experiments.benchmark import Result, Target, Variant

REPO_ROOT = benchmark.REPO_ROOT


def mock_npz(path, n_train=300, n_test=50, seed=0):
    """Random pixels and labels in the peers' format (300 examples: three batches of 100)."""
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        x_train=rng.random((n_train, 784), dtype=np.float32),
        y_train=rng.integers(0, 10, n_train).astype(np.int32),
        x_test=rng.random((n_test, 784), dtype=np.float32),
        y_test=rng.integers(0, 10, n_test).astype(np.int32),
    )
    return str(path)


def run_peer(module, npz, *args):
    proc = subprocess.run(
        [sys.executable, "-m", module, "--data", npz, "--epochs", "1", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    json_lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(json_lines) == 1, proc.stdout  # one JSON line, nothing else on stdout
    return benchmark.parse_peer(proc.stdout)


def needs(module):
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None, reason=f"{module} not installed (bench extra)"
    )


def check_peer_result(result):
    assert len(result.epoch_seconds) == 1 and result.epoch_seconds[0] > 0
    assert 0 <= result.test_accuracy <= 1


def test_plain_jax_peer_mock_data(tmp_path):
    check_peer_result(run_peer("experiments.peers.plain_jax", mock_npz(tmp_path / "m.npz")))


@needs("torch")
def test_torch_eager_peer_mock_data(tmp_path):
    check_peer_result(run_peer("experiments.peers.torch_eager", mock_npz(tmp_path / "m.npz")))


@needs("keras")
def test_keras_jax_peer_mock_data(tmp_path):
    check_peer_result(run_peer("experiments.peers.keras_jax", mock_npz(tmp_path / "m.npz")))


def test_process_median_drops_the_first_epoch():
    assert benchmark.process_median([10.0, 1.0, 3.0, 2.0]) == 2.0
    assert benchmark.process_median([10.0, 1.5]) == 1.5
    with pytest.raises(ValueError):
        benchmark.process_median([10.0])


def test_summary_is_the_median_over_rounds_of_successful_processes():
    results = [
        Result(epoch_seconds=[9.0, 1.0, 2.0, 3.0], test_accuracy=0.97, startup_seconds=4.0),
        Result(epoch_seconds=[9.0, 4.0, 4.0, 4.0], test_accuracy=0.98, startup_seconds=6.0),
        Result(error="exit 1: boom"),
        Result(epoch_seconds=[9.0, 3.0, 3.0, 3.0], test_accuracy=0.96, startup_seconds=5.0),
    ]
    s = benchmark.summarise(results)
    assert s["per_round"] == [2.0, 4.0, 3.0]
    assert s["seconds_per_epoch"] == 3.0
    assert (s["rounds_ok"], s["rounds"]) == (3, 4)
    assert s["test_accuracy"] == 0.97
    assert s["startup_seconds"] == 5.0
    assert s["errors"] == ["exit 1: boom"]


def test_all_rounds_failed_gives_no_figure():
    s = benchmark.summarise([Result(error="timed out after 600 s")])
    assert s["seconds_per_epoch"] is None and s["rounds_ok"] == 0


def fixed_summary(**seconds):
    summary = {
        name: {"seconds_per_epoch": sec, "test_accuracy": 0.98, "startup_seconds": 3.0}
        for name, sec in seconds.items()
    }
    benchmark.add_ratios(summary)
    return summary


def test_ratios_to_plain_jax_and_torch_eager():
    s = fixed_summary(float32=0.2, plain_jax=0.4, torch_eager=0.8)
    assert s["float32"]["vs_plain_jax"] == pytest.approx(0.5)
    assert s["float32"]["vs_torch_eager"] == pytest.approx(0.25)
    assert s["plain_jax"]["vs_plain_jax"] == pytest.approx(1.0)
    assert s["torch_eager"]["vs_plain_jax"] == pytest.approx(2.0)
    assert benchmark.ratio(1.0, None) is None and benchmark.ratio(None, 1.0) is None


def test_targets_pass_and_fail_on_fixed_figures():
    s = fixed_summary(float32=0.2, bfloat16=0.3, sweep8=1.2, plain_jax=0.4, torch_eager=0.4)
    s["bfloat16"]["test_accuracy"] = 0.9775  # 0.25 points below float32
    s["float32"]["startup_seconds"] = 12.0
    goals = {t.what: t for t in benchmark.targets(s)}
    measured = {what: t.measured for what, t in goals.items()}
    passed = {what: t.passed for what, t in goals.items()}
    assert measured == pytest.approx(
        {
            "float32 epoch / plain JAX": 0.5,
            "float32 epoch / PyTorch eager": 0.5,
            "bfloat16 epoch / plain JAX": 0.75,
            "|bfloat16 - float32| test accuracy, points": 0.25,
            "sweep8 epoch / (8 x float32 epoch)": 0.75,
            "float32 start-up to first step, s": 12.0,
        }
    )
    assert passed == {
        "float32 epoch / plain JAX": True,
        "float32 epoch / PyTorch eager": False,
        "bfloat16 epoch / plain JAX": False,
        "|bfloat16 - float32| test accuracy, points": False,
        "sweep8 epoch / (8 x float32 epoch)": True,
        "float32 start-up to first step, s": False,
    }


def test_targets_without_a_variant_are_not_applicable():
    goals = benchmark.targets(fixed_summary(float32=0.2, plain_jax=0.4))
    by_what = {t.what: t.passed for t in goals}
    assert by_what["float32 epoch / plain JAX"] is True
    assert by_what["float32 epoch / PyTorch eager"] is None
    assert by_what["sweep8 epoch / (8 x float32 epoch)"] is None


def test_strict_target_is_strict():
    assert Target("t", 10.0, 10, strict=True).passed is False
    assert Target("t", 10.0, 10).passed is True


def test_variant_table():
    names = [v.name for v in benchmark.VARIANTS]
    assert len(set(names)) == len(names)
    assert {"float32", "bfloat16", "sweep8", "plain_jax"} <= set(names)
    sweep = next(v for v in benchmark.VARIANTS if v.name == "sweep8")
    rates = [float(r) for r in sweep.args[sweep.args.index("--lr") + 1].split(",")]
    assert len(rates) == 8 and rates[0] == 1e-4 and rates[-1] == 1e-2
    assert np.allclose(np.diff(np.log(rates)), math.log(100) / 7, rtol=1e-3)


def test_commands_follow_each_contract():
    project = benchmark.command(benchmark.VARIANTS[1], 3, "m.npz", "D", "W")
    assert project[1:3] == ["-m", "experiments.five_layer_relu"]
    for flag in ("--quiet", "--logdir", "--json"):
        assert flag in project
    assert project[project.index("--data-dir") + 1] == "D"
    assert project[-2:] == ["--dtype", "bfloat16"]
    assert "--data-dir" not in benchmark.command(benchmark.VARIANTS[0], 3, "m.npz", None, "W")
    peer = benchmark.command(Variant("p", "experiments.peers.plain_jax"), 3, "m.npz", None, "W")
    assert peer[1:] == ["-m", "experiments.peers.plain_jax", "--epochs", "3", "--data", "m.npz"]


def test_uninstalled_frameworks_are_skipped_without_import():
    ok, skipped = benchmark.available(
        [Variant("a", "x"), Variant("b", "y", requires="no_such_framework_xyz")]
    )
    assert [v.name for v in ok] == ["a"] and [v.name for v in skipped] == ["b"]


def test_parse_project_report():
    report = {
        "startup_seconds": 4.5,
        "runs": [
            {"test_accuracy": 0.95, "epochs": [{"epoch": 1, "seconds": 2.0}, {"seconds": 0.3}]},
            {"test_accuracy": 0.97, "epochs": [{"epoch": 1, "seconds": 2.0}, {"seconds": 0.3}]},
            {"test_accuracy": None, "epochs": [{"epoch": 1, "seconds": 2.0}, {"seconds": 0.3}]},
        ],
    }
    r = benchmark.parse_project(report)
    assert r.epoch_seconds == [2.0, 0.3]
    assert r.test_accuracy == 0.97  # best member of a sweep; a diverged one has none
    assert r.startup_seconds == 4.5


def test_a_failing_variant_is_reported_not_raised(tmp_path):
    r = benchmark.run_once(
        Variant("broken", "experiments.peers.no_such_peer"), 2, "m.npz", None, timeout=60
    )
    assert r.error.startswith("exit 1") and "no_such_peer" in r.error


def test_driver_end_to_end_on_mock_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(benchmark, "write_npz", lambda path, data_dir: mock_npz(path))
    monkeypatch.setattr(
        benchmark,
        "VARIANTS",
        (
            Variant("plain_jax", "experiments.peers.plain_jax"),
            Variant("broken", "experiments.peers.no_such_peer"),
        ),
    )
    report = benchmark.main(["--rounds", "1", "--epochs", "2", "--json", str(tmp_path / "b.json")])
    out = capsys.readouterr().out
    assert report["variants"]["plain_jax"]["rounds_ok"] == 1
    assert report["variants"]["plain_jax"]["vs_plain_jax"] == pytest.approx(1.0)
    assert report["variants"]["broken"]["rounds_ok"] == 0
    assert "FAILED: exit 1" in out
    assert (tmp_path / "b.json").exists()


def test_table_shows_failures_unmet_targets_and_a_busy_host():
    summary = {
        "plain_jax": benchmark.summarise(
            [Result(epoch_seconds=[2.0, 0.4, 0.4], test_accuracy=0.97, others_cpu=0.3)]
        ),
        "float32": benchmark.summarise([Result(error="exit 1: ImportError: boom")]),
    }
    benchmark.add_ratios(summary)
    text = benchmark.table(summary, benchmark.targets(summary))
    assert "FAILED: exit 1: ImportError: boom" in text
    assert "n/a" in text
    assert "not from a quiet host" in text
