"""A multi-process run whose peer dies: the others end with one line, not a C++ stack dump.

Without it, a process killed outright leaves the others blocked in the next collective until
JAX's coordination service gives up on the dead one (about 80-100 s) and aborts them all with a
stack dump. Here every process bumps a counter in the coordination service's key-value store
every `BEAT_S` seconds and watches the others'; a counter that stops moving for `LOST_AFTER_S`
(or a coordinator that stops answering) ends this process with one line naming the lost process
and how to resume. The checkpoint of the last complete epoch is untouched: saves are atomic.
"""

import os
import sys
import threading
import time
from collections.abc import Callable

BEAT_S = 2.0
LOST_AFTER_S = 20.0
PREFIX = "mnist_jax/heartbeat/"


def start(prog: str, resume_hint: Callable[[], str]) -> threading.Thread | None:
    """Starts watching the other processes of this run; None for a single process.
    `resume_hint()` says, when a peer is lost, how to go on from what is saved by then."""
    import jax
    from jax._src import distributed

    client = distributed.global_state.client
    if jax.process_count() == 1 or client is None:
        return None
    me = jax.process_index()
    thread = threading.Thread(
        target=_watch, args=(client, me, prog, resume_hint), name="peer-watchdog", daemon=True
    )
    thread.start()
    return thread


def _watch(client, me: int, prog: str, resume_hint: Callable[[], str]) -> None:
    last_seen: dict[str, tuple[str, float]] = {}
    beat = 0
    while True:
        beat += 1
        try:
            client.key_value_set(f"{PREFIX}{me}", str(beat), allow_overwrite=True)
            beats = dict(client.key_value_dir_get(PREFIX))
        except Exception as error:  # the coordinator (process 0) is gone
            _lost(prog, "0 (the coordinator)", f"it stopped answering: {error}", resume_hint)
        now = time.monotonic()
        for key, value in beats.items():
            peer = key.rpartition("/")[2]
            if peer == str(me):
                continue
            seen_value, since = last_seen.get(peer, (None, now))
            last_seen[peer] = (value, now if value != seen_value else since)
            if now - last_seen[peer][1] > LOST_AFTER_S:
                _lost(prog, peer, f"no heartbeat for {LOST_AFTER_S:g} s", resume_hint)
        time.sleep(BEAT_S)


def _lost(prog: str, peer: str, why: str, resume_hint: Callable[[], str]) -> None:
    print(
        f"{prog}: stopped: process {peer} of this run was lost ({why}); {resume_hint()}",
        file=sys.stderr,
        flush=True,
    )
    os._exit(1)  # the main thread may be blocked in a collective that will never complete
