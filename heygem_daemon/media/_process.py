"""One owned ffmpeg/ffprobe process: started, drained and always stopped.

The pattern follows imageio-ffmpeg's ``read_frames``: the caller wraps its use
in ``try/finally: proc.stop()``; stderr is drained by a thread (a full stderr
pipe would block ffmpeg forever) and its tail goes into our error messages;
each process gets its own session so a terminal's Ctrl-C or a signal sent to
the daemon's group is ours to forward, not ffmpeg's to act on.

Every live process is also listed here, so a stop that finds a thread stuck on
one (a hung encoder holding a pipe write) can kill them all: ``kill_owned()``.
"""

from __future__ import annotations

import collections
import fcntl
import io
import subprocess
import threading
from typing import IO, Sequence, cast

from ..logging import get_logger

log = get_logger()

#: lines of stderr kept for error messages (ffmpeg can print megabytes)
STDERR_TAIL_LINES = 40
#: how long a terminated ffmpeg may take before it is killed
STOP_GRACE_S = 3.0

#: every OwnedProcess not yet stopped (for kill_owned)
_LIVE: set["OwnedProcess"] = set()
_LIVE_LOCK = threading.Lock()


def kill_owned() -> int:
    """SIGKILL every owned process still running; returns how many were signalled.

    For a stop that must not wait: a thread blocked reading from or writing to one
    of them gets end-of-file or a broken pipe and ends; its owner still calls
    ``stop()`` to reap the process and join its stderr thread.
    """
    with _LIVE_LOCK:
        live = list(_LIVE)
    return sum(owned.kill() for owned in live)


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
        with _LIVE_LOCK:
            _LIVE.add(self)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                _widen(pipe.fileno())
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
    def stdout(self) -> io.FileIO:
        """The unbuffered pipe (``bufsize=0``): ``readinto`` fills our arrays without a copy."""
        assert self.proc.stdout is not None
        return cast(io.FileIO, self.proc.stdout)

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

    def kill(self) -> bool:
        """SIGKILL now, from any thread, leaving pipes and reaping to ``stop()``; False if it had ended."""
        if self.proc.poll() is not None:
            return False
        try:
            self.proc.kill()
        except ProcessLookupError:
            return False
        log.warning("ffmpeg_killed", pid=self.proc.pid, program=self.args[0])
        return True

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
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def _kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        with _LIVE_LOCK:
            _LIVE.discard(self)

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


#: frames cross the pipes whole (1.4 MB at 720p in yuv420p); the default 64 KiB pipe made each
#: frame cost two dozen wake-ups of reader and writer
PIPE_BYTES = 1024 * 1024


def _widen(fd: int) -> None:
    """Grow a pipe to ``PIPE_BYTES`` (Linux; up to /proc/sys/fs/pipe-max-size): a frame or most of one fits."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except OSError:
        pass  # over the system's limit, or not a pipe: the default size works, only slower
