"""The daemon's loop in process: one iteration at a time on an injected clock, stops that never wait
without bound, outcomes that come from the runner."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from structlog.testing import capture_logs

from heygem_daemon import service
from heygem_daemon.intake.claim import Claim
from heygem_daemon.media._process import OwnedProcess
from heygem_daemon.sdnotify import Notifier
from heygem_daemon.service import Daemon, StopFlags, _Running
from heygem_daemon.settings import Settings


def test_stop_flags_time_left_counts_from_the_force_or_the_end_of_the_grace():
    """time_left(bound) runs from the earlier of the second request and the end of the grace."""
    now = [100.0]
    flags = StopFlags(clock=lambda: now[0], grace_s=60.0)
    assert float("inf") == flags.time_left(10.0)
    flags.request()
    assert 70.0 == flags.time_left(10.0)
    now[0] = 105.0
    flags.request()
    assert 10.0 == flags.time_left(10.0)
    now[0] = 200.0
    assert 0.0 == flags.time_left(10.0)


def test_shutdown_with_a_job_stuck_on_a_hung_process_kills_it_and_returns(tmp_path: Path, monkeypatch):
    """A job thread blocked reading from an owned process that never answers (as on a hung
    encoder): a forced shutdown waits FORCED_STOP_S, kills the owned processes, and returns;
    the thread ends once its read sees the end of the pipe."""
    monkeypatch.setattr(service, "FORCED_STOP_S", 0.3)
    settings = Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", cache_dir=tmp_path / "cache",
                        default_engine="builtin")
    daemon = Daemon(settings, handle_signals=False, notifier=Notifier.from_environ({}))
    (tmp_path / "outbox").mkdir()
    proc = OwnedProcess(["sleep", "600"])
    read_back: list[bytes] = []

    def job() -> None:
        try:
            read_back.append(proc.stdout.read())
        finally:
            proc.stop()

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    daemon._running = _Running(Claim(tmp_path, "stuck", "host", 1), thread)
    daemon.stop.request()
    daemon.stop.request()  # the second signal: forced
    started = time.monotonic()
    with capture_logs() as logs:
        daemon.shutdown()
    assert time.monotonic() - started < 0.3 + 3.0
    assert [b""] == read_back
    assert not thread.is_alive()
    [hung] = [e for e in logs if e["event"] == "job_stop_hung"]
    assert ("stuck", 1) == (hung["job"], hung["ffmpeg_killed"])


def test_the_status_page_takes_a_finished_jobs_state_from_the_runner(tmp_path: Path):
    """The runner returns how the job ended (JobOutcome): the page shows 'partial' without the
    daemon reading report.json back (here there is none to read)."""
    from heygem_daemon.jobs.report import JobOutcome
    from heygem_daemon.jobs.runner import Published

    settings = Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", cache_dir=tmp_path / "cache")
    (tmp_path / "outbox").mkdir()
    daemon = Daemon(settings, handle_signals=False, notifier=Notifier.from_environ({}))
    thread = threading.Thread(target=lambda: None)
    thread.start()
    running = _Running(Claim(tmp_path, "half", "host", 1), thread)
    running.outcome.append(("published", Published(tmp_path / "outbox" / "half", JobOutcome.PARTIAL)))
    daemon._running = running
    daemon._collect()
    [row] = daemon.board.snapshot()["recent"]
    assert ("half", "partial", "half") == (row["job"], row["state"], row["outbox_name"])
    assert [tmp_path / "outbox" / "half"] == daemon.published


def _loop_daemon(tmp_path: Path) -> Daemon:
    """A daemon driven by the test: no signal handlers, no watcher thread, no systemd, the paint engine."""
    settings = Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", cache_dir=tmp_path / "cache",
                        default_engine="paint", settle_seconds=30.0,
                        engines={"paint": "tests.support.paint_engine:PaintEngine"})
    for folder in (settings.inbox, settings.outbox):
        folder.mkdir(parents=True)
    daemon = Daemon(settings, handle_signals=False, notifier=Notifier.from_environ({}))
    daemon.claimer.ensure_dirs()
    return daemon


def _drop(inbox: Path, name: str, media_dir: Path, *, ready: bool) -> None:
    import subprocess

    build = inbox.parent / f".build-{name}"
    build.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media_dir / "face_2.mp4"), "-t", "1", "-an",
                    "-c:v", "copy", str(build / "face.mp4")], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:d=1", str(build / "voice.wav")],
                   check=True)
    if ready:
        (build / "READY").touch()
    build.rename(inbox / name)


def test_one_iteration_claims_a_ready_job_and_the_next_collects_it(tmp_path: Path, media_dir: Path):
    """A job with READY is claimed and started by a single iteration(now); once its thread has
    ended, the next iteration publishes it: outbox folder, status page, and the daemon's list."""
    daemon = _loop_daemon(tmp_path)
    _drop(daemon.settings.inbox, "one", media_dir, ready=True)
    now = time.time()

    daemon.iteration(now)

    running = daemon._running
    assert running is not None and "one" == running.claim.job
    assert [] == [p.name for p in daemon.settings.inbox.iterdir() if not p.name.startswith(".")]
    running.thread.join(120)
    assert not running.thread.is_alive()

    daemon.iteration(now + 1.0)

    assert daemon._running is None
    assert [daemon.settings.outbox / "one"] == daemon.published
    assert (daemon.settings.outbox / "one" / "face_voice.mp4").is_file()
    [row] = daemon.board.snapshot()["recent"]
    assert ("one", "done") == (row["job"], row["state"])
    daemon.shutdown()


def test_a_job_without_ready_waits_for_the_injected_clock_to_pass_its_settle_time(tmp_path: Path, media_dir: Path):
    """No READY marker: iterations within settle_seconds (on the clock the test passes in, no
    sleeping) leave the job in the inbox; the first one past it claims the job."""
    daemon = _loop_daemon(tmp_path)
    _drop(daemon.settings.inbox, "slow", media_dir, ready=False)
    now = time.time()

    daemon.iteration(now)
    daemon.iteration(now + 29.0)
    assert daemon._running is None

    daemon.iteration(now + 31.0)

    assert daemon._running is not None and "slow" == daemon._running.claim.job
    daemon.shutdown()
