"""Worker processes that end with the process that started them.

Runs spread work over spawned processes (SNR points, rate matching); a worker must not outlive a run
that was killed, or it would hold memory and a core forever.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["exit_with_parent"]


def exit_with_parent() -> None:
    """End this worker process when the process that started it dies (even by SIGKILL).

    On Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``); everywhere a
    daemon thread also checks once a second whether the parent is gone (the worker is then adopted by
    another process) and exits. Without this, a killed run left its idle workers waiting forever.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="semcom-exit-with-parent", daemon=True).start()
