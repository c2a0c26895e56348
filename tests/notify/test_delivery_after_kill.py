"""At least once, through the real daemon: a job's webhook survives a SIGKILL between the publish
and the delivery, and a receiver that drops duplicates by X-Heygem-Delivery takes it exactly once.

The daemon is a real subprocess (the test paint engine, so it starts in seconds), the receiver a
real HTTP server on 127.0.0.1 written as integrators write one: it acts on a delivery id the first
time it sees it and ignores it after.  The job fails validation (an unknown key), so it is
published at once and the test needs no media; a failed job takes the same publish path.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.daemon_wait import wait_for
from tests.support.live_daemon import LiveDaemon

JOB = "Quarterly update"

pytestmark = pytest.mark.slow


@dataclass
class Delivered:
    delivery_id: str
    event: str
    body: dict


@dataclass
class DedupReceiver:
    """A webhook receiver that de-duplicates; ``hold_first`` keeps the first request unanswered
    (it has been taken and acted on, but the sender never hears so) until ``release`` is set."""

    port: int = 0
    hold_first: bool = False
    raw: list[Delivered] = field(default_factory=list)
    accepted: list[Delivered] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "DedupReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                got = Delivered(self.headers["X-Heygem-Delivery"], self.headers["X-Heygem-Event"], json.loads(body))
                receiver.raw.append(got)
                if got.delivery_id not in {d.delivery_id for d in receiver.accepted}:
                    receiver.accepted.append(got)
                if receiver.hold_first and len(receiver.raw) == 1:
                    receiver.held.set()
                    receiver.release.wait(30)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender was killed while we held its request

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/heygem"


class Daemon(LiveDaemon):
    """The daemon as systemd runs it, one process per start; ``kill`` is SIGKILL."""

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(root / "daemon.toml", root / "daemon.log", root / "daemon.log", {})
        self.root, self.port = root, port
        #: how many times it was started: each start logs daemon_started once
        self.starts = 0
        self._write_config()

    @property
    def spool(self) -> Path:
        return self.root / "state" / "notify"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def _write_config(self) -> None:
        self.config.write_text("\n".join([
            f'inbox = "{self.root / "inbox"}"', f'outbox = "{self.outbox}"',
            f'state_dir = "{self.root / "state"}"', f'cache_dir = "{self.root / "cache"}"',
            'default_engine = "paint"', "settle_seconds = 0.5", "poll_interval = 0.2",
            "[engines]", 'paint = "tests.support.paint_engine:PaintEngine"',
            "[notify.webhook]", f'url = "http://127.0.0.1:{self.port}/hooks/heygem"',
            "timeout_s = 20.0", "attempts = 5", "backoff_s = 0.5", ""]), encoding="utf-8")

    def start(self) -> "Daemon":
        self.starts += 1
        super().start()
        return self

    def ready(self) -> bool:
        """This start has logged daemon_started (the log holds every earlier start's too)."""
        return sum(e["event"] == "daemon_started" for e in self.events()) >= self.starts

    def spooled(self) -> list[dict]:
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.spool.glob("*.json"))]


@pytest.fixture
def daemon(tmp_path: Path):
    """A daemon on fresh folders, restartable; never left running."""
    made = Daemon(tmp_path, _free_port())
    (tmp_path / "inbox").mkdir()
    yield made
    made.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _drop_job(inbox: Path) -> None:
    """A job that fails validation (an unknown key): published at once, announced as job.failed."""
    build = inbox.parent / ".build"
    build.mkdir()
    (build / "voice.wav").write_bytes(b"not read")
    (build / "job.toml").write_text('vidoes = ["a.mp4"]\n', encoding="utf-8")
    (build / "READY").touch()
    build.rename(inbox / JOB)


def test_a_kill_while_the_receiver_holds_the_first_post_is_followed_by_one_event_after_dedup(daemon):
    """The receiver took the POST but the daemon was SIGKILLed before the answer: the restarted
    daemon sends it again with the same X-Heygem-Delivery, the receiver drops the copy; the spool
    is empty afterwards and the outbox holds the job once."""
    with DedupReceiver(port=daemon.port, hold_first=True) as receiver:
        daemon.start()
        _drop_job(daemon.root / "inbox")
        assert receiver.held.wait(60), daemon.log()
        assert (daemon.outbox / JOB / "report.json").is_file()  # published before anything was sent
        [record] = daemon.spooled()
        daemon.kill()
        receiver.release.set()
        daemon.start()
        wait_for(lambda: len(receiver.raw) >= 2 and not daemon.spooled(), 60, daemon.log)
    assert [record["id"], record["id"]] == [d.delivery_id for d in receiver.raw]
    [event] = receiver.accepted
    assert ("job.failed", JOB, JOB, "failed") == (event.event, event.body["job"], event.body["outbox_folder"],
                                                  event.body["status"])
    assert [JOB] == sorted(p.name for p in daemon.outbox.iterdir() if not p.name.startswith((".", "status")) and
                           p.name != "index.html")


def test_a_kill_right_after_the_publish_with_the_receiver_down_delivers_after_the_restart(daemon):
    """Nobody listens when the job is published; SIGKILL as soon as its folder is in the outbox.
    The delivery is in the spool already (written before the publish rename, with the id it keeps),
    and the next start sends it to the receiver, now up: one event, with that id."""
    daemon.start()
    _drop_job(daemon.root / "inbox")
    wait_for(lambda: (daemon.outbox / JOB / "report.json").is_file(), 60, daemon.log)
    daemon.kill()
    [record] = daemon.spooled()
    assert ("webhook", JOB) == (record["channel"], record["event"]["job"])
    with DedupReceiver(port=daemon.port) as receiver:
        daemon.start()
        wait_for(lambda: receiver.accepted and not daemon.spooled(), 60, daemon.log)
        time.sleep(0.5)  # nothing more arrives
    assert {record["id"]} == {d.delivery_id for d in receiver.raw}
    assert [(record["id"], "job.failed")] == [(d.delivery_id, d.event) for d in receiver.accepted]
