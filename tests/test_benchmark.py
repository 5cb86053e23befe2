"""The benchmark driver's arithmetic and plumbing, and the peers on mock data.

No timing is asserted here: speed is what `python -m experiments.benchmark` measures.
"""

import dataclasses
import gzip
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import declares_config, find_experiments
from experiments.benchmark import inputs, main, parsing, report, running, summary, variants
from experiments.benchmark.inputs import Inputs
from experiments.benchmark.parsing import Process
from experiments.benchmark.summary import Target
from experiments.benchmark.variants import Variant

REPO_ROOT = running.REPO_ROOT
MOCK_RUN = REPO_ROOT / "tests" / "mock_run.py"
VARIANTS = {v.name: v for v in variants.VARIANTS}


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


def mock_idx(folder, n_train=300, n_test=50, seed=0):
    """Random images and labels as the four gzip IDX files plain_jax_tbx reads."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for (images, labels), n in zip(inputs.IDX_FILES.values(), (n_train, n_test), strict=True):
        inputs.write_idx_file(folder / images, rng.integers(0, 256, (n, 28, 28), np.uint8))
        inputs.write_idx_file(folder / labels, rng.integers(0, 10, n).astype(np.uint8))
    return str(folder)


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
    return parsing.parse_peer(proc.stdout)


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


@needs("torch")
def test_torch_cnn_peer_mock_data(tmp_path):
    check_peer_result(run_peer("experiments.peers.torch_cnn", mock_npz(tmp_path / "m.npz")))


# Each peer's stdout as captured from `python -m experiments.peers.<peer> --data m.npz --epochs 2`
# on mock_npz's random data (keras_jax's from its `report` line, the same function).
PEER_OUTPUTS = {
    "plain_jax": '{"name": "plain_jax", "epoch_seconds": [6.383941738000431, 0.01261127799989481],'
    ' "test_accuracy": 0.03999999910593033}\n',
    "torch_eager": '{"name": "torch_eager", "epoch_seconds": [2.179855548999967,'
    ' 1.038194176000161], "test_accuracy": 0.11999999731779099}\n',
    "torch_compile": '{"name": "torch_compile", "epoch_seconds": [191.423913351,'
    ' 4.585394180000094], "test_accuracy": 0.11999999731779099}\n',
    "torch_cnn": '{"name": "torch_cnn", "epoch_seconds": [7.023963528999957, 4.8374801720001415],'
    ' "test_accuracy": 0.11999999731779099}\n',
}


@pytest.mark.parametrize("peer", sorted(PEER_OUTPUTS))
def test_parse_peer_reads_each_peers_captured_output(peer):
    r = parsing.parse_peer(PEER_OUTPUTS[peer])
    record = json.loads(PEER_OUTPUTS[peer])
    assert r.epoch_seconds == record["epoch_seconds"] and len(r.epoch_seconds) == 2
    assert r.test_accuracy == record["test_accuracy"]
    assert running.process_median(r.epoch_seconds) == record["epoch_seconds"][1]


def test_every_peer_variant_has_a_captured_output_or_needs_keras():
    peers = {v.name for v in variants.VARIANTS if v.kind == variants.KIND_PEER}
    assert peers - set(PEER_OUTPUTS) == {"keras_jax"}


@needs("keras")
def test_keras_jax_peer_mock_data(tmp_path):
    check_peer_result(run_peer("experiments.peers.keras_jax", mock_npz(tmp_path / "m.npz")))


def test_process_median_drops_the_first_epoch():
    assert running.process_median([10.0, 1.0, 3.0, 2.0]) == 2.0
    assert running.process_median([10.0, 1.5]) == 1.5
    with pytest.raises(ValueError):
        running.process_median([10.0])


def test_summary_is_the_median_over_rounds_of_successful_processes():
    results = [
        Process(epoch_seconds=[9.0, 1.0, 2.0, 3.0], test_accuracy=0.97, startup_seconds=4.0),
        Process(epoch_seconds=[9.0, 4.0, 4.0, 4.0], test_accuracy=0.98, startup_seconds=6.0),
        Process(error="exit 1: boom"),
        Process(epoch_seconds=[9.0, 3.0, 3.0, 3.0], test_accuracy=0.96, startup_seconds=5.0),
    ]
    s = summary.summarise(results)
    assert s.per_round == [2.0, 4.0, 3.0]
    assert s.seconds_per_epoch == 3.0
    assert (s.rounds_ok, s.rounds) == (3, 4)
    assert s.test_accuracy == 0.97
    assert s.startup_seconds == 5.0
    assert s.errors == ["exit 1: boom"]
    assert s.wall_seconds_per_epoch is None and s.around_epoch is None  # not a project


def test_all_rounds_failed_gives_no_figure():
    s = summary.summarise([Process(error="timed out after 600 s")])
    assert s.seconds_per_epoch is None and s.rounds_ok == 0


def test_one_epoch_processes_give_process_seconds_not_epoch_seconds():
    s = summary.summarise(
        [Process(epoch_seconds=[3.0], process_seconds=p, startup_seconds=2.0) for p in (7, 5, 6)]
    )
    assert s.seconds_per_epoch is None and s.per_round == []
    assert s.process_seconds == 6 and s.rounds_ok == 3


def test_around_the_epoch_is_wall_less_compiled_over_compiled_after_the_first():
    r = Process(epoch_seconds=[5.0, 1.0, 2.0], wall_seconds=[9.0, 1.1, 2.2])
    assert summary.around_epoch(r) == pytest.approx(0.3 / 3.0)
    assert summary.around_epoch(Process(epoch_seconds=[5.0], wall_seconds=[6.0])) is None
    assert summary.around_epoch(Process(epoch_seconds=[1.0, 1.0], wall_seconds=[1, None])) is None
    s = summary.summarise([r, Process(epoch_seconds=[5.0, 1.0, 1.0], wall_seconds=[9, 1.5, 1.5])])
    assert s.around_epoch == pytest.approx((0.1 + 0.5) / 2)
    assert s.wall_seconds_per_epoch == pytest.approx((1.65 + 1.5) / 2)


def fixed(**fields):
    """A variant's summary with only `fields` measured."""
    empty = {f.name: None for f in dataclasses.fields(summary.Summary)}
    return summary.Summary(**empty | {"per_round": [], "errors": [], "processes": []} | fields)


