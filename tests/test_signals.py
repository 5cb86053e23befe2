"""SIGTERM in every phase of a run (issue: signals outside the epoch): set-up and a search's
final evaluation stop at once, results being written are finished; each stop writes what it
has and exits 128 + the signal. The signal is a real one, sent to this process while the phase
runs. On tfds mock data."""

import json
import os
import signal

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import five_layer_relu
from mnist_jax import cli, experiment, interrupt, results

SHORT = ["--batch-size", "20", "--quiet"]
SEARCH = ["val_split=40", "lr=loguniform(1e-4,1e-2)", "--samples", "2", "--epochs", "2"]


def sigterm_during(monkeypatch, module, name):
    """`module.name` that receives SIGTERM as it starts, then goes on."""
    real = getattr(module, name)

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, signalled)


def run(tmp_path, *flags):
    argv = [*SHORT, "--logdir", str(tmp_path / "logs"), "--json", str(tmp_path / "out.json")]
    with tfds.testing.mock_data(num_examples=120), pytest.raises(SystemExit) as exit_info:
        cli.main(five_layer_relu.CONFIG, [*argv, *flags])
    return exit_info.value.code


def test_sigterm_during_set_up_stops_at_once_with_status_143_mock_data(
    tmp_path, monkeypatch, capsys
):
    sigterm_during(monkeypatch, experiment, "prepare")
    assert run(tmp_path, "--steps", "3") == 143
    assert "stopped: SIGTERM during set-up" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()  # nothing trained, nothing to write


def test_sigterm_during_a_searchs_final_evaluation_writes_what_trained_mock_data(
    tmp_path, monkeypatch, capsys
):
    sigterm_during(monkeypatch, experiment, "choose")
    assert run(tmp_path, *SEARCH, "--search", "halving", "--eta", "2") == 143
    assert "stopped: SIGTERM during the search's final evaluation" in capsys.readouterr().err
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["search"] is None and len(report["runs"]) == 2


def test_sigterm_during_training_writes_the_epochs_done_mock_data(tmp_path, monkeypatch, capsys):
    sigterm_during(monkeypatch, experiment.loop.train, "train_epoch")
    assert run(tmp_path, "--epochs", "3") == 143
    assert "stopped: SIGTERM after epoch 1/3" in capsys.readouterr().err
    (saved,) = json.loads((tmp_path / "out.json").read_text())["runs"]
    assert len(saved["epochs"]) == 1


def test_sigterm_while_results_are_written_lets_them_finish_mock_data(tmp_path, monkeypatch):
    sigterm_during(monkeypatch, results, "write_json")
    argv = [*SHORT, "--no-logs", "--json", str(tmp_path / "out.json"), "--steps", "3"]
    argv += ["--csv", str(tmp_path / "out.csv")]
    with tfds.testing.mock_data(num_examples=120):
        cli.main(five_layer_relu.CONFIG, argv)  # a run that is done ends as done
    assert json.loads((tmp_path / "out.json").read_text())["runs"]
    assert (tmp_path / "out.csv").read_text().count("\n") == 2
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_results_file_that_fails_never_stops_the_other_mock_data(tmp_path, monkeypatch, capsys):
    real = results.files.write_atomic

    def full_for_json(path, text):
        if path.endswith(".json"):
            raise results.files.WriteError(f"cannot write {path}: No space left on device")
        return real(path, text)

    monkeypatch.setattr(results.files, "write_atomic", full_for_json)
    argv = [*SHORT, "--no-logs", "--json", str(tmp_path / "out.json"), "--steps", "3"]
    argv += ["--csv", str(tmp_path / "out.csv")]
    with tfds.testing.mock_data(num_examples=120), pytest.raises(SystemExit) as exit_info:
        cli.main(five_layer_relu.CONFIG, argv)
    assert exit_info.value.code == 1
    assert "No space left on device" in capsys.readouterr().err
    assert (tmp_path / "out.csv").read_text().count("\n") == 2  # the CSV went on regardless


def test_a_signal_during_the_processes_exchange_counts_at_the_next_on_every_one(monkeypatch):
    """Two processes agree on a stop by gathering what each received: a signal that arrives on
    one while the gather runs was not in it, so every process answers no stop now (not only
    the others), and all stop at the next exchange. Otherwise one would stop and save while the
    other trains on, each waiting for the other."""
    stop = interrupt.StopOnSignal()
    gathered = iter([np.zeros(2, np.int32), np.array([0, signal.SIGTERM], np.int32)])

    def signalled_during_the_gather(signum):
        stop.signum = signal.SIGTERM  # what the handler does on this process, mid-gather
        return next(gathered)

    monkeypatch.setattr(interrupt.jax, "process_count", lambda: 2)
    monkeypatch.setattr(interrupt.multihost_utils, "process_allgather", signalled_during_the_gather)
    assert interrupt.agreed_stop(stop) is None  # as process 0, which gathered zeros, answers
    assert interrupt.agreed_stop(stop) == signal.SIGTERM
