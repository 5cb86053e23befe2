"""The TensorBoard writer: logs read back with TensorBoard's own readers, write failures raised
at once (injected: tests run as root, which no chmod stops, and no tiny full disk is at hand),
run directories claimed without collisions."""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from tensorboard import context
from tensorboard.backend.event_processing import event_accumulator, plugin_event_multiplexer
from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import backend_context
from tensorboard.plugins.hparams import metadata as hparams_metadata

from mnist_jax import hparams_logs, writer
from mnist_jax.results import Epoch
from mnist_jax.writer import LogWriteError, RunWriter, claim_run_dir

NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
BATCHES = {
    "loss": np.array([2.5, 2.0, 1.5]),
    "accuracy": np.array([0.25, 0.5, 0.75]),
    "binary_accuracy": np.array([0.5, 0.75, 0.875]),
    "learning_rate": np.array([0.125, 0.125, 0.0625]),
}
TRAIN = {"loss": 1.5, "accuracy": 0.75, "binary_accuracy": 0.875, "learning_rate": 0.0625}
TEST = {"test_loss": 1.75, "test_accuracy": 0.5, "test_binary_accuracy": 0.625}


def record(epoch: int, **changed) -> Epoch:
    return Epoch(epoch, {**TRAIN, **TEST, **changed}, seconds=1.0)


def accumulator(event_dir) -> event_accumulator.EventAccumulator:
    events = event_accumulator.EventAccumulator(
        str(event_dir), size_guidance={event_accumulator.SCALARS: 0}
    )
    events.Reload()
    return events


def scalars(event_dir) -> dict[str, list[tuple[int, float]]]:
    events = accumulator(event_dir)
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def one_epoch(run: RunWriter, epoch: int = 1, first_step: int = 1) -> None:
    run.write_batches(first_step, BATCHES)
    run.write_epoch(record(epoch))
    run.flush()


