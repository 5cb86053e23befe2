"""When a run saves: once `--checkpoint-every` seconds have passed since the last save began,
after the last epoch, and after the epoch a signal stops; a resume from any of them ends as an
uninterrupted run. The clock is a fake one that each epoch moves on, so that the tests do not
depend on the host's speed. On tfds mock data, as `test_checkpoint.run` trains."""

import signal
import types

import pytest
import tensorflow_datasets as tfds
from test_checkpoint import config_of, metrics_of, run

import mnist_jax
from mnist_jax import checkpoint, cli, interrupt, loop
from mnist_jax.config import ConfigError

EPOCH_SECONDS = 4.0  # what each epoch takes on the fake clock


@pytest.fixture
def clock(monkeypatch):
    """A clock for `checkpoint` that moves on by `EPOCH_SECONDS` with each epoch trained."""
    now = [0.0]
    real_epoch = loop.train.epoch

    def timed_epoch(*args, **kwargs):
        now[0] += EPOCH_SECONDS
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(loop.train, "epoch", timed_epoch)
    # `checkpoint`'s own `time` only: the threads of orbax and the logs keep the real clock.
    monkeypatch.setattr(checkpoint, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def saved_epochs(workdir) -> list[int]:
    (group,) = (workdir / "ckpt").glob("members-*")
    return sorted(int(p.name) for p in group.iterdir() if p.name.isdigit())


def test_a_run_saves_once_the_interval_has_passed_and_after_its_last_epoch_mock_data(
    tmp_path, clock
):
    run("five_layer_relu", tmp_path, "--epochs", "6", "--checkpoint-every", "10")
    # 4 s an epoch: epoch 3 ends 12 s after the start, epoch 6 (the last) 12 s after epoch 3's
    # save; epochs 4 and 5 end 4 and 8 s after it.
    assert saved_epochs(tmp_path) == [3, 6]


def test_the_default_interval_saves_a_short_run_after_its_last_epoch_only_mock_data(
    tmp_path, clock
):
    """Three epochs of 4 s each are well inside the default interval (60 s)."""
    argv = ["--batch-size", "20", "--no-logs", "--quiet", "--epochs", "3"]
    with tfds.testing.mock_data(num_examples=200):
        cli.main(config_of("five_layer_relu"), [*argv, "--checkpoint-dir", str(tmp_path / "ckpt")])
    assert saved_epochs(tmp_path) == [3]
    resumed = run("five_layer_relu", tmp_path, "--epochs", "5", "--resume")
    whole = run("five_layer_relu", tmp_path / "whole", "--epochs", "5")
    assert metrics_of(resumed) == metrics_of(whole)


def test_a_run_stopped_by_a_signal_saves_the_epoch_it_stops_after_mock_data(
    tmp_path, clock, monkeypatch, capsys
):
    real_stop = interrupt.agreed_stop
    stops = iter([None, signal.SIGTERM])  # after epoch 2

    def stop_after_epoch_2(stop):
        if next(stops, None) is not None:
            stop.signum = signal.SIGTERM
        return real_stop(stop)

    monkeypatch.setattr(interrupt, "agreed_stop", stop_after_epoch_2)
    with pytest.raises(SystemExit) as exit_info:
        run("five_layer_relu", tmp_path, "--epochs", "5", "--checkpoint-every", "60")
    assert exit_info.value.code == 143
    assert saved_epochs(tmp_path) == [2]
    monkeypatch.setattr(interrupt, "agreed_stop", real_stop)
    capsys.readouterr()
    resumed = run("five_layer_relu", tmp_path, "--epochs", "5", "--resume")
    whole = run("five_layer_relu", tmp_path / "whole", "--epochs", "5")
    assert metrics_of(resumed) == metrics_of(whole)


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_a_bad_interval_from_python_is_refused_before_any_work(seconds, tmp_path):
    with pytest.raises(ConfigError, match="checkpoint_every takes a number of seconds"):
        mnist_jax.train_and_evaluate(
            config_of("softmax"), checkpoint_dir=str(tmp_path), checkpoint_every=seconds
        )
    assert not list(tmp_path.iterdir())
