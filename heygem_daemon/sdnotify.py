"""A tiny sd_notify(3) client: tell systemd we are ready, alive, or stopping.

Written by hand on purpose: the protocol is one datagram of ``KEY=value``
lines to the AF_UNIX socket named in ``$NOTIFY_SOCKET``, while the ``systemd``
Python binding needs the libsystemd headers and a C compiler to install.
That is not worth a C dependency for a datagram.

When the daemon is not started by systemd (``NOTIFY_SOCKET`` unset: a shell,
the tests, a container) every method is a quiet no-op, so callers never need
to ask.  A send that fails is logged and swallowed: a lost status line must
never stop a video from being rendered.

The watchdog ping belongs in the main loop, not in a helper thread: a thread
would keep pinging while the loop is stuck, and the watchdog exists to catch
exactly that.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

from .logging import get_logger

log = get_logger()

#: longest a single notification may block the caller
SEND_TIMEOUT_S = 1.0


class Notifier:
    """Sends sd_notify messages to one socket; a no-op without a socket.

    ``socket_path`` is what ``$NOTIFY_SOCKET`` holds: an absolute path, or
    ``@name`` for a socket in the abstract namespace.  ``watchdog_usec`` and
    ``watchdog_pid`` are ``$WATCHDOG_USEC`` / ``$WATCHDOG_PID``.
    """

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        watchdog_usec: int | None = None,
        watchdog_pid: int | None = None,
    ) -> None:
        self._address = _address(socket_path)
        self._watchdog_usec = watchdog_usec
        self._watchdog_pid = watchdog_pid
        self._sock: socket.socket | None = None
        # Workers report status while the main loop pings the watchdog.
        self._lock = threading.Lock()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Build from the variables systemd sets for the service.

        This is a protocol hand-over from systemd, not configuration, which is
        why it is the one place besides settings.py that looks at the
        environment.
        """
        env = os.environ if environ is None else environ
        return cls(
            env.get("NOTIFY_SOCKET") or None,
            watchdog_usec=_positive_int(env, "WATCHDOG_USEC"),
            watchdog_pid=_positive_int(env, "WATCHDOG_PID"),
        )

    @property
    def enabled(self) -> bool:
        """True when there is a socket to send to."""
        return self._address is not None

    # -- messages ----------------------------------------------------------------
    def ready(self, status: str | None = None) -> bool:
        """Start-up is complete (``Type=notify`` units stay "activating" until then)."""
        return self._send_fields(("READY", "1"), ("STATUS", status))

    def status(self, text: str) -> bool:
        """One line shown by ``systemctl status``."""
        return self._send_fields(("STATUS", text))

    def watchdog(self) -> bool:
        """Keep-alive ping; must come at least every :meth:`watchdog_interval`."""
        return self._send_fields(("WATCHDOG", "1"))

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun (sent on the first SIGTERM)."""
        return self._send_fields(("STOPPING", "1"), ("STATUS", status))

    def extend_timeout(self, usec: int, status: str | None = None) -> bool:
        """Ask for ``usec`` more microseconds before systemd's stop/start timeout fires.

        Used while the current video is being finished during a stop; repeat
        it before the extension runs out.  A non-positive ``usec`` sends
        nothing: the stop path must never crash on a clock that ran out.
        """
        if usec <= 0:
            return False
        return self._send_fields(("EXTEND_TIMEOUT_USEC", str(int(usec))), ("STATUS", status))

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of WatchdogSec), or None when off.

        ``WATCHDOG_PID`` names the process the watchdog is meant for; a child
        that inherited the variables must not ping on its parent's behalf.
        """
        if not self._watchdog_usec:
            return None
        if self._watchdog_pid is not None and self._watchdog_pid != os.getpid():
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def send(self, message: str) -> bool:
        """Send raw ``KEY=value`` lines; True when systemd got them, False otherwise."""
        if self._address is None:
            return False
        try:
            sock = self._socket()
            sock.sendto(message.encode("utf-8"), self._address)
        except OSError as err:
            log.warning("sd_notify_failed", error=str(err), message=message.split("\n", 1)[0])
            return False
        return True

    def close(self) -> None:
        """Release the socket; later sends open a new one."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------
    def _send_fields(self, *fields: tuple[str, str | None]) -> bool:
        lines = [f"{key}={_one_line(value)}" for key, value in fields if value is not None]
        return self.send("\n".join(lines))

    def _socket(self) -> socket.socket:
        # One socket for the daemon's lifetime: the watchdog pings every few
        # seconds and a socket per ping would be pointless churn.
        with self._lock:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # A full queue on a busy PID 1 blocks sendto(); a dropped
                # status line is better than a main loop that hangs.
                sock.settimeout(SEND_TIMEOUT_S)
                self._sock = sock
            return self._sock


def _address(socket_path: str | None) -> str | bytes | None:
    if not socket_path:
        return None
    if socket_path.startswith("@"):
        # Abstract namespace: a leading NUL byte instead of the '@'.
        return b"\0" + socket_path[1:].encode("utf-8")
    if socket_path.startswith("/"):
        return socket_path
    # vsock:... (systemd >= 253 in VMs) and relative paths are not for us.
    log.warning("sd_notify_socket_unsupported", notify_socket=socket_path)
    return None


def _positive_int(env: Mapping[str, str], key: str) -> int | None:
    raw = env.get(key)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        log.warning("systemd_variable_malformed", variable=key, value=raw)
        return None
    return value if value > 0 else None


def _one_line(value: str) -> str:
    # Each line of the datagram is one assignment: a newline inside a status
    # text would end it early and start a bogus key.
    return " ".join(value.splitlines())