def data_provider(logdir) -> MultiplexerDataProvider:
    """What a `tensorboard --logdir` serves its dashboards from."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return MultiplexerDataProvider(multiplexer, str(logdir))


# ---------------------------------------------------------------------------------------------
# Scalars


def test_run_writer_lays_out_train_and_test_runs_with_keras_tags(tmp_path):
    run = RunWriter(str(tmp_path / "run"), {"lr": 0.5})
    one_epoch(run)
    run.write_final(1, {"class_accuracy": np.array([0.5, 1.0]), "confusion_matrix": np.eye(2)})
    run.close()
    train = scalars(tmp_path / "run" / "train")
    assert train["batch_loss"] == [(1, 2.5), (2, 2.0), (3, 1.5)]
    assert train["batch_learning_rate"] == [(1, 0.125), (2, 0.125), (3, 0.0625)]
    assert train["epoch_loss"] == [(1, 1.5)] and train["epoch_binary_accuracy"] == [(1, 0.875)]
    test = scalars(tmp_path / "run" / "test")
    assert set(test) == {"epoch_loss", "epoch_accuracy", "epoch_binary_accuracy"} | {
        "class_accuracy/0",
        "class_accuracy/1",
    }
    assert test["epoch_loss"] == [(1, 1.75)] and test["class_accuracy/1"] == [(1, 1.0)]
    assert accumulator(tmp_path / "run" / "test").Tags()["images"] == ["confusion_matrix"]
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == {"lr": 0.5}
    assert sorted(os.listdir(tmp_path / "run")) == ["config.json", "test", "train"]
    (name,) = os.listdir(tmp_path / "run" / "train")
    assert name.startswith("events.out.tfevents.") and name.endswith(f".{os.getpid()}")


def test_events_reach_disk_at_flush_only(tmp_path):
    run = RunWriter(str(tmp_path), {})
    run.write_epoch(record(1))
    assert scalars(tmp_path / "train") == {}
    run.flush()
    assert scalars(tmp_path / "train")["epoch_loss"] == [(1, 1.5)]


def test_a_resumed_run_hides_the_points_it_rewrites(tmp_path):
    first = RunWriter(str(tmp_path), {})
    for epoch in (1, 2, 3):
        first.write_batches(2 * epoch - 1, {k: v[:2] for k, v in BATCHES.items()})
        first.write_epoch(record(epoch))
    first.close()
    resumed = RunWriter(str(tmp_path), {}, resume_at=(2, 3))
    resumed.write_batches(3, {k: v[:2] * 0 for k, v in BATCHES.items()})
    resumed.write_epoch(record(2, test_loss=0.5))
    resumed.close()
    assert scalars(tmp_path / "test")["epoch_loss"] == [(1, 1.75), (2, 0.5)]
    assert [v for _, v in scalars(tmp_path / "train")["batch_loss"]] == [2.5, 2.0, 0.0, 0.0]
    assert len(os.listdir(tmp_path / "test")) == 2


# ---------------------------------------------------------------------------------------------
# Write failures: raised within seconds, naming the directory; close never hangs


def test_a_full_disk_raises_at_flush_naming_the_directory(tmp_path, monkeypatch):
    run = RunWriter(str(tmp_path / "run"), {})
    run.write_batches(1, BATCHES)
    run.write_epoch(record(1))
    writes = []

    def full(fd, data):
        writes.append(fd)
        raise NO_SPACE

    monkeypatch.setattr(os, "write", full)
    start = time.perf_counter()
    with pytest.raises(LogWriteError) as failure:
        run.flush()
    assert str(failure.value) == (
        f"cannot write TensorBoard logs in {tmp_path / 'run' / 'train'}: No space left on device"
    )
    assert isinstance(failure.value, OSError) and failure.value.__cause__ is NO_SPACE
    with pytest.raises(LogWriteError, match="No space left"):  # no retry after a partial write
        one_epoch(run, 2, 4)
    assert len(writes) == 1
    monkeypatch.undo()  # space again: the failed train file stays closed, the test file writes
    run.close()
    assert time.perf_counter() - start < 5
    assert scalars(tmp_path / "run" / "test")["epoch_loss"] == [(1, 1.75)]
    assert scalars(tmp_path / "run" / "train") == {}


def test_a_failed_sync_before_a_checkpoint_raises_naming_the_directory(tmp_path, monkeypatch):
    run = RunWriter(str(tmp_path), {})
    run.write_epoch(record(1))
    run.close()
    synced, real_fsync = [], os.fsync

    def sync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", sync)
    writer.sync_written()  # earlier tests' files too: the set is the process's
    assert {run.train.path, run.test.path} <= set(synced)
    synced.clear()
    writer.sync_written()
    assert synced == []  # nothing appended since
    run = RunWriter(str(tmp_path / "b"), {})
    run.write_epoch(record(1))
    run.flush()
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(NO_SPACE))
    with pytest.raises(LogWriteError, match=f"logs in {tmp_path / 'b'}.*: No space left on device"):
        writer.sync_written()


def test_a_deleted_run_directory_raises_instead_of_writing_nowhere(tmp_path):
    run = RunWriter(str(tmp_path / "run"), {})
    one_epoch(run)
    shutil.rmtree(tmp_path / "run")
    run.write_epoch(record(2))
    with pytest.raises(LogWriteError, match=r"logs in .*run.train: No such file or directory"):
        run.flush()
    with pytest.raises(LogWriteError, match=r"logs in .*run.test: No such file or directory"):
        run.close()  # the test run's epoch 2 is pending: its write fails too, at once
    assert not (tmp_path / "run").exists()


def test_no_permission_raises_at_open_and_at_flush(tmp_path, monkeypatch):
    run, second = RunWriter(str(tmp_path / "run"), {}), RunWriter(str(tmp_path / "run2"), {})
    real_open = os.open

    def read_only(path, flags, *mode):
        if str(path).startswith(str(tmp_path)) and flags & os.O_WRONLY:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, *mode)

    monkeypatch.setattr(os, "open", read_only)
    run.write_batches(1, BATCHES)
    with pytest.raises(LogWriteError, match="Permission denied"):
        run.flush()
    with pytest.raises(LogWriteError, match=r"logs in .*run.train: Permission denied"):
        run.write_epoch(record(1))  # the failed file refuses at once
    with pytest.raises(LogWriteError, match=r"logs in .*run2.test: Permission denied"):
        second.write_epoch(record(1))  # the test run's file, made at its first figures
    with pytest.raises(LogWriteError, match=f"logs in {tmp_path / 'other'}: Permission denied"):
        RunWriter(str(tmp_path / "other"), {})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_raises(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run").chmod(0o555)
    with pytest.raises(LogWriteError, match="Permission denied"):
        RunWriter(str(tmp_path / "run"), {})


def test_config_json_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    RunWriter(str(tmp_path), {"lr": 0.5}).close()
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(NO_SPACE))
    with pytest.raises(LogWriteError, match=f"logs in {tmp_path}: No space left on device"):
        RunWriter(str(tmp_path), {"lr": 0.25})
    assert json.loads((tmp_path / "config.json").read_text()) == {"lr": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "train"]  # no tmp left


def test_a_full_disk_on_the_log_thread_surfaces_in_the_caller(tmp_path, monkeypatch):
    """As the experiment writes: epochs on a log thread, then close, then `result()`; no hang."""
    runs = [RunWriter(str(tmp_path / f"run{m}"), {}) for m in range(2)]
    monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(NO_SPACE))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as log_thread:
        written = [log_thread.submit(one_epoch, run, e, 3 * e - 2) for run in runs for e in (1, 2)]
        written += [log_thread.submit(run.close) for run in runs]
    # the test run's file, made at the first epoch's figures, is the first write
    with pytest.raises(LogWriteError, match="run0.test: No space left on device"):
        for future in written:
            future.result(timeout=5)
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------------------------------------
# Run directories


def test_claim_run_dir_takes_the_next_free_name(tmp_path):
    path = str(tmp_path / "exp" / "run")
    assert [claim_run_dir(path) for _ in range(3)] == [path, f"{path}-2", f"{path}-3"]
    (tmp_path / "exp" / "run" / "old").write_text("x")
    assert claim_run_dir(path, overwrite=True) == path
    assert os.listdir(path) == []


def test_threads_claiming_at_once_get_distinct_dirs(tmp_path):
    path, claimed = str(tmp_path / "run"), []
    start = threading.Barrier(16)

    def claim():
        start.wait()
        claimed.append(claim_run_dir(path))

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted([path] + [f"{path}-{n}" for n in range(2, 17)])


@pytest.mark.slow  # four fresh processes, let go together after 3 s
def test_processes_claiming_at_once_get_distinct_dirs(tmp_path):
    path, at = str(tmp_path / "run"), time.time() + 3  # every process imported by then
    script = textwrap.dedent(f"""
        import time
        from mnist_jax.writer import claim_run_dir
        time.sleep(max(0, {at} - time.time()))
        print("\\n".join(claim_run_dir({path!r}) for _ in range(4)))
    """)
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    claimed = [line for p in processes for line in p.communicate(timeout=60)[0].split()]
    assert sorted(claimed) == sorted([path] + [f"{path}-{n}" for n in range(2, 17)])


# ---------------------------------------------------------------------------------------------
# HParams and the custom-scalars layout


def test_hparams_read_back_with_tensorboards_reader(tmp_path):
    run_dir = tmp_path / "softmax" / "lr_0.5-seed_0"
    RunWriter(str(run_dir), {}).close()
    values = {"learning_rate": 0.5, "seed": 0, "loss": "binary", "raw": True, "hidden": [512, 512]}
    hparams_logs.write_hparams(str(run_dir), "lr_0.5-seed_0 (softmax)", values)
    hparams_logs.end_hparams(str(run_dir), completed=True)
    events = accumulator(run_dir)
    content = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    start = hparams_metadata.parse_session_start_info_plugin_data(
        content[hparams_metadata.SESSION_START_INFO_TAG]
    )
    assert {k: v.WhichOneof("kind") for k, v in start.hparams.items()} == {
        "learning_rate": "number_value",
        "seed": "string_value",  # the dashboard shows numbers as 0.0000
        "loss": "string_value",
        "raw": "bool_value",
        "hidden": "string_value",
    }
    assert (
        start.hparams["seed"].string_value == "0" and start.group_name == "lr_0.5-seed_0 (softmax)"
    )
    assert start.hparams["hidden"].string_value == "[512,512]"
    assert hparams_metadata.SESSION_END_INFO_TAG in content


def test_hparams_dashboard_lists_one_session_per_member_test_metrics_first(tmp_path):
    members = [{"lr": 0.5, "seed": 0}, {"lr": 0.25, "seed": 0}]
    for values in members:
        run = RunWriter(str(tmp_path / "softmax" / f"lr_{values['lr']}"), {})
        one_epoch(run)
        run.close()
        hparams_logs.write_hparams(run.run_dir, f"lr_{values['lr']} (softmax)", values)
    named = [("train", "epoch_loss"), ("test", "epoch_loss"), ("test", "epoch_accuracy")]
    hparams_logs.write_experiment(str(tmp_path), members, named)
    # A second command in the same log dir adds its keys and metrics, the test ones first.
    more = [("train", "epoch_grad"), ("validation", "epoch_loss"), ("test", "epoch_x")]
    hparams_logs.write_experiment(
        str(tmp_path), [{"lr": 0.5, "seed": 0, "model.dropout_rate": 0.5}], more
    )
    tb = backend_context.Context(base_plugin.TBContext(data_provider=data_provider(tmp_path)))
    ctx = context.RequestContext()
    sessions = tb.hparams_metadata(ctx, "")
    assert sorted(s for s in sessions if s != ".") == ["softmax/lr_0.25", "softmax/lr_0.5"]
    experiment = tb.experiment_from_metadata(ctx, "", True, sessions, None)
    differs = {h.name: h.differs for h in experiment.hparam_infos}
    # Shown first: what every session has, what differs before what does not; never the
    # dropout rate, which the first command's sessions lack.
    assert differs == {"lr": True, "seed": True, "model.dropout_rate": False}
    assert [(m.name.group, m.name.tag) for m in experiment.metric_infos] == [
        ("test", "epoch_loss"),
        ("test", "epoch_accuracy"),
        ("test", "epoch_x"),
        ("validation", "epoch_loss"),
        ("train", "epoch_loss"),
        ("train", "epoch_grad"),
    ]


def test_the_columns_shown_by_default_are_ones_every_session_has(tmp_path):
    """TensorBoard shows the first five hparams (those that differ first) and the first five
    metrics, and its parallel-coordinates view drops every session lacking one of them: two
    commands in one log dir, one sweeping the dropout rate and logging a validation split."""
    common = {"lr": 0.5, "seed": 0, "loss": "categorical", "loss.l2": 0.0, "loss.smoothing": 0.0}
    test = [("test", f"epoch_{m}") for m in ("loss", "accuracy", "binary_accuracy")]
    train = [("train", f"epoch_{m}") for m in ("loss", "accuracy", "binary_accuracy", "lr")]
    validation = [("validation", f"epoch_{m}") for m in ("loss", "accuracy")]
    sweeps = [
        [{**common, "lr": lr} for lr in (0.5, 0.25)],
        [{**common, "model.dropout_rate": rate} for rate in (0.1, 0.2)],
    ]
    hparams_logs.write_experiment(str(tmp_path), sweeps[0], test + train)
    hparams_logs.write_experiment(str(tmp_path), sweeps[1], test + validation + train)
    experiment = hparams_logs.read_experiment(str(tmp_path / hparams_logs.EXPERIMENT_FILE))
    # As TensorBoard's backend orders them and its dashboard ticks them:
    shown = sorted(experiment.hparam_infos, key=lambda h: (not h.differs, h.name))[:5]
    assert all(h.name in member for h in shown for sweep in sweeps for member in sweep)
    assert "lr" in [h.name for h in shown]
    metrics = [(m.name.group, m.name.tag) for m in experiment.metric_infos]
    assert metrics[:5] == test + train[:2]  # every session has them
    assert set(metrics[-2:]) == set(validation)
