"""TensorBoard's HParams dashboard on disk: each member's session beside its runs, and one
experiment record at the log dir's root that every command adds its columns to.

The protobuf content is `tb_hparams`'; the files are written with `writer`'s helpers, so a
failure is the same one-line `LogWriteError`.
"""

import fcntl
import json
import os
import socket
import struct
import time

from tensorboard.plugins.hparams import api_pb2
from tensorboardX.proto.event_pb2 import Event

from mnist_jax import tb_hparams, writer
from mnist_jax.sweep import Member

# "tfevents" in the name is what makes TensorBoard read a file; the fixed name keeps it one file.
EXPERIMENT_FILE = "events.out.tfevents.hparams_experiment"
COVERAGE_FILE = ".hparams_coverage.json"  # beside it: which sessions have which columns
EXPERIMENT = "experiment"  # the hparam naming a session's experiment (`session_hparams`)


def session_hparams(experiment: str, member: Member) -> dict[str, object]:
    """A session's hparams: its experiment, what `Member.shown` shows, then its model,
    optimizer and schedule with their settings. The dashboard's cells show some 17 characters,
    too few to tell `lr_0.003-seed_0 (five_layer_relu_lrdecay)` from the same run of
    `five_layer_relu_lrdecay_dropout`; the settings in which experiments differ
    (`model.activation`, `model.dropout_rate`, `schedule`) are columns shown by default."""
    shown = {EXPERIMENT: experiment, **member.shown()}
    for kind in ("model", "optimizer", "schedule"):
        settings = {kind: getattr(member.config, f"{kind}_name")}
        settings |= {f"{kind}.{k}": v for k, v in getattr(member.config, kind).items()}
        shown |= {k: v for k, v in settings.items() if k not in shown}
    return shown


def write_hparams(run_dir: str, trial: str, hparams: dict[str, object]) -> None:
    """Makes the member's run directory a session of TensorBoard's HParams dashboard, named
    `trial` (its run and experiment, `lr_0.001-seed_0 (five_layer_relu)`); its metrics are
    the last points of its `train` and `test` runs, which the experiment record lists."""
    summary = tb_hparams.session_start(trial, hparams, time.time())
    with writer.reported(run_dir):
        writer.create(_session_file(run_dir, "start"), writer.event_file(summary))


def end_hparams(run_dir: str, completed: bool) -> None:
    """The session's end: success, or failure (diverged)."""
    summary = tb_hparams.session_end(completed, time.time())
    with writer.reported(run_dir):
        writer.create(_session_file(run_dir, "end"), writer.event_file(summary))


def _session_file(run_dir: str, what: str) -> str:
    name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{time.time_ns()}"
    return os.path.join(run_dir, f"{name}.{tb_hparams.PLUGIN}_{what}")


def write_experiment(
    logdir: str,
    members: list[dict[str, object]],
    named: list[tuple[str, str]],
    once: list[tuple[str, str]] = (),
) -> None:
    """Adds the members' hparams and the metrics `named` (run, tag) to the experiment record at
    the log dir's root, and `once`, those only one member gets (a search's test figures).
    TensorBoard uses one such record for the whole log dir, so each command adds to it (under
    a lock, the file replaced whole) rather than writing its own; beside it, which columns how
    many sessions have (`tb_hparams.Coverage`), so that the columns the dashboard shows by
    default are ones every session has."""
    path = os.path.join(logdir, EXPERIMENT_FILE)
    with writer.reported(logdir):
        os.makedirs(logdir, exist_ok=True)
        with open(os.path.join(logdir, ".hparams_experiment.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            experiment, coverage = read_experiment(path), _read_coverage(logdir)
            coverage.add(members, named, once)
            tb_hparams.add_hparams(experiment, members, coverage)
            tb_hparams.add_metrics(experiment, [*named, *once], coverage)
            summary = tb_hparams.experiment_summary(experiment)
            coverage_json = json.dumps(vars(coverage)).encode()
            writer.replace_whole(os.path.join(logdir, COVERAGE_FILE), coverage_json)
            writer.replace_whole(path, writer.event_file(summary))


def _read_coverage(logdir: str) -> tb_hparams.Coverage:
    """What `write_experiment` recorded of the log dir's sessions; nothing for a log dir an
    older version wrote, or a record that cannot be read (it only orders columns)."""
    try:
        with open(os.path.join(logdir, COVERAGE_FILE)) as f:
            return tb_hparams.Coverage(**json.load(f))
    except (OSError, ValueError, TypeError):
        return tb_hparams.Coverage()


def read_experiment(path: str) -> api_pb2.Experiment:
    """The experiment record in `path` (written by `write_experiment`), or an empty one."""
    if not os.path.exists(path):
        return api_pb2.Experiment()
    with open(path, "rb") as f:
        data = f.read()
    offset, experiment = 0, api_pb2.Experiment()
    while offset + 12 <= len(data):  # TFRecord frames: length, its crc, data, its crc
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        event = Event.FromString(data[offset + 12 : offset + 12 + length])
        offset += 16 + length
        experiment = tb_hparams.experiment_of(event.summary) or experiment
    return experiment
