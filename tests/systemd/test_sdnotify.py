"""sd_notify client against real AF_UNIX datagram sockets."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from heygem_daemon import sdnotify
from heygem_daemon.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket at a filesystem path, as systemd's /run/systemd/notify."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


@pytest.fixture
def abstract_listener() -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket in the abstract namespace, named '@...' in NOTIFY_SOCKET."""
    name = f"heygem-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    yield "@" + name, sock
    sock.close()


def _received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_ready_status_watchdog_stopping_arrive_on_a_path_socket(listener: tuple[str, socket.socket]) -> None:
    """Each message reaches a real socket as the KEY=value lines systemd expects."""
    path, sock = listener
    with Notifier.from_environ({"NOTIFY_SOCKET": path}) as notifier:
        assert notifier.enabled
        assert notifier.ready()
        assert "READY=1" == _received(sock)
        assert notifier.status("2 jobs queued")
        assert "STATUS=2 jobs queued" == _received(sock)
        assert notifier.watchdog()
        assert "WATCHDOG=1" == _received(sock)
        assert notifier.stopping("finishing alice.mp4")
        assert "STOPPING=1\nSTATUS=finishing alice.mp4" == _received(sock)


def test_extend_timeout_sends_microseconds(listener: tuple[str, socket.socket]) -> None:
    """extend_timeout asks systemd for more time in whole microseconds."""
    path, sock = listener
    with Notifier(path) as notifier:
        assert notifier.extend_timeout(30_000_000)
        assert "EXTEND_TIMEOUT_USEC=30000000" == _received(sock)
        assert not notifier.extend_timeout(0)


def test_abstract_namespace_socket(abstract_listener: tuple[str, socket.socket]) -> None:
    """A NOTIFY_SOCKET starting with '@' is an abstract-namespace address."""
    name, sock = abstract_listener
    with Notifier.from_environ({"NOTIFY_SOCKET": name}) as notifier:
        assert notifier.ready("idle")
        assert "READY=1\nSTATUS=idle" == _received(sock)


def test_status_with_newlines_stays_one_assignment(listener: tuple[str, socket.socket]) -> None:
    """A newline inside a status text cannot start a bogus second key."""
    path, sock = listener
    with Notifier(path) as notifier:
        notifier.status("line one\nREADY=1")
        assert "STATUS=line one READY=1" == _received(sock)


def test_without_notify_socket_everything_is_a_noop() -> None:
    """Outside systemd every call returns False quietly and opens no socket."""
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    with capture_logs() as logs:
        results = [notifier.ready(), notifier.status("x"), notifier.watchdog(), notifier.stopping()]
    assert [False, False, False, False] == results
    assert [] == logs
    assert notifier.watchdog_interval() is None
    assert notifier._sock is None


def test_send_failure_is_logged_not_raised(tmp_path: Path) -> None:
    """A socket that is gone makes send() return False and log a warning."""
    notifier = Notifier(str(tmp_path / "no-such-socket"))
    with capture_logs() as logs:
        assert not notifier.ready()
    notifier.close()
    assert ["sd_notify_failed"] == [entry["event"] for entry in logs]
    assert "warning" == logs[0]["log_level"]


def test_unsupported_socket_address_disables_notifications() -> None:
    """A relative path or vsock address is refused with a log line, not an error."""
    with capture_logs() as logs:
        notifier = Notifier("vsock:2:1234")
    assert not notifier.enabled
    assert "sd_notify_socket_unsupported" == logs[0]["event"]


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    """WatchdogSec=60 means a ping every 30 s, for this process only."""
    env = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}
    assert 30.0 == Notifier.from_environ(env).watchdog_interval()
    assert 30.0 == Notifier.from_environ({**env, "WATCHDOG_PID": ""}).watchdog_interval()
    assert Notifier.from_environ({**env, "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_interval() is None
    assert Notifier.from_environ({**env, "WATCHDOG_USEC": "soon"}).watchdog_interval() is None


def test_full_socket_queue_drops_the_message_instead_of_hanging(
    listener: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When nobody reads the socket, a send gives up after the timeout and says so."""
    monkeypatch.setattr(sdnotify, "SEND_TIMEOUT_S", 0.05)
    path, _ = listener
    notifier = Notifier(path)
    with capture_logs() as logs:
        sent = 0
        while sent < 10_000 and notifier.status(f"message {sent}"):
            sent += 1
    notifier.close()
    assert 0 < sent < 10_000
    assert ["sd_notify_failed"] == [entry["event"] for entry in logs]