def fixed_summary(**seconds):
    summaries = {
        name: fixed(seconds_per_epoch=sec, test_accuracy=0.98, startup_seconds=3.0)
        for name, sec in seconds.items()
    }
    summary.add_ratios(summaries)
    return summaries


def test_ratios_to_plain_jax_and_torch_eager():
    s = fixed_summary(float32=0.2, plain_jax=0.4, torch_eager=0.8)
    assert s["float32"].vs_plain_jax == pytest.approx(0.5)
    assert s["float32"].vs_torch_eager == pytest.approx(0.25)
    assert s["plain_jax"].vs_plain_jax == pytest.approx(1.0)
    assert s["torch_eager"].vs_plain_jax == pytest.approx(2.0)
    assert summary.ratio(1.0, None) is None and summary.ratio(None, 1.0) is None


def test_targets_pass_and_fail_on_fixed_figures():
    s = fixed_summary(
        float32=0.2,
        float32_nologs=0.19,
        bfloat16=0.3,
        sweep8=1.2,
        cnn=20.0,
        torch_cnn=16.0,
        plain_jax=0.4,
        torch_eager=0.4,
        dropout_lr8=1.0,
        dropout_rate8=1.1,
        sweep8_by_members=0.9,
        sweep8_by_data=1.2,
    )
    s["bfloat16"].test_accuracy = 0.9775  # 0.25 points below float32
    s["float32"].startup_seconds = 12.0
    s["float32"].around_epoch, s["float32"].wall_seconds_per_epoch = 0.04, 0.25
    s["float32_nologs"].around_epoch, s["float32_nologs"].wall_seconds_per_epoch = 0.06, 0.2
    s["run_1"] = fixed(process_seconds=9.4)
    s["tbx_1"] = fixed(process_seconds=6.8)
    s["run_long"] = fixed(process_seconds=10.0)
    s["tbx_long"] = fixed(process_seconds=15.0)
    s["load"] = fixed(load_seconds=0.3)
    goals = {t.what: t for t in summary.targets(s, long_epochs=10)}
    measured = {what: t.measured for what, t in goals.items()}
    passed = {what: t.passed for what, t in goals.items()}
    assert measured == pytest.approx(
        {
            "float32 epoch / plain JAX": 0.5,
            "float32 epoch / PyTorch eager": 0.5,
            "bfloat16 epoch / plain JAX": 0.75,
            "|bfloat16 - float32| test accuracy, points": 0.25,
            "lab CNN epoch / PyTorch eager CNN": 1.25,
            "whole process, 1 epoch / plain_jax_tbx": 9.4 / 6.8,
            "whole process, 10 epochs / plain_jax_tbx": 10 / 15,
            "float32 start-up to first step, s": 12.0,
            "load both MNIST splits, s": 0.3,
            "around the epoch, with logs": 0.04,
            "around the epoch, --no-logs": 0.06,
            "epoch wall s, logs / --no-logs": 1.25,
            "sweep8 epoch / (8 x float32 epoch)": 0.75,
            "dropout-rate sweep8 / lr sweep8 epoch (dropout)": 1.1,
            "sweep8 on 2 CPU devices: members sharded / batch split": 0.75,
        }
    )
    assert passed == {
        "float32 epoch / plain JAX": True,
        "float32 epoch / PyTorch eager": False,
        "bfloat16 epoch / plain JAX": False,
        "|bfloat16 - float32| test accuracy, points": False,
        "lab CNN epoch / PyTorch eager CNN": False,
        "whole process, 1 epoch / plain_jax_tbx": False,
        "whole process, 10 epochs / plain_jax_tbx": True,
        "float32 start-up to first step, s": False,
        "load both MNIST splits, s": True,
        "around the epoch, with logs": True,
        "around the epoch, --no-logs": False,
        "epoch wall s, logs / --no-logs": None,  # information, no target
        "sweep8 epoch / (8 x float32 epoch)": True,
        "dropout-rate sweep8 / lr sweep8 epoch (dropout)": False,
        "sweep8 on 2 CPU devices: members sharded / batch split": None,  # information
    }
    assert goals["whole process, 1 epoch / plain_jax_tbx"].figures == "9.40 s / 6.80 s"
    assert goals["sweep8 epoch / (8 x float32 epoch)"].figures == "1.200 s / 1.600 s"
    assert goals["around the epoch, --no-logs"].figures == "6.0 % of training"


