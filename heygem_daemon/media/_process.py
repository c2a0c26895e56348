"""One owned ffmpeg/ffprobe process: started, drained and always stopped.

The pattern follows imageio-ffmpeg's ``read_frames``: the caller wraps its use
in ``try/finally: proc.stop()``; stderr is drained by a thread (a full stderr
pipe would block ffmpeg forever) and its tail goes into our error messages;
each process gets its own session so a terminal's Ctrl-C or a signal sent to
the daemon's group is ours to forward, not ffmpeg's to act on.
"""

from __future__ import annotations

import collections
import subprocess
import threading
from typing import IO, Sequence

import structlog

log = structlog.get_logger()

#: lines of stderr kept for error messages (ffmpeg can print megabytes)
STDERR_TAIL_LINES = 40
#: how long a terminated ffmpeg may take before it is killed
STOP_GRACE_S = 3.0


class OwnedProcess:
    """A started process whose stderr is drained and whose end we control."""

    def __init__(self, args: Sequence[str], *, stdin: bool = False, stdout: bool = True) -> None:
        self.args = list(args)
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            bufsize=0,
            start_new_session=True,
        )
        try:
            self._drain = threading.Thread(
                target=self._drain_stderr, name=f"ffmpeg-stderr-{self.proc.pid}", daemon=True
            )
            self._drain.start()
        except BaseException:
            self._kill()
            raise

    @property
    def stdin(self) -> IO[bytes]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def stderr_tail(self) -> str:
        """The last lines ffmpeg wrote to stderr (all of them once it has ended)."""
        if self.proc.returncode is not None:
            self._drain.join(timeout=STOP_GRACE_S)
        return "\n".join(self._tail).strip()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for a normal end; the stderr thread is joined too."""
        code = self.proc.wait(timeout=timeout)
        self._drain.join(timeout=STOP_GRACE_S)
        return code

    def stop(self) -> None:
        """Terminate, wait, kill: afterwards the process and its thread are gone."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            _close_quietly(pipe)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._kill()
        self._drain.join(timeout=STOP_GRACE_S)
        _close_quietly(self.proc.stderr)

    def _kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def _drain_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        try:
            for raw in iter(stream.readline, b""):
                self._tail.append(raw.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            # the pipe was closed under us by stop(); nothing more to read
            return


def _close_quietly(pipe: IO[bytes] | None) -> None:
    if pipe is None:
        return
    try:
        pipe.close()
    except OSError:
        # ffmpeg already gone: a broken pipe on flush is expected here
        pass
