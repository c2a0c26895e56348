"""The daemon: wiring, the main loop, signals and systemd notifications.

Signal handlers only set flags; the loop acts (STYLE lesson 4).  The first
SIGTERM/SIGINT stops taking jobs and lets the current video finish until
``stop_timeout_s``, after which it is checkpointed (left claimed, resumed on the
next start); a second signal stops at once.  ``iteration(now)`` is one pass of
the loop, callable from tests.

No stop waits without bound: once the job should have stopped (forced, or the
grace spent) it gets ``FORCED_STOP_S`` to end; then its ffmpeg processes are
killed, and a job thread that still does not end is left behind (logged; the
job stays claimed and is resumed on the next start).
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .engines.base import EngineConfig
from .engines.registry import EngineRegistry
from .errors import HeygemError, OutboxUnavailableError, StopRequested
from .executors import create_executor
from .intake.claim import Claim, Claimer
from .intake.fstype import is_network_filesystem
from .intake.watcher import InboxWatcher
from .fsutil import remove_atomic_temps
from .jobs.runner import JobRunner
from .jobs.scheduler import Scheduler
from .logging import get_logger
from .runtime import configure_runtime
from .media import kill_owned
from .sdnotify import Notifier
from .settings import Settings
from .status import JobStatus, StatusBoard

log = get_logger()

#: how long a job that must stop (forced, or its grace spent) may take before its ffmpeg is killed
FORCED_STOP_S = 12.0
#: how long the job thread gets after that kill, and after its outcome is in
END_JOIN_S = 5.0


def engine_config(settings: Settings) -> EngineConfig:
    """What every engine is made with: the daemon's device, model paths and cache."""
    return EngineConfig(
        device=settings.device,
        models={"wav2lip": settings.models.wav2lip, "phonemes": settings.models.phonemes},
        cache_dir=settings.cache_path,
    )


@dataclass
class StopFlags:
    """Set by signal handlers, read by the loop and by the running job."""

    clock: Callable[[], float] = time.monotonic
    requested_at: float | None = None
    forced: bool = False
    forced_at: float | None = None
    grace_s: float = 60.0

    def request(self) -> None:
        if self.requested_at is None:
            self.requested_at = self.clock()
        elif not self.forced:
            self.forced, self.forced_at = True, self.clock()

    @property
    def stopping(self) -> bool:
        return self.requested_at is not None

    def check(self) -> None:
        """Called between batches: raise when the current work must be checkpointed now."""
        if self.forced or (self.requested_at is not None and self.clock() - self.requested_at > self.grace_s):
            raise StopRequested()

    def time_left(self, bound_s: float) -> float:
        """Seconds until the running job is ``bound_s`` past the moment ``check`` began raising."""
        if self.requested_at is None:
            return float("inf")
        since = self.requested_at + self.grace_s
        if self.forced_at is not None:
            since = min(since, self.forced_at)
        return max(0.0, since + bound_s - self.clock())


