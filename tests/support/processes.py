"""Process helpers shared by the tests."""

from __future__ import annotations

import os


def dead_pid() -> int:
    """A pid no process has right now (for leases of a writer that is gone)."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1
