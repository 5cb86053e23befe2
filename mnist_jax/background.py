"""Background threads that yield the CPU to training.

A checkpoint or a log written while the next epoch trains competes with XLA's threads for the
host's cores; a worker that waits for a descheduled thread holds the whole epoch up. On Linux a
thread has a scheduling priority of its own (and the threads it starts inherit it), so these
threads run at a lower one: they use the cores training leaves idle, and get them whole once
training waits for them.
"""

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

NICENESS = 10  # added to the thread's niceness: far below training, still scheduled when idle


def yielding_thread(name: str) -> ThreadPoolExecutor:
    """A single background thread that runs below training's priority where the OS allows it
    (Linux); elsewhere a plain one."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=_lower_priority)


def _lower_priority() -> None:
    if sys.platform != "linux":  # elsewhere a thread id is no process id: never renice by it
        return
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + NICENESS)
    except OSError:  # a sandbox that forbids it: the thread runs at the usual priority
        pass