@dataclass
class _Running:
    claim: Claim
    thread: threading.Thread
    outcome: list = field(default_factory=list)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        handle_signals: bool = True,
        extra_engines: dict[str, str] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.stop = StopFlags(grace_s=settings.stop_timeout_s)
        self._handle_signals = handle_signals
        self.notifier = notifier or Notifier.from_environ()
        self.claimer = Claimer(settings.inbox)
        self.watcher = InboxWatcher(
            settings.inbox,
            settle_seconds=settings.settle_seconds,
            incomplete_timeout_s=settings.incomplete_timeout_s,
            use_inotify=settings.polling == "auto" and not is_network_filesystem(settings.inbox),
            max_toml_bytes=settings.limits.max_job_toml_bytes,
        )
        self.scheduler = Scheduler(settings.inbox, settings.state_path, max_toml_bytes=settings.limits.max_job_toml_bytes)
        self.board = StatusBoard(settings.outbox, settings.state_path, self.claimer.host)
        engines = {**settings.engines, **(extra_engines or {})}
        self.engines = EngineRegistry(engine_config(settings), engines)
        self.runner = JobRunner(settings, self.engines, self.board.running_update, self.stop.check, self.claimer.host,
                                executor=create_executor(settings, engines))
        self._running: _Running | None = None
        self._deferred: dict[str, float] = {}  # claim name → retry time
        self._retry_errors: dict[str, str] = {}  # claim name → why it waits
        self._last_heartbeat = 0.0
        self.published: list[Path | None] = []
        self._stop_announced = False

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        for folder in (self.settings.inbox, self.settings.outbox, self.settings.staging_path):
            folder.mkdir(parents=True, exist_ok=True)
        self.claimer.ensure_dirs()
        self.claimer.sweep(self.settings.lease_seconds)
        self.settings.state_path.mkdir(parents=True, exist_ok=True)
        # status.json and the queue's temp files from a kill mid-write; a minute old means
        # no writer (another host sharing the outbox included) is still writing them
        for folder in (self.settings.outbox, self.settings.state_path):
            remove_atomic_temps(folder, older_than_s=60.0)
        configure_runtime(self.settings)
        self.watcher.start()
        self._load_models()
        if self._handle_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        log.info("daemon_started", inbox=str(self.settings.inbox), outbox=str(self.settings.outbox),
                 host=self.claimer.host, engine=self.settings.default_engine, device=self.settings.device)
        self.notifier.ready("watching " + str(self.settings.inbox))

    def _load_models(self) -> None:
        """Create the default engine (and one face tracker) before READY: models stay
        resident, so the first job does not pay for loading them (logged: engine_created)."""
        name = self.settings.default_engine
        self.notifier.status(f"loading the {name} engine")
        try:
            self.engines.get(name)
        except HeygemError as exc:
            # not fatal: jobs for other engines can run; jobs for this one fail with this reason
            log.error("engine_unavailable", engine=name, error=str(exc))
        self.runner.executor.prepare(name)

    def run(self, until: Callable[["Daemon"], bool] | None = None) -> int:
        self.start()
        try:
            while not self._should_exit(until):
                if self.stop.stopping:
                    self._announce_stop()
                self.iteration(time.time())
                self._sleep()
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        self._announce_stop()
        if self._running is not None:
            self.stop.request()
            self._join_job(self._running)
            self._collect()
        self.watcher.stop()
        self.runner.executor.close()
        self.board.write()
        log.info("daemon_stopped")

    def _join_job(self, running: _Running) -> None:
        """Bounded: the stop's time, then kill the ffmpeg processes it may hang on, then give up."""
        running.thread.join(self.stop.time_left(FORCED_STOP_S))
        if not running.thread.is_alive():
            return
        log.warning("job_stop_hung", job=running.claim.job, ffmpeg_killed=kill_owned())
        running.thread.join(END_JOIN_S)
        if running.thread.is_alive():
            log.error("job_thread_abandoned", job=running.claim.job)

    def _should_exit(self, until) -> bool:
        if self.stop.stopping:
            running = self._running
            # a job stuck past its stop's bound is dealt with by shutdown (_join_job)
            return running is None or not running.thread.is_alive() or self.stop.time_left(FORCED_STOP_S) == 0.0
        return until is not None and until(self)

    def _on_signal(self, signum: int, frame) -> None:
        self.stop.request()
        self.watcher.wake.set()

    def _announce_stop(self) -> None:
        """Tell systemd we are stopping and how long finishing the current video may take."""
        if self._stop_announced:
            return
        self._stop_announced = True
        log.info("daemon_stopping", running=self._running.claim.job if self._running else None,
                 grace_s=self.settings.stop_timeout_s)
        self.notifier.stopping("stopping: finishing the current video")
        if self._running is not None:
            self.notifier.extend_timeout(int((self.settings.stop_timeout_s + 30) * 1_000_000))

    def _sleep(self) -> None:
        interval = self.settings.poll_interval
        watchdog = self.notifier.watchdog_interval()
        if watchdog:
            interval = min(interval, watchdog)
        if self._running is not None:
            interval = min(interval, 0.5)
        self.watcher.wake.wait(interval)
        self.watcher.wake.clear()

    # -- one pass -------------------------------------------------------------------------------
    def iteration(self, now: float) -> None:
        scan = self.watcher.scan(now)
        self.scheduler.update(scan.ready)
        self.scheduler.prune({j.name for j in scan.ready} | set(scan.waiting))
        self._collect()
        self._heartbeat(now)
        claim = None
        if self._running is None and not self.stop.stopping:
            # another host's litter is only provably orphaned once it is old: look again now and then
            self.claimer.sweep(self.settings.lease_seconds, now)
            claim = self._next_claim(now)
        queued = [JobStatus(j.name, "queued", f"priority {j.priority}") for j in self.scheduler.ordered()]
        self.board.set_inbox(scan.waiting, queued, scan.problem)
        # launch only after the queue shown no longer holds the claimed job: the job
        # thread writes status.json at once, and must not list it as queued and running
        if claim is not None:
            self._launch(claim)
        self.board.write()
        self.notifier.watchdog()
        self.notifier.status(self._status_line(len(queued), len(scan.waiting)))

    def _status_line(self, queued: int, waiting: int) -> str:
        running = f"running {self._running.claim.job}" if self._running else "idle"
        line = f"{running}; {queued} queued; {waiting} arriving"
        # a full outbox cannot show this on status.json: systemctl status still can
        retrying = [self._retry_errors[n] for n in self._deferred if n in self._retry_errors]
        if retrying:
            line += f"; {len(retrying)} waiting to retry: {retrying[-1]}"
        return line

    def _heartbeat(self, now: float) -> None:
        if self._running is not None and now - self._last_heartbeat >= self.settings.heartbeat_seconds:
            self._running.claim.heartbeat()
            self._last_heartbeat = now

    def _next_claim(self, now: float) -> Claim | None:
        for claim in self.claimer.existing():
            if claim.host == self.claimer.host and claim.pid == self.claimer.pid:
                if self._deferred.get(claim.name, 0.0) <= now:
                    return claim
        for old in self.claimer.adoptable(self.settings.lease_seconds, now):
            adopted = self.claimer.adopt(old)
            if adopted is not None:
                return adopted
        for job in self.scheduler.ordered():
            claim = self.claimer.claim(job.name, priority=job.priority, first_seen=job.arrived)
            self.scheduler.taken(job.name)
            self.watcher.forget(job.name)
            if claim is not None:
                return claim
        return None

    def _launch(self, claim: Claim) -> None:
        running = _Running(claim, threading.Thread(target=lambda: None))
        running.thread = threading.Thread(target=self._run_job, args=(running,), name=f"job-{claim.job}", daemon=True)
        self._running = running
        self._last_heartbeat = 0.0
        self._deferred.pop(claim.name, None)
        self._retry_errors.pop(claim.name, None)
        running.thread.start()

    def _run_job(self, running: _Running) -> None:
        try:
            running.outcome.append(("published", self.runner.run(running.claim)))
        except StopRequested:
            running.outcome.append(("stopped", None))
        except OutboxUnavailableError as exc:
            running.outcome.append(("retry", exc))
        except Exception as exc:  # noqa: BLE001 -- a bug fails this job, not the daemon
            log.exception("job_crashed", job=running.claim.job)
            try:
                running.outcome.append(("published", self.runner.fail(running.claim, f"Internal error: {exc}")))
            except Exception as again:  # noqa: BLE001 -- e.g. outbox gone: keep the claim, retry later
                running.outcome.append(("retry", again))
        finally:
            # start the next job now, not at the next poll (200 small jobs would
            # otherwise idle up to poll_interval each)
            self.watcher.wake.set()

    def _collect(self) -> None:
        running = self._running
        if running is None or (running.thread.is_alive() and not running.outcome):
            return
        running.thread.join(END_JOIN_S)  # the outcome is in: the thread is ending
        self._running = None
        kind, value = running.outcome[0] if running.outcome else ("retry", None)
        job = running.claim.job
        if kind == "published":
            path = value.path
            self.published.append(path)
            self.board.finished(job, value.outcome.value, "published" if path else "already published",
                                path.name if path is not None else None)
        elif kind == "stopped":
            log.info("job_checkpointed", job=job)
            self.board.stopped(job)
        else:
            retry_at = time.time() + self.settings.retry_seconds
            self._deferred[running.claim.name] = retry_at
            self._retry_errors[running.claim.name] = f"{job}: {value}"
            log.warning("job_will_retry", job=job, error=str(value), in_s=self.settings.retry_seconds)
            self.board.running_update(job, f"waiting to retry: {value}")
