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
from tensorboard.plugins.custom_scalar import custom_scalars_plugin, layout_pb2
from tensorboard.plugins.custom_scalar import metadata as layout_metadata
from tensorboard.plugins.hparams import backend_context
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.scalar import scalars_plugin

from mnist_jax import writer
from mnist_jax.writer import LogWriteError, RunWriter, claim_run_dir

NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
BATCHES = {
    "loss": np.array([2.5, 2.0, 1.5]),
    "accuracy": np.array([0.25, 0.5, 0.75]),
    "binary_accuracy": np.array([0.5, 0.75, 0.875]),
    "learning_rate": np.array([0.125, 0.125, 0.0625]),
}
TRAIN = {"loss": 1.5, "accuracy": 0.75, "binary_accuracy": 0.875}
TEST = {"loss": 1.75, "accuracy": 0.5, "binary_accuracy": 0.625}


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
    run.write_epoch(epoch, {"train": TRAIN, "test": TEST})
    run.flush()


def data_provider(logdir) -> MultiplexerDataProvider:
    """What a `tensorboard --logdir` serves its dashboards from."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return MultiplexerDataProvider(multiplexer, str(logdir))


# ---------------------------------------------------------------------------------------------
# Scalars


def test_run_writer_round_trip_through_tensorboards_reader(tmp_path):
    run = RunWriter(str(tmp_path / "run"), {"lr": 0.5})
    one_epoch(run)
    run.close()
    batch = scalars(tmp_path / "run" / "batch")
    assert batch["batch_loss"] == [(1, 2.5), (2, 2.0), (3, 1.5)]
    assert batch["learning_rate"] == [(1, 0.125), (2, 0.125), (3, 0.0625)]
    assert set(batch) == set(writer.BATCH_TAGS.values())
    epoch = scalars(tmp_path / "run" / "epoch")
    assert epoch["test_loss"] == [(1, 1.75)] and epoch["binary_accuracy"] == [(1, 0.875)]
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == {"lr": 0.5}
    assert sorted(os.listdir(tmp_path / "run")) == ["batch", "config.json", "epoch"]
    (name,) = os.listdir(tmp_path / "run" / "epoch")
    assert name.startswith("events.out.tfevents.") and name.endswith(f".{os.getpid()}")


def test_events_reach_disk_at_flush_only(tmp_path):
    run = RunWriter(str(tmp_path), {})
    run.write_epoch(1, {"train": TRAIN, "test": TEST})
    assert scalars(tmp_path / "epoch") == {}
    run.flush()
    assert scalars(tmp_path / "epoch")["loss"] == [(1, 1.5)]


def test_a_resumed_run_hides_the_points_it_rewrites(tmp_path):
    first = RunWriter(str(tmp_path), {})
    for epoch in (1, 2, 3):
        first.write_epoch(epoch, {"train": TRAIN, "test": TEST})
    first.close()
    resumed = RunWriter(str(tmp_path), {}, resume_at=(2, 7))
    resumed.write_epoch(2, {"train": {**TRAIN, "loss": 0.5}, "test": TEST})
    resumed.close()
    assert scalars(tmp_path / "epoch")["loss"] == [(1, 1.5), (2, 0.5)]
    assert len(os.listdir(tmp_path / "epoch")) == 2


# ---------------------------------------------------------------------------------------------
# Write failures: raised within seconds, naming the directory; close never hangs


def test_a_full_disk_raises_at_flush_naming_the_directory(tmp_path, monkeypatch):
    run = RunWriter(str(tmp_path / "run"), {})
    run.write_batches(1, BATCHES)
    run.write_epoch(1, {"train": TRAIN, "test": TEST})
    writes = []

    def full(fd, data):
        writes.append(fd)
        raise NO_SPACE

    monkeypatch.setattr(os, "write", full)
    start = time.perf_counter()
    with pytest.raises(LogWriteError) as failure:
        run.flush()
    assert str(failure.value) == (
        f"cannot write TensorBoard logs in {tmp_path / 'run' / 'epoch'}: No space left on device"
    )
    assert isinstance(failure.value, OSError) and failure.value.__cause__ is NO_SPACE
    with pytest.raises(LogWriteError, match="No space left"):  # no retry after a partial write
        one_epoch(run, 2, 4)
    assert len(writes) == 1
    monkeypatch.undo()  # space again: the failed epoch file stays closed, the batch file writes
    run.close()
    assert time.perf_counter() - start < 5
    assert [s for s, _ in scalars(tmp_path / "run" / "batch")["batch_loss"]] == [1, 2, 3, 4, 5, 6]


def test_a_full_disk_at_sync_or_close_raises_too(tmp_path, monkeypatch):
    run = RunWriter(str(tmp_path), {})
    run.write_epoch(1, {"train": TRAIN, "test": TEST})
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(NO_SPACE))
    with pytest.raises(LogWriteError, match="No space left on device"):
        run.close()
    run.close()  # again: the failure was reported, nothing is left to write


def test_a_deleted_run_directory_raises_instead_of_writing_nowhere(tmp_path):
    run = RunWriter(str(tmp_path / "run"), {})
    one_epoch(run)
    shutil.rmtree(tmp_path / "run")
    run.write_epoch(2, {"train": TRAIN, "test": TEST})
    with pytest.raises(LogWriteError, match=r"logs in .*run.epoch: No such file or directory"):
        run.flush()
    run.close()
    assert not (tmp_path / "run").exists()


def test_no_permission_raises_at_open_and_at_flush(tmp_path, monkeypatch):
    run = RunWriter(str(tmp_path / "run"), {})
    real_open = os.open

    def read_only(path, flags, *mode):
        if str(path).startswith(str(tmp_path)) and flags & os.O_WRONLY:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, *mode)

    monkeypatch.setattr(os, "open", read_only)
    run.write_epoch(1, {"train": TRAIN, "test": TEST})
    with pytest.raises(LogWriteError, match="Permission denied"):
        run.flush()
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch", "config.json", "epoch"]


def test_a_full_disk_on_the_log_thread_surfaces_in_the_caller(tmp_path, monkeypatch):
    """As the experiment writes: epochs on a log thread, then close, then `result()`; no hang."""
    runs = [RunWriter(str(tmp_path / f"run{m}"), {}) for m in range(2)]
    monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(NO_SPACE))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as log_thread:
        written = [log_thread.submit(one_epoch, run, e, 3 * e - 2) for run in runs for e in (1, 2)]
        written += [log_thread.submit(run.close) for run in runs]
    with pytest.raises(LogWriteError, match="run0.epoch: No space left on device"):
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
    metrics = {"test_loss": 0.25, "test_accuracy": 0.875, "test_binary_accuracy": 0.9375}
    writer.write_hparams(str(run_dir), values, metrics)
    events = accumulator(run_dir)
    content = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    start = hparams_metadata.parse_session_start_info_plugin_data(
        content[hparams_metadata.SESSION_START_INFO_TAG]
    )
    assert {k: v.WhichOneof("kind") for k, v in start.hparams.items()} == {
        "learning_rate": "number_value",
        "seed": "number_value",
        "loss": "string_value",
        "raw": "bool_value",
        "hidden": "string_value",
    }
    assert start.hparams["learning_rate"].number_value == 0.5
    assert start.hparams["hidden"].string_value == "[512, 512]"
    assert hparams_metadata.SESSION_END_INFO_TAG in content
    assert hparams_metadata.EXPERIMENT_TAG not in content
    assert {tag: events.Scalars(tag)[-1].value for tag in metrics} == metrics


def test_hparams_dashboard_lists_one_session_per_run(tmp_path):
    for lr in (0.5, 0.25):
        run = RunWriter(str(tmp_path / "softmax" / f"lr_{lr}"), {})
        one_epoch(run)
        run.close()
        writer.write_hparams(run.run_dir, {"learning_rate": lr}, {"test_loss": lr / 2})
    tb = backend_context.Context(base_plugin.TBContext(data_provider=data_provider(tmp_path)))
    ctx = context.RequestContext()
    sessions = tb.hparams_metadata(ctx, "")
    assert sorted(sessions) == ["softmax/lr_0.25", "softmax/lr_0.5"]
    experiment = tb.experiment_from_metadata(ctx, "", True, sessions, None)
    (info,) = experiment.hparam_infos
    assert info.name == "learning_rate"
    interval = info.domain_interval
    assert (interval.min_value, interval.max_value, info.differs) == (0.25, 0.5, True)
    metrics = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    assert {("", "test_loss"), ("epoch", "test_loss"), ("batch", "batch_loss")} <= metrics


def test_layout_overlays_train_and_test_once_per_experiment(tmp_path):
    writer.write_layout(str(tmp_path / "softmax"))
    writer.write_layout(str(tmp_path / "softmax"))  # a second run in the same dir
    assert os.listdir(tmp_path / "softmax") == [writer.LAYOUT_FILE]
    (event,) = accumulator(tmp_path / "softmax").Tensors(layout_metadata.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert charts == {
        "loss": ["^loss$", "^val_loss$", "^test_loss$"],
        "accuracy": ["^accuracy$", "^val_accuracy$", "^test_accuracy$"],
        "binary_accuracy": [
            "^binary_accuracy$",
            "^val_binary_accuracy$",
            "^test_binary_accuracy$",
        ],
    }


def test_custom_scalars_dashboard_charts_each_runs_train_and_test_curves(tmp_path):
    writer.write_layout(str(tmp_path / "softmax"))
    run = RunWriter(str(tmp_path / "softmax" / "lr_0.5"), {})
    one_epoch(run)
    run.close()
    plugins = {}
    tb = base_plugin.TBContext(
        data_provider=data_provider(tmp_path), logdir=str(tmp_path), plugin_name_to_instance=plugins
    )
    plugins["scalars"] = scalars_plugin.ScalarsPlugin(tb)
    plugin = custom_scalars_plugin.CustomScalarsPlugin(tb)
    (category,) = json.loads(plugin.layout_impl(context.RequestContext(), ""))["category"]
    loss_chart = category["chart"][0]
    assert loss_chart["multiline"]["tag"] == ["^loss$", "^val_loss$", "^test_loss$"]
    for tag, value in (("^loss$", 1.5), ("^test_loss$", 1.75)):
        found = plugin.scalars_impl(context.RequestContext(), "softmax/lr_0.5/epoch", tag, "")
        ((name, points),) = found["tag_to_events"].items()  # the one tag the pattern matches
        assert (name, [p[1:] for p in points]) == (tag.strip("^$"), [(1, value)])
