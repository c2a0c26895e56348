"""Helper processes the daemon owns (the face-tracking workers, the phone recogniser): how they start and stop.

Both are spawned, not forked: the daemon runs threads, and a forked child would
inherit the locks they hold.  Both take ``None`` down their pipe as the word to
end, and are stopped the same way: that word, then SIGTERM, then SIGKILL, each
given ``STOP_TIMEOUT_S``, so a stop never waits without bound.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

SPAWN = multiprocessing.get_context("spawn")
STOP_TIMEOUT_S = 5.0


def stop_worker(proc: BaseProcess | None, conn: Connection | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """End ``proc``: ``None`` down ``conn`` (if it still listens), then terminate, then kill; close ``conn``."""
    if conn is not None:
        try:
            conn.send(None)
        except OSError:
            pass
    if proc is not None:
        proc.join(timeout_s)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout_s)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if conn is not None:
        conn.close()
