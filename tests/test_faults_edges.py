"""Faults at the edges (issue 32): a signal to the report, datasets that cannot be trained on,
very long values, half-written state, damaged records, misspelt names. Each test makes the
fault for real where it can (a signal to a process, a read-only folder, a file of the wrong
shape) and checks the one-line answer and that nothing written before is lost."""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import test_data

from mnist_jax import data, interrupt

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

small_mnist = test_data.small_mnist  # a fixture: four small IDX files

QUICK_REPORT = """
import sys
import tensorflow_datasets as tfds
from experiments.report import main
with tfds.testing.mock_data(num_examples=300):  # the quick report's 3 steps: one epoch
    main.main(sys.argv[1:])
"""


def test_a_signal_inside_a_run_reaches_the_stop_around_it():
    """A report trains many runs, each with its own stop: the signal one of them gets must stop
    the report too, and one received between runs must stop the next after its first epoch."""
    with interrupt.StopOnSignal() as outer:
        with interrupt.StopOnSignal() as inner:
            os.kill(os.getpid(), signal.SIGTERM)
        assert inner.signum == outer.signum == signal.SIGTERM
        with interrupt.StopOnSignal() as later:
            assert later.signum == signal.SIGTERM
            with pytest.raises(KeyboardInterrupt):  # the second signal abandons at once
                os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.slow  # a real process training three of the report's sweeps on mock data
def test_sigterm_stops_the_report_keeps_the_finished_sweeps_and_its_temp_folder_goes_mock_data(
    tmp_path,
):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "R.md"
    argv = ["--quick", "--out", str(out), "--data-dir", str(tmp_path / "tfds")]
    proc = subprocess.Popen(
        [sys.executable, "-c", QUICK_REPORT, *argv],
        env={**ENV, "TMPDIR": str(tmp)}, cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    started = 0
    for line in proc.stdout:
        started += line.startswith("== ")
        if started == 3:  # two sweeps are done, the third has begun
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    last = err.strip().splitlines()[-1]
    # The third sweep, of one epoch, finishes it (had it more, the signal would drop it).
    assert "stopped: SIGTERM after 3 of 12 sweeps" in last, err
    assert str(tmp_path / "R.partial.md") in last, err
    text = (tmp_path / "R.partial.md").read_text()
    assert "Partial: stopped by SIGTERM after 3 of 12 sweeps" in text
    assert (
        "`softmax`" in text and "`five_layer_sigmoid`" in text and "`five_layer_relu`" not in text
    )
    assert not out.exists()
    assert list(tmp.iterdir()) == []  # the quick report's temporary log folder is removed


def test_prepare_leaves_no_temporary_folder_in_tmpdir(small_mnist, tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # $TMPDIR, as tempfile read it
    source, _, checksums = small_mnist
    data.prepare(source, str(tmp_path / "tfds"), checksums=checksums)
    assert list(tmp.iterdir()) == []
