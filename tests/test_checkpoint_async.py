"""Checkpoints written in the background: `save` returns once the state is copied to the host,
a failed write is raised by the next `save` or by `close`, and `close` returns only once the
last epoch is on disk. Tiny hand-made states, no training."""

import json
import threading

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from mnist_jax import checkpoint_folder
from mnist_jax.checkpoint import MemberCheckpoints
from mnist_jax.checkpoint_folder import SaveError
from mnist_jax.train import TrainState


def state(w: np.ndarray) -> TrainState:
    """One member whose parameters are `w` (a numpy array, so that a test can change it)."""
    return TrainState(
        params={"w": w},
        opt_state={"m": np.zeros_like(w)},
        step=np.zeros(1, np.int32),
        hparams={"lr": np.full(1, 0.1, np.float32)},
        key=jax.random.split(jax.random.key(0), 1),
        diverged=np.zeros(1, bool),
    )


def store(tmp_path) -> MemberCheckpoints:
    checkpoint_folder.start_run(str(tmp_path), {"name": "test", "members": []})
    return MemberCheckpoints(str(tmp_path), 0, 1)


def save(checkpoints: MemberCheckpoints, epoch: int, w: np.ndarray) -> None:
    checkpoints.save(epoch, epoch, state(w), np.zeros((1, epoch), np.float32), [[]], ["run"])


def saved_w(tmp_path) -> tuple[int, np.ndarray]:
    checkpoints = MemberCheckpoints(str(tmp_path), 0, 1)
    try:
        saved = checkpoints.latest(state(np.zeros((1, 3), np.float32)))
    finally:
        checkpoints.close()
    return saved.epoch, saved.state.params["w"]


@pytest.fixture
def held_writes(monkeypatch) -> threading.Event:
    """Orbax's writes wait until the returned event is set."""
    let_go, real_save = threading.Event(), ocp.CheckpointManager.save

    def held(manager, step, *args, **kwargs):
        assert let_go.wait(30)
        return real_save(manager, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", held)
    return let_go


def test_save_returns_before_the_write_and_close_waits_for_it(tmp_path, held_writes):
    checkpoints = store(tmp_path)
    w = np.ones((1, 3), np.float32)
    save(checkpoints, 1, w)  # returns although orbax has not written anything yet
    w[:] = 7  # what the next epoch does to buffers it reuses: the copy being written keeps 1
    assert not (tmp_path / "members-1-1" / "1").exists()
    held_writes.set()
    checkpoints.close()
    epoch, saved = saved_w(tmp_path)
    assert epoch == 1 and saved.tolist() == [[1, 1, 1]]


def test_the_next_save_waits_for_the_one_being_written(tmp_path, held_writes):
    checkpoints = store(tmp_path)
    save(checkpoints, 1, np.ones((1, 3), np.float32))
    threading.Timer(0.2, held_writes.set).start()
    save(checkpoints, 2, np.full((1, 3), 2, np.float32))
    assert (tmp_path / "members-1-1" / "1").is_dir()  # complete before epoch 2 started
    checkpoints.close()
    assert saved_w(tmp_path)[0] == 2


def full_disk_at(epoch: int, monkeypatch) -> None:
    real_save = ocp.CheckpointManager.save

    def full(manager, step, *args, **kwargs):
        if step == epoch:  # what tensorstore raises on a full disk
            raise ValueError("RESOURCE_EXHAUSTED: Failed to write [os_error_code='28']")
        return real_save(manager, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", full)


def test_a_failed_save_is_raised_by_the_next_naming_its_epoch_and_the_intact_one(
    tmp_path, monkeypatch
):
    full_disk_at(2, monkeypatch)
    checkpoints = store(tmp_path)
    save(checkpoints, 1, np.ones((1, 3), np.float32))
    save(checkpoints, 2, np.full((1, 3), 2, np.float32))  # fails in the background
    with pytest.raises(SaveError) as failure:
        save(checkpoints, 3, np.full((1, 3), 3, np.float32))
    assert str(failure.value).startswith("the checkpoint of epoch 2 could not be written")
    assert "(No space left on device); the checkpoint of epoch 1 is intact" in str(failure.value)
    checkpoints.close()  # the failure was raised once: nothing more to say
    assert saved_w(tmp_path)[0] == 1
    assert sorted(p.name for p in (tmp_path / "members-1-1").iterdir()) == ["1"]


def test_a_failed_last_save_is_raised_by_close(tmp_path, monkeypatch):
    full_disk_at(1, monkeypatch)
    checkpoints = store(tmp_path)
    save(checkpoints, 1, np.ones((1, 3), np.float32))
    with pytest.raises(SaveError, match="epoch 1 could not be written.*no earlier epoch"):
        checkpoints.close()


def test_a_log_file_that_cannot_be_synced_fails_the_save_naming_the_logs(tmp_path, monkeypatch):
    from mnist_jax import writer

    def unsynced():
        raise writer.LogWriteError(f"cannot write TensorBoard logs in {tmp_path}: I/O error")

    monkeypatch.setattr(writer, "sync_written", unsynced)
    checkpoints = store(tmp_path / "ckpt")
    save(checkpoints, 1, np.ones((1, 3), np.float32))
    with pytest.raises(SaveError, match="logs in .*: I/O error; so the checkpoint of epoch 1"):
        checkpoints.wait()
    checkpoints.close()


def test_jax_arrays_are_saved_as_they_were_at_save(tmp_path):
    checkpoints = store(tmp_path)
    w = jnp.arange(3, dtype=jnp.float32)[None]
    save(checkpoints, 1, w)
    checkpoints.close()
    np.testing.assert_array_equal(saved_w(tmp_path)[1], np.asarray(w))


def test_a_failed_last_save_stops_the_run_in_one_line_with_every_epoch_written_mock_data(
    tmp_path, monkeypatch, capsys
):
    """The last epoch's save fails after training ended: one line, exit status 1, the results of
    every epoch trained written, the epoch before intact (`progress.wait_or_fail`)."""
    from test_checkpoint import run

    full_disk_at(3, monkeypatch)
    out_json = tmp_path / "out.json"
    with pytest.raises(SystemExit) as exit_info:
        run("five_layer_relu", tmp_path, "--epochs", "3", "--json", str(out_json))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the checkpoint of epoch 3 could not be written" in err, err
    assert "epoch 2 is intact" in err, err
    assert [len(r["epochs"]) for r in json.loads(out_json.read_text())["runs"]] == [3]