def test_targets_without_a_variant_are_not_applicable():
    goals = summary.targets(fixed_summary(float32=0.2, plain_jax=0.4))
    by_what = {t.what: t.passed for t in goals}
    assert by_what["float32 epoch / plain JAX"] is True
    assert by_what["float32 epoch / PyTorch eager"] is None
    assert by_what["sweep8 epoch / (8 x float32 epoch)"] is None
    assert by_what["whole process, 1 epoch / plain_jax_tbx"] is None
    assert by_what["load both MNIST splits, s"] is None


def test_strict_target_is_strict():
    assert Target("t", 10.0, 10, strict=True).passed is False
    assert Target("t", 10.0, 10).passed is True
    assert Target("t", 10.0, None).passed is None


def test_variant_table():
    names = [v.name for v in variants.VARIANTS]
    assert len(set(names)) == len(names)
    assert {"float32", "float32_nologs", "bfloat16", "sweep8", "plain_jax"} <= set(names)
    assert {"dropout_lr8", "dropout_rate8", "run_1", "tbx_1", "run_long", "tbx_long"} <= set(names)
    by_member, by_data = VARIANTS["sweep8_by_members"], VARIANTS["sweep8_by_data"]
    assert by_member.args[-2:] == ("--mesh", "members=2") and by_member.host_devices == 2
    assert by_data.args[-2:] == ("--mesh", "data=2") and by_data.host_devices == 2
    assert by_member.args[:2] == VARIANTS["sweep8"].args[:2]  # the same 8 rates
    sweep = VARIANTS["sweep8"]
    rates = [float(r) for r in sweep.args[sweep.args.index("--lr") + 1].split(",")]
    assert len(rates) == 8 and rates[0] == 1e-4 and rates[-1] == 1e-2
    assert np.allclose(np.diff(np.log(rates)), math.log(100) / 7, rtol=1e-3)
    # The two dropout sweeps: the same experiment, 8 members each, differing only in what varies.
    lr8, rate8 = VARIANTS["dropout_lr8"], VARIANTS["dropout_rate8"]
    assert lr8.module == rate8.module == "experiments.five_layer_relu_dropout"
    assert lr8.args == sweep.args
    (override,) = rate8.args
    key, values = override.split("=")
    assert key == "model.dropout_rate" and len(values.split(",")) == 8
    assert VARIANTS["float32_nologs"].logs is False and VARIANTS["float32"].logs is True
    # A user's command: logs written, progress printed.
    assert not VARIANTS["run_1"].quiet and VARIANTS["run_1"].logs
    lengths = {n: variants.epochs_for(VARIANTS[n], 4, 7) for n in names}
    assert lengths["float32"] == 4 and lengths["run_1"] == lengths["tbx_1"] == 1
    assert lengths["run_long"] == lengths["tbx_long"] == 7
    # The CNN against PyTorch: the same two epochs each, its compiled epoch without logs.
    assert lengths["cnn"] == lengths["torch_cnn"] == 2
    assert VARIANTS["cnn"].module == "experiments.gorner_cnn" and not VARIANTS["cnn"].logs


