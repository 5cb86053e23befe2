"""Ctrl-C and SIGTERM in every phase of a run: at once where nothing would be lost (set-up, a
search's final evaluation), after the epoch in flight during training, after the write in
flight while results are written.

During training, the first signal asks the epoch loop to stop once the epoch in flight is done
(it is one compiled call and cannot be cut short); the loop then saves, flushes and returns. A
second signal abandons the epoch at once, as Ctrl-C normally would. In a phase marked
`at_once`, the first signal stops the run there (`Interrupted`). A stop entered inside another (a
report training many runs) passes its signal out, so the enclosing work stops too.
"""

import contextlib
import signal
import sys
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """A run stopped early on a signal: after epoch `epoch` of `total`, its logs and checkpoint
    complete up to there, or `during` a phase outside the epochs."""

    def __init__(self, signum: int, epoch: int = 0, total: int = 0, during: str | None = None):
        name = signal.Signals(signum).name
        super().__init__(
            f"{name} during {during}" if during else f"{name} after epoch {epoch}/{total}"
        )
        self.signum = signum  # the exit status is 128 + signum


class StopOnSignal:
    """A context in which SIGINT and SIGTERM set `signum` instead of killing the process."""

    def __init__(self, after: str = "this epoch"):
        self.signum: int | None = None
        self.after = after  # what finishes before the stop, as the first signal's message says
        self._previous = {}
        self._outer: StopOnSignal | None = None
        self._phase: str | None = None  # a phase a signal stops at once (`at_once`)

    def _handle(self, signum, frame):
        if self._outer is not None and self._outer.signum is None:
            self._outer.signum = signum
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        if self._phase is not None:
            raise Interrupted(signum, during=self._phase)
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

    @contextlib.contextmanager
    def at_once(self, phase: str):
        """A phase the first signal stops where it is (`Interrupted`, naming `phase`): one
        that writes nothing, so nothing is lost. A signal received before it stops it too."""
        if self.signum is not None:
            raise Interrupted(self.signum, during=phase)
        self._phase = phase
        try:
            yield
        finally:
            self._phase = None


def agreed_stop(stop: StopOnSignal) -> int | None:
    """The signal any process received, the same answer on every process (and recorded in
    each one's `stop`): a preempted host stops them all after the same epoch, with one
    checkpoint all can resume from. A signal that arrives during the exchange counts at the
    next one, on every process alike."""
    if jax.process_count() == 1:
        return stop.signum
    signums = multihost_utils.process_allgather(np.int32(stop.signum or 0))
    received = [int(s) for s in np.ravel(signums) if s]
    if not received:
        return None
    if stop.signum is None:
        stop.signum = received[0]
    return received[0]
