"""Ctrl-C and SIGTERM during training: stop after the current epoch rather than mid-write.

The first signal asks the epoch loop to stop once the epoch in flight is done (it is one
compiled call and cannot be cut short); the loop then saves, flushes and returns. A second
signal abandons the epoch at once, as Ctrl-C normally would. A stop entered inside another (a
report training many runs) passes its signal out, so the enclosing work stops too.
"""

import signal
import sys
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Training stopped early on a signal, its logs and checkpoint complete up to `epoch`."""

    def __init__(self, signum: int, epoch: int, total: int):
        super().__init__(f"{signal.Signals(signum).name} after epoch {epoch}/{total}")
        self.signum = signum  # the exit status is 128 + signum


class StopOnSignal:
    """A context in which SIGINT and SIGTERM set `signum` instead of killing the process."""

    def __init__(self, after: str = "this epoch"):
        self.signum: int | None = None
        self.after = after  # what finishes before the stop, as the first signal's message says
        self._previous = {}
        self._outer: StopOnSignal | None = None

    def _handle(self, signum, frame):
        if self._outer is not None and self._outer.signum is None:
            self._outer.signum = signum
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after {self.after} "
            "(again to abandon it at once)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
            outer = getattr(self._previous[signal.SIGTERM], "__self__", None)
            if isinstance(outer, StopOnSignal):  # a signal already received stops this one too
                self._outer, self.signum = outer, outer.signum
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def agreed_stop(stop: StopOnSignal) -> int | None:
    """The signal any process received, the same answer on every process (and recorded in
    each one's `stop`): a preempted host stops them all after the same epoch, with one
    checkpoint all can resume from."""
    if jax.process_count() > 1:
        signums = multihost_utils.process_allgather(np.int32(stop.signum or 0))
        received = [int(s) for s in np.ravel(signums) if s]
        if received and stop.signum is None:
            stop.signum = received[0]
    return stop.signum