INPUTS = Inputs(data_dir="D", npz="m.npz", idx_dir="IDX", compile_cache="C")


def test_commands_follow_each_contract():
    project = running.command(VARIANTS["bfloat16"], 3, INPUTS, "W")
    assert project[1:3] == ["-m", "experiments.five_layer_relu"]
    for flag in ("--quiet", "--logdir", "--json"):
        assert flag in project
    assert project[project.index("--data-dir") + 1] == "D"
    assert project[-2:] == ["--dtype", "bfloat16"]
    no_data_dir = dataclasses.replace(INPUTS, data_dir=None)
    assert "--data-dir" not in running.command(VARIANTS["float32"], 3, no_data_dir, "W")
    nologs = running.command(VARIANTS["float32_nologs"], 3, INPUTS, "W")
    assert "--no-logs" in nologs and "--logdir" not in nologs
    user = running.command(VARIANTS["run_1"], 1, INPUTS, "W")
    assert "--quiet" not in user and "--logdir" in user
    rate8 = running.command(VARIANTS["dropout_rate8"], 3, INPUTS, "W")
    assert rate8[2] == "experiments.five_layer_relu_dropout"
    assert rate8[-1].startswith("model.dropout_rate=")  # overrides after the flags
    peer = running.command(Variant("p", "experiments.peers.plain_jax"), 3, INPUTS, "W")
    assert peer[1:] == ["-m", "experiments.peers.plain_jax", "--epochs", "3", "--data", "m.npz"]
    tbx = running.command(VARIANTS["tbx_long"], 10, INPUTS, "W")
    assert tbx[1:6] == ["-m", "experiments.peers.plain_jax_tbx", "--epochs", "10", "--mnist"]
    assert tbx[6] == "IDX" and "--logdir" in tbx
    load = running.command(VARIANTS["load"], 0, INPUTS, "W")
    assert load[1:] == ["-c", running.LOAD_SCRIPT, "D"]


def test_every_process_gets_the_private_compile_cache(monkeypatch):
    seen = {}

    def fake_run(cmd, env, **kwargs):
        seen["env"] = env
        return subprocess.CompletedProcess(cmd, 0, stdout='{"load_seconds": 0.25}\n', stderr="")

    monkeypatch.setattr(running.subprocess, "run", fake_run)
    r = running.run_once(VARIANTS["load"], 0, INPUTS, timeout=5)
    assert seen["env"][running.COMPILE_CACHE_ENV] == "C"
    assert r.error is None and r.load_seconds == 0.25 and r.process_seconds > 0


def test_uninstalled_frameworks_are_skipped_without_import():
    ok, skipped = variants.available(
        [Variant("a", "x"), Variant("b", "y", requires="no_such_framework_xyz")]
    )
    assert [v.name for v in ok] == ["a"] and [v.name for v in skipped] == ["b"]


def test_skipped_variants_are_named_with_the_command_that_installs_them():
    needs_torch = variants.Variant("t", "m", requires="torch")
    needs_keras = variants.Variant("k", "m", requires="keras")
    note = main.skipped_note([needs_torch, needs_keras])
    assert note.startswith("skipped, not installed: t, k (they need keras, torch: ")
    assert note.endswith(" -m pip install -e '.[bench]')")


def test_parse_project_report():
    report = {
        "startup_seconds": 4.5,
        "runs": [
            {
                "test_accuracy": 0.95,
                "epochs": [
                    {"epoch": 1, "seconds": 2.0, "wall_seconds": 2.5},
                    {"seconds": 0.3, "wall_seconds": 0.31},
                ],
            },
            {"test_accuracy": 0.97, "epochs": [{"epoch": 1, "seconds": 2.0}, {"seconds": 0.3}]},
            {"test_accuracy": None, "epochs": [{"epoch": 1, "seconds": 2.0}, {"seconds": 0.3}]},
        ],
    }
    r = parsing.parse_project(report)
    assert r.epoch_seconds == [2.0, 0.3]
    assert r.wall_seconds == [2.5, 0.31]
    assert r.test_accuracy == 0.97  # best member of a sweep; a diverged one has none
    assert r.startup_seconds == 4.5


