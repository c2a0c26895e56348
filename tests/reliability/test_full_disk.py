"""A full outbox disk: the job waits and retries, says so on the status page, loses nothing,
and completes once space is freed.  The outbox is a real 8 MB tmpfs."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from .conftest import drop_job, read_report, sha256, tiny_job, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def small_outbox(folders):
    """An 8 MB filesystem mounted on the test's outbox (tmpfs; needs root, as in CI).

    Request it before daemon_factory so the daemons are stopped before it is unmounted."""
    mount_point = folders[1]
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the outbox (needs root): {result.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path) -> Path:
    """Write a file until the filesystem is full; returns it (delete it to free the space)."""
    filler = folder / ".filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


@pytest.fixture
def notify_socket(tmp_path: Path):
    """A stand-in for systemd's notify socket: the test reads the STATUS= lines the daemon sends."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    lines: list[str] = []

    def received() -> list[str]:
        while True:
            try:
                lines.extend(sock.recv(65536).decode("utf-8", "replace").splitlines())
            except BlockingIOError:
                return lines

    yield str(path), received
    sock.close()


def _status(outbox: Path) -> dict:
    return json.loads((outbox / "status.json").read_text(encoding="utf-8"))


def test_full_outbox_makes_the_job_wait_and_it_completes_after_space_is_freed(small_outbox, daemon_factory,
                                                                              tiny_media, notify_socket):
    """Outbox full for 5 retries (> max_attempts): reported, claimed, sources kept; freed → published 'done'."""
    sock, received = notify_socket
    d = daemon_factory({"settle_seconds": 0.3, "poll_interval": 0.2, "retry_seconds": 0.3, "max_attempts": 2},
                       env={"NOTIFY_SOCKET": sock}).start()
    assert d.outbox == small_outbox
    files = tiny_job(tiny_media)
    digests = {name: sha256(path) for name, path in files.items()}
    filler = _fill(small_outbox)
    drop_job(d.inbox, "full", files)
    # status.json cannot be rewritten on a full disk; systemd's status line (and the log) say why
    wait_for(lambda: any("waiting to retry: full: The outbox disk is full" in l for l in received()), 60, d.log)
    wait_for(lambda: sum(e.get("event") == "job_will_retry" for e in d.events()) >= 5, 60, d.log)
    assert not (d.outbox / "full").exists()
    claimed = [p for p in (d.inbox / ".heygem" / "claimed").glob("full.*") if p.is_dir()]
    assert len(claimed) == 1 and claimed[0].is_dir()
    assert {n: sha256(claimed[0] / n) for n in files} == digests
    assert not any(e.get("event") == "job_crashed" for e in d.events())
    assert d.proc.poll() is None
    filler.unlink()
    out = d.wait_published("full", timeout=60)
    report = read_report(out)
    assert report["status"] == "done", report
    assert {n: sha256(out / "source" / n) for n in files} == digests
    assert list((d.outbox / ".staging").iterdir()) == []
    assert not list((d.inbox / ".heygem" / "claimed").iterdir())
    wait_for(lambda: any(r["job"] == "full" and r["state"] == "done" for r in _status(d.outbox)["recent"]), 10)


def test_outbox_filling_up_while_encoding_is_retried_not_failed(small_outbox, daemon_factory, tiny_media):
    """The encoder hits a full disk mid-video: the video is not recorded as failed; freed → job 'done'."""
    d = daemon_factory({"settle_seconds": 0.3, "poll_interval": 0.2, "retry_seconds": 0.5}).start()
    # 400 KB free: staging, logs and the copied sources fit, a lossless (crf 0) video does not
    filler = _fill(small_outbox)
    with open(filler, "r+b") as fh:
        fh.truncate(os.path.getsize(filler) - 400 * 1024)
    lossless = '[output]\ncrf = 0\npreset = "ultrafast"\n'
    drop_job(d.inbox, "squeezed", {**tiny_job(tiny_media), "job.toml": lossless})
    wait_for(lambda: any(e.get("event") == "job_will_retry" for e in d.events())
             or (d.outbox / "squeezed").exists(), 60, d.log)
    assert not (d.outbox / "squeezed").exists(), read_report(d.outbox / "squeezed")
    assert not any(e.get("event") == "video_failed" for e in d.events())
    filler.unlink()
    out = d.wait_published("squeezed", timeout=60)
    assert read_report(out)["status"] == "done"
