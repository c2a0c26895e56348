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
from .housekeeping.keeper import Area, Housekeeper
from .intake.claim import Claim, Claimer
from .intake.fstype import is_network_filesystem
from .intake.watcher import InboxWatcher, ScanResult
from .fsutil import remove_atomic_temps
from .jobs.folder import peek_job_toml
from .jobs.publish import Permissions
from .jobs.runner import JobRunner
from .jobs.scheduler import QueuedJob, Scheduler
from .jobs.spec import check_addresses, split_by_domain
from .logging import get_logger
from .runtime import configure_runtime, decide_runtime
from .media import kill_owned
from .notify.announce import Announcer, send_spooled
from .notify.dispatcher import Dispatcher
from .notify.errors import NotifySpoolError
from .notify.spool import Spool
from .sdnotify import Notifier
from .settings import Settings
from .status import JobStatus, StatusBoard

log = get_logger()

#: how long a job that must stop (forced, or its grace spent) may take before its ffmpeg is killed
FORCED_STOP_S = 12.0
#: how long the job thread gets after that kill, and after its outcome is in
END_JOIN_S = 5.0


def engine_config(settings: Settings, videos_in_flight: int = 1) -> EngineConfig:
    """What every engine is made with: the daemon's device, model paths and cache, and how many
    videos it renders at once (``runtime.RuntimePlan.workers``)."""
    return EngineConfig(
        device=settings.device,
        models={"wav2lip": settings.models.wav2lip, "phonemes": settings.models.phonemes,
                "musetalk": settings.models.musetalk},
        cache_dir=settings.cache_path,
        videos_in_flight=videos_in_flight,
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
class Team:
    """One watched inbox with its outbox, defaults and status page (issue 14: a folder per team).

    Without ``[[teams]]`` the daemon has one, named "", made of the top-level settings."""

    name: str
    settings: Settings
    claimer: Claimer
    watcher: InboxWatcher
    scheduler: Scheduler
    board: StatusBoard
    runner: JobRunner
    announcer: Announcer
    deferred: dict[str, float] = field(default_factory=dict)  # claim name → retry time
    retry_errors: dict[str, str] = field(default_factory=dict)  # claim name → why it waits
    scan: ScanResult = field(default_factory=lambda: ScanResult([], {}))


@dataclass
class _Running:
    claim: Claim
    thread: threading.Thread
    outcome: list = field(default_factory=list)
    #: None: the first (or only) team
    team: Team | None = None
    #: job.toml's notify addresses in the allowed domains, read when the job was launched
    recipients: list[str] = field(default_factory=list)


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
        #: one wake-up for every team's watcher: the loop sleeps on it
        self.wake = threading.Event()
        engines = {**settings.engines, **(extra_engines or {})}
        #: videos in flight and threads per video, decided once ("auto" included); applied in start()
        self.runtime = decide_runtime(settings)
        self.engines = EngineRegistry(engine_config(settings, self.runtime.workers), engines)
        #: where every team's videos render (its trackers and face cache are shared by all teams)
        self.executor = create_executor(settings, engines, plan=self.runtime)
        self.dispatcher = Dispatcher(settings.notify.queue_size)
        #: every team's notifications, on disk from before a job is published until delivered
        self.spool = Spool(settings.state_path / "notify")
        named = [(t.name, settings.team_settings(t)) for t in settings.teams] or [("", settings)]
        self.teams = [self._team(name, team_settings) for name, team_settings in named]
        self.housekeeper = Housekeeper(
            [Area(t.settings.outbox, t.settings.retention, t.board.notice) for t in self.teams],
            cache_root=settings.cache_path, cache_max_bytes=settings.retention.cache_max_bytes,
            interval_s=settings.retention.interval_s)
        self._running: _Running | None = None
        self._last_heartbeat = 0.0
        self.published: list[Path | None] = []
        self._stop_announced = False

    def _team(self, name: str, settings: Settings) -> Team:
        claimer = Claimer(settings.inbox)
        watcher = InboxWatcher(
            settings.inbox,
            settle_seconds=settings.settle_seconds,
            incomplete_timeout_s=settings.incomplete_timeout_s,
            use_inotify=settings.polling == "auto" and not is_network_filesystem(settings.inbox),
            max_toml_bytes=settings.limits.max_job_toml_bytes,
        )
        watcher.wake = self.wake
        scheduler = Scheduler(settings.inbox, settings.state_path, max_toml_bytes=settings.limits.max_job_toml_bytes)
        board = StatusBoard(settings.outbox, settings.state_path, claimer.host, page=settings.status,
                            title=f"heygem-daemon: {name}" if name else None)
        runner = JobRunner(settings, self.engines, board.running_update, self.stop.check, claimer.host,
                           executor=self.executor)
        team = Team(name, settings, claimer, watcher, scheduler, board, runner,
                    Announcer(settings.notify, self.dispatcher, self.spool, team=name, report_failure=board.notice))
        runner.before_publish = lambda claim, staging, outbox_name, status: self._spool_notifications(
            team, claim, staging, outbox_name, status)
        return team

    # the first team's parts: with a single inbox these are the daemon's own, as before teams
    @property
    def claimer(self) -> Claimer:
        return self.teams[0].claimer

    @property
    def watcher(self) -> InboxWatcher:
        return self.teams[0].watcher

    @property
    def scheduler(self) -> Scheduler:
        return self.teams[0].scheduler

    @property
    def board(self) -> StatusBoard:
        return self.teams[0].board

    @property
    def runner(self) -> JobRunner:
        return self.teams[0].runner

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        for team in self.teams:
            self._start_team(team)
        configure_runtime(self.settings, self.runtime)
        for team in self.teams:
            team.watcher.start()
        self._load_models()
        self.spool.open()
        self.dispatcher.start()
        self._announce()  # what a killed or stopped daemon left undelivered
        self.housekeeper.start()
        if self._handle_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        for team in self.teams:
            log.info("daemon_started", inbox=str(team.settings.inbox), outbox=str(team.settings.outbox),
                     team=team.name or None, host=self.claimer.host, engine=team.settings.default_engine,
                     device=self.settings.device)
        self.notifier.ready("watching " + ", ".join(str(t.settings.inbox) for t in self.teams))

    def _start_team(self, team: Team) -> None:
        settings = team.settings
        # an unknown publish group stops the start, before any job could be published without it
        Permissions.from_settings(settings.publish)
        for folder in (settings.inbox, settings.outbox, settings.staging_path):
            folder.mkdir(parents=True, exist_ok=True)
        team.claimer.ensure_dirs()
        team.claimer.sweep(settings.lease_seconds)
        settings.state_path.mkdir(parents=True, exist_ok=True)
        # status.json and the queue's temp files from a kill mid-write; a minute old means
        # no writer (another host sharing the outbox included) is still writing them
        for folder in (settings.outbox, settings.state_path):
            remove_atomic_temps(folder, older_than_s=60.0)

    def _load_models(self) -> None:
        """Create each team's default engine (and one face tracker) before READY: models stay
        resident, so the first job does not pay for loading them (logged: engine_created)."""
        for name in dict.fromkeys(t.settings.default_engine for t in self.teams):
            self.notifier.status(f"loading the {name} engine")
            try:
                engine = self.engines.get(name)
                # an engine's helper processes start now too (the builtin engine's phone recogniser)
                getattr(engine, "warm_up", lambda: None)()
            except HeygemError as exc:
                # not fatal: jobs for other engines can run; jobs for this one fail with this reason
                log.error("engine_unavailable", engine=name, error=str(exc))
            self.executor.prepare(name)

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
        self.housekeeper.stop()
        for team in self.teams:
            team.watcher.stop()
            team.board.write()
        # deliveries not yet tried get one try; waiting retries stay spooled for the next start
        self.dispatcher.close()
        self.executor.close()
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
        self.wake.set()

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
        self.wake.wait(interval)
        self.wake.clear()

    # -- one pass -------------------------------------------------------------------------------
    def iteration(self, now: float) -> None:
        for team in self.teams:
            team.scan = team.watcher.scan(now)
            team.scheduler.update(team.scan.ready)
            team.scheduler.prune({j.name for j in team.scan.ready} | set(team.scan.waiting))
        self._collect()
        self._heartbeat(now)
        picked = None
        if self._running is None and not self.stop.stopping:
            # another host's litter is only provably orphaned once it is old: look again now and then
            for team in self.teams:
                team.claimer.sweep(team.settings.lease_seconds, now)
            picked = self._next_claim(now)
        queued = 0
        for team in self.teams:
            rows = [JobStatus(j.name, "queued", f"priority {j.priority}") for j in team.scheduler.ordered()]
            team.board.set_inbox(team.scan.waiting, rows, team.scan.problem)
            queued += len(rows)
        # launch only after the queue shown no longer holds the claimed job: the job
        # thread writes status.json at once, and must not list it as queued and running
        if picked is not None:
            self._launch(*picked)
        for team in self.teams:
            team.board.write()
        self.notifier.watchdog()
        self.notifier.status(self._status_line(queued, sum(len(t.scan.waiting) for t in self.teams)))

    def _status_line(self, queued: int, waiting: int) -> str:
        running = f"running {self._running.claim.job}" if self._running else "idle"
        line = f"{running}; {queued} queued; {waiting} arriving"
        # a full outbox cannot show this on status.json: systemctl status still can
        retrying = [t.retry_errors[n] for t in self.teams for n in t.deferred if n in t.retry_errors]
        if retrying:
            line += f"; {len(retrying)} waiting to retry: {retrying[-1]}"
        return line

    def _heartbeat(self, now: float) -> None:
        if self._running is not None and now - self._last_heartbeat >= self.settings.heartbeat_seconds:
            self._running.claim.heartbeat()
            self._last_heartbeat = now

    def _next_claim(self, now: float) -> tuple[Team, Claim] | None:
        """Our own claims first (resumed), then dead hosts' (adopted), then the queue of every
        team in one fair order: priority, then the oldest arrival, whichever team it is in."""
        for team in self.teams:
            for claim in team.claimer.existing():
                if claim.host == team.claimer.host and claim.pid == team.claimer.pid:
                    if team.deferred.get(claim.name, 0.0) <= now:
                        return team, claim
        for team in self.teams:
            for old in team.claimer.adoptable(team.settings.lease_seconds, now):
                adopted = team.claimer.adopt(old)
                if adopted is not None:
                    return team, adopted
        queue: list[tuple[QueuedJob, int]] = [(job, i) for i, t in enumerate(self.teams) for job in t.scheduler.ordered()]
        queue.sort(key=lambda item: (-item[0].priority, item[0].arrived, item[1], item[0].name))
        for job, index in queue:
            team = self.teams[index]
            claim = team.claimer.claim(job.name, priority=job.priority, first_seen=job.arrived)
            team.scheduler.taken(job.name)
            team.watcher.forget(job.name)
            if claim is not None:
                return team, claim
        return None

    def _launch(self, team: Team, claim: Claim) -> None:
        running = _Running(claim, threading.Thread(target=lambda: None), team=team,
                           recipients=self._job_recipients(team, claim))
        running.thread = threading.Thread(target=self._run_job, args=(running,), name=f"job-{claim.job}", daemon=True)
        self._running = running
        self._last_heartbeat = 0.0
        team.deferred.pop(claim.name, None)
        team.retry_errors.pop(claim.name, None)
        running.thread.start()

    def _job_recipients(self, team: Team, claim: Claim) -> list[str]:
        """job.toml's notify addresses that may be mailed.  Read now: the folder is gone once the
        job is published.  A wrong list fails the job's validation (jobs/spec.py) and mails nobody;
        addresses outside the allowed domains are said on the job's page (and in its log.jsonl)."""
        toml = peek_job_toml(claim.folder, team.settings.limits.max_job_toml_bytes) or {}
        asked = toml.get("notify")
        if not isinstance(asked, list) or not all(isinstance(a, str) for a in asked):
            return []
        try:
            addresses = check_addresses(asked)
        except HeygemError:
            return []
        allowed, refused = split_by_domain(addresses, team.settings.notify.email.allowed_domains)
        if refused:
            team.board.notice("notify", f"job '{claim.job}': no mail to {', '.join(refused)}: only "
                                        f"{', '.join(team.settings.notify.email.allowed_domains) or 'no'} "
                                        "domains may be mailed")
        return allowed

    def _run_job(self, running: _Running) -> None:
        runner = (running.team or self.teams[0]).runner
        try:
            running.outcome.append(("published", runner.run(running.claim)))
        except StopRequested:
            running.outcome.append(("stopped", None))
        except OutboxUnavailableError as exc:
            running.outcome.append(("retry", exc))
        except Exception as exc:  # noqa: BLE001 -- a bug fails this job, not the daemon
            log.exception("job_crashed", job=running.claim.job)
            try:
                running.outcome.append(("published", runner.fail(running.claim, f"Internal error: {exc}")))
            except Exception as again:  # noqa: BLE001 -- e.g. outbox gone: keep the claim, retry later
                running.outcome.append(("retry", again))
        finally:
            # start the next job now, not at the next poll (200 small jobs would
            # otherwise idle up to poll_interval each)
            self.wake.set()

    def _collect(self) -> None:
        running = self._running
        if running is None or (running.thread.is_alive() and not running.outcome):
            return
        running.thread.join(END_JOIN_S)  # the outcome is in: the thread is ending
        self._running = None
        kind, value = running.outcome[0] if running.outcome else ("retry", None)
        job = running.claim.job
        team = running.team or self.teams[0]
        if kind == "published":
            path = value.path
            self.published.append(path)
            team.board.finished(job, value.outcome.value, "published" if path else "already published",
                                path.name if path is not None else None)
            self._announce()
        elif kind == "stopped":
            log.info("job_checkpointed", job=job)
            team.board.stopped(job)
        else:
            retry_at = time.time() + self.settings.retry_seconds
            team.deferred[running.claim.name] = retry_at
            team.retry_errors[running.claim.name] = f"{job}: {value}"
            log.warning("job_will_retry", job=job, error=str(value), in_s=self.settings.retry_seconds)
            team.board.running_update(job, f"waiting to retry: {value}")

    def _spool_notifications(self, team: Team, claim: Claim, staging: Path, outbox_name: str, status: str) -> None:
        """Runs in the job thread right before the publish rename: the job's webhook and mail go
        to the spool (fsynced) first, so a kill after the rename cannot lose them."""
        running = self._running
        recipients = running.recipients if running is not None and running.claim.name == claim.name else []
        try:
            team.announcer.spool_job(staging, outbox_name, host=team.claimer.host, status=status,
                                     job_recipients=recipients)
        except OSError as exc:
            raise NotifySpoolError(f"The notification spool {self.spool.folder} cannot be written: "
                                   f"{exc.strerror or exc}.", hint="The job waits and is published once it can be.") from exc
        except Exception as exc:  # noqa: BLE001 -- a bug in a notification must not hold every job back
            log.exception("notify_crashed", job=claim.job)
            team.board.notice("notify", f"job '{claim.job}' could not be announced: {exc}")

    def _announce(self) -> None:
        """Queue what the spool holds for published jobs; never waits for the deliveries."""
        try:
            send_spooled(self.spool, self.dispatcher, {t.name: t.announcer for t in self.teams})
        except Exception as exc:  # noqa: BLE001 -- a notification must never stop the loop
            log.exception("notify_crashed")
            self.board.notice("notify", f"notifications could not be sent: {exc}")