def test_parse_tbx_lines():
    out = (
        "epoch 1/2  3.21s  loss 0.5000  accuracy 0.8000  val_loss 0.3000  val_accuracy 0.9000\n"
        "epoch 2/2  0.91s  loss 0.2000  accuracy 0.9400  val_loss 0.2000  val_accuracy 0.9400\n"
        "test accuracy 0.9486\n"
    )
    r = parsing.parse_tbx(out)
    assert r.epoch_seconds == [3.21, 0.91] and r.test_accuracy == 0.9486
    with pytest.raises(ValueError):
        parsing.parse_tbx("epoch 1/1  1.00s\n")


def test_idx_files_read_back_by_the_peer(tmp_path):
    from experiments.peers import plain_jax_tbx

    assert inputs.IDX_FILES == plain_jax_tbx.FILES
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    inputs.write_idx_file(tmp_path / "i.gz", images)
    inputs.write_idx_file(tmp_path / "l.gz", labels)
    np.testing.assert_array_equal(plain_jax_tbx.read_idx(str(tmp_path / "i.gz")), images)
    np.testing.assert_array_equal(plain_jax_tbx.read_idx(str(tmp_path / "l.gz")), labels)
    with gzip.open(tmp_path / "i.gz") as f:
        assert f.read(8) == bytes([0, 0, 8, 3, 0, 0, 0, 7])


def test_load_script_times_both_splits_on_mock_data(monkeypatch, capsys):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(sys, "argv", ["-c", ""])
    with tfds.testing.mock_data(num_examples=20):
        exec(running.LOAD_SCRIPT, {})  # noqa: S102 - the benchmark's own script
    r = parsing.parse_load(capsys.readouterr().out)
    assert r.load_seconds > 0 and r.epoch_seconds == []


def test_a_failing_variant_is_reported_not_raised():
    r = running.run_once(Variant("broken", "experiments.peers.no_such_peer"), 2, INPUTS, timeout=60)
    assert r.error.startswith("exit 1") and "no_such_peer" in r.error


def test_bad_flags_are_refused():
    for argv in (["--epochs", "1"], ["--rounds", "0"], ["--members", "0,8"], ["--members", "x"]):
        with pytest.raises(SystemExit):
            main.parse_args(argv)
    assert main.parse_args(["--members", "1,2"]).members == (1, 2)


@pytest.mark.slow  # three fresh processes: two peers and one that fails
def test_driver_end_to_end_on_mock_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(inputs, "write_npz", lambda path, data_dir: mock_npz(path))
    monkeypatch.setattr(inputs, "write_idx", lambda folder, data_dir: mock_idx(Path(folder)))
    monkeypatch.setattr(
        variants,
        "VARIANTS",
        (
            Variant("plain_jax", "experiments.peers.plain_jax"),
            Variant("broken", "experiments.peers.no_such_peer"),
            VARIANTS["tbx_1"],
        ),
    )
    argv = ["--rounds", "1", "--epochs", "2", "--no-warmup", "--json", str(tmp_path / "b.json")]
    report = main.main(argv)
    out = capsys.readouterr().out
    assert report["variants"]["plain_jax"]["rounds_ok"] == 1
    assert report["variants"]["plain_jax"]["vs_plain_jax"] == pytest.approx(1.0)
    assert report["variants"]["broken"]["rounds_ok"] == 0
    tbx = report["variants"]["tbx_1"]
    assert tbx["rounds_ok"] == 1, tbx["errors"]
    assert tbx["process_seconds"] > 0 and 0 <= tbx["test_accuracy"] <= 1
    assert "FAILED: exit 1" in out and "comparison" in out and "n/a" in out
    assert json.loads((tmp_path / "b.json").read_text())["targets"]


def on_mock_data(monkeypatch):
    """The project's processes through tests/mock_run.py (tfds mock data, 200 examples)."""
    real = running.command

    def command(variant, epochs, inputs, workdir):
        cmd = real(variant, epochs, inputs, workdir)
        if variant.is_project:
            name = variant.module.removeprefix("experiments.")
            cmd = [cmd[0], str(MOCK_RUN), name, *cmd[3:]]
        return cmd

    monkeypatch.setattr(running, "command", command)
    monkeypatch.setattr(inputs, "train_examples", lambda data_dir: 200)


@pytest.mark.slow  # two fresh processes, each compiling its own sweep
def test_accelerator_mode_on_cpu_mock_data(tmp_path, monkeypatch, capsys):
    on_mock_data(monkeypatch)
    argv = ["--accelerator", "--members", "1,2", "--epochs", "2", "--rounds", "1", "--no-warmup"]
    report = main.main([*argv, "--json", str(tmp_path / "a.json")])
    out = capsys.readouterr().out
    assert report["backend"]["backend"] == "cpu"
    assert set(report["variants"]) == {"members_1", "members_2"}
    rows = {r["members"]: r for r in report["accelerator"]}
    for n in (1, 2):
        s = report["variants"][f"members_{n}"]
        assert s["rounds_ok"] == 1, s["errors"]
        assert rows[n]["examples_per_second"] == pytest.approx(n * 200 / s["seconds_per_epoch"])
    assert rows[1]["per_member_vs_single"] == pytest.approx(1.0)
    assert "examples/s" in out and "on cpu" in out
    assert json.loads((tmp_path / "a.json").read_text())["accelerator"]


def test_accelerator_sweeps_are_one_program_without_logs():
    sweeps = variants.accelerator_variants((1, 8, 256))
    assert [v.name for v in sweeps] == ["members_1", "members_8", "members_256"]
    for v, n in zip(sweeps, (1, 8, 256), strict=True):
        assert v.is_project and not v.logs
        assert v.args[v.args.index("--max-members") + 1] == str(n)
        assert len(v.args[v.args.index("--lr") + 1].split(",")) == n


def test_table_shows_failures_unmet_targets_and_a_busy_host():
    summaries = {
        "plain_jax": summary.summarise(
            [Process(epoch_seconds=[2.0, 0.4, 0.4], test_accuracy=0.97, others_cpu=0.3)]
        ),
        "float32": summary.summarise([Process(error="exit 1: ImportError: boom")]),
        "run_1": summary.summarise([Process(epoch_seconds=[2.0], process_seconds=6.0)]),
    }
    summary.add_ratios(summaries)
    text = report.table(summaries, summary.targets(summaries))
    assert "FAILED: exit 1: ImportError: boom" in text
    assert "n/a" in text and "(information)" in text
    assert "not from a quiet host" in text
    run_1 = next(line for line in text.splitlines() if line.startswith("run_1"))
    assert "6.00" in run_1 and "FAILED" not in run_1


def test_an_experiment_is_a_module_assigning_config_at_its_top_level():
    assert declares_config("from x import Config\nCONFIG = Config(name='a')\n")
    assert declares_config("CONFIG: Config = Config(name='a')\n")
    assert not declares_config('"""Not one: the text\nCONFIG = here is a docstring."""\n')
    assert not declares_config("def f():\n    CONFIG = 1\n")
    names = find_experiments()
    assert "gorner_cnn" in names
    assert not [n for n in names if n.startswith("benchmark")]  # the package and benchmark_*


def test_first_layer_layouts_compute_the_same_products():
    from experiments import benchmark_first_layer as first

    members = 3
    key_x, key_w = jax.random.split(jax.random.key(1))
    x_BxI = jax.random.uniform(key_x, (first.BATCH, first.INPUTS))
    w_MxIxO = jax.random.normal(key_w, (members, first.INPUTS, first.OUTPUTS))
    y_MxBxO, grad_MxIxO = first.per_member(x_BxI, w_MxIxO)
    y_BxMxO, grad_IxMxO = first.shared_input_major(x_BxI, w_MxIxO.transpose(1, 0, 2))
    y_MxOxB, grad_MxOxI = first.shared_output_major(x_BxI, w_MxIxO.transpose(0, 2, 1))
    y_kept, grad_kept = first.shared_kept_per_member(x_BxI, w_MxIxO)
    y_copies, grad_copies = first.copies_forward_shared_gradient(x_BxI, w_MxIxO)
    for y, grad in [
        (y_BxMxO.transpose(1, 0, 2), grad_IxMxO.transpose(1, 0, 2)),
        (y_MxOxB.transpose(0, 2, 1), grad_MxOxI.transpose(0, 2, 1)),
        (y_kept.transpose(1, 0, 2), grad_kept),
        (y_copies, grad_copies),
    ]:
        np.testing.assert_allclose(y, y_MxBxO, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(grad, grad_MxIxO, rtol=1e-4, atol=1e-1)
    # the per-member product is each member's own x @ w
    np.testing.assert_allclose(y_MxBxO[2], x_BxI @ w_MxIxO[2], rtol=1e-5, atol=1e-4)
