"""Running one claimed job from its folder to the outbox.

Audio is decoded and analysed once per job; each (video, audio) pair is an
isolated unit whose failure is recorded while its siblings go on.  Finished
outputs are committed in staging with a result record, so a job resumed after
a crash or a stop redoes only the videos that were not finished.
"""

from __future__ import annotations

import contextvars
import functools
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import structlog

from ..engines.base import AudioClip, Engine
from ..engines.registry import EngineRegistry
from ..errors import HeygemError, JobValidationError, OutboxUnavailableError, StopRequested
from ..logging import get_logger, job_sinks
from ..media.audio import decode_audio
from ..settings import Settings
from ..speech.curve import MouthCurve
from ..speech.loudness import loudness_curve
from ..fsutil import fsync_dir, write_atomic
from .claimed import NAME_NOT_UTF8, Claim, LeaseData
from .publish import DISK_FULL, Permissions, Staging, disk_full_error, publish, stage_sources
from .poster import cut_posters
from .report import AudioReport, JobOutcome, JobReport, OutputReport, error_text, now_iso
from .execution import VideoExecutor, VideoUnit
from .spec import JobPlan, OutputPair, load_job
from ..render.plan import PendingFeatures, VideoTask

log = get_logger()


class BeforePublish(Protocol):
    """Called right before the publish rename with the staged folder, the outbox name it will
    take and the job's status: the daemon spools the job's notifications there, so that one
    is on disk before anyone can see the job (notify/spool.py).  Raising keeps the job claimed."""

    def __call__(self, claim: Claim, staging: Path, outbox_name: str, status: str) -> None: ...


class Progress(Protocol):
    """Where the runner tells what a job is doing: the status page's running line."""

    def __call__(self, job: str, detail: str, progress: float | None = None) -> None: ...


@dataclass(frozen=True)
class Published:
    """What became of a job: its outbox folder and how it ended."""

    #: None: it had been published before a crash, and this run only removed the claim
    path: Path | None
    outcome: JobOutcome


@dataclass(frozen=True)
class AudioReady:
    """An audio decoded (its analysis by the job's engine may still be running): its videos can start."""

    clip: AudioClip
    #: the engine's analysis of it, computed beside the first videos (render/plan.py PendingFeatures)
    features: PendingFeatures
    #: the voice's speech-band loudness, which chooses each output's poster moment (render/moment.py);
    #: once per audio, not per video: a 10-minute voice takes about a second
    loudness: MouthCurve


@dataclass(frozen=True)
class AudioFailed:
    """An audio that could not be used: its videos fail with this reason."""

    error: str


PreparedAudio = AudioReady | AudioFailed


class VideoProgress:
    """A job's "video 3 of 8: 40%" line and overall fraction, with several videos in flight at
    once (workers > 1, a Ray cluster): the line names every video rendering now, and the
    fraction counts each one's own progress (not only the finished ones)."""

    def __init__(self, total: int, finished: int = 0) -> None:
        self.total = total
        self.finished = finished
        #: output index → fraction done, for the videos rendering now
        self._running: dict[int, float] = {}
        self._lock = threading.Lock()

    def update(self, index: int, fraction: float) -> tuple[str, float]:
        """Video ``index`` is ``fraction`` done: the status line and the job's fraction."""
        with self._lock:
            self._running[index] = fraction
            done, now = self.finished, list(self._running.values())
        which = f"video {done + 1}" if len(now) == 1 else f"videos {done + 1}–{done + len(now)}"
        return f"{which} of {self.total}: {int(sum(now) / len(now) * 100)}%", (done + sum(now)) / self.total

    def finish(self, index: int) -> None:
        with self._lock:
            self.finished += 1
            self._running.pop(index, None)


class JobRunner:
    def __init__(
        self,
        settings: Settings,
        engines: EngineRegistry,
        progress: Progress,
        check_stop: Callable[[], None],
        host: str,
        executor: VideoExecutor,
    ) -> None:
        self.settings = settings
        self.engines = engines
        #: (job, what it is doing now): the status page's running line
        self.progress = progress
        self.check_stop = check_stop
        self.host = host
        #: where the videos are rendered: this host's threads or a Ray cluster (executors/)
        self.executor = executor
        #: set by the daemon: spools the job's notifications before it is published
        self.before_publish: BeforePublish | None = None

    # -- the job --------------------------------------------------------------------------
    def run(self, claim: Claim) -> Published:
        """Process and publish; returns the outbox folder (None if it was already
        published before a crash) and the outcome. Raises StopRequested (claim kept
        for resume) and OutboxUnavailableError (claim kept, retried later)."""
        lease = claim.read_lease() or self._fresh_lease(claim)
        if self._already_published(claim, lease):
            self._release(claim)
            return Published(None, JobOutcome.DONE)
        attempts = int(lease.extra.get("attempts", 0)) + 1
        lease.extra["attempts"] = attempts
        claim.write_lease(lease)
        if lease.extra.get(NAME_NOT_UTF8):
            return self.fail(claim, f"The job folder's name is not valid UTF-8 text (shown here as '{claim.job}', "
                                    "the unreadable part as \\x..). Rename the folder, then put it back.")
        if attempts > self.settings.max_attempts:
            return self.fail(claim, f"Processing this job stopped the daemon {attempts - 1} times in a row; "
                                    "it was given up so the other jobs can run.")
        try:
            staging = self._open_staging(lease)
            with structlog.contextvars.bound_contextvars(job=claim.job, job_id=lease.staging_id):
                return self._run(claim, lease, staging)
        except StopRequested:
            # a clean checkpoint is not a crash: don't count it against the job
            self._uncount_attempt(claim, lease, attempts)
            raise
        except OutboxUnavailableError:
            # nor is a full or missing outbox: else a disk full for max_attempts
            # retries would end the job as failed once space is back
            self._uncount_attempt(claim, lease, attempts)
            raise
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            self._uncount_attempt(claim, lease, attempts)
            raise disk_full_error() from exc
        finally:
            _close_job_log(lease.staging_id)

    @staticmethod
    def _uncount_attempt(claim: Claim, lease: LeaseData, attempts: int) -> None:
        lease.extra["attempts"] = attempts - 1
        try:
            claim.write_lease(lease)
        except OSError as exc:  # the inbox may be full too; the count is only a safeguard
            log.warning("lease_unwritable", job=claim.job, error=str(exc))

    def fail(self, claim: Claim, message: str) -> Published:
        """Publish the job as failed without processing it (sources kept)."""
        lease = claim.read_lease() or self._fresh_lease(claim)
        try:
            staging = self._open_staging(lease)
            with structlog.contextvars.bound_contextvars(job=claim.job, job_id=lease.staging_id):
                log.error("job_given_up", error=message)
                report = JobReport(job=claim.job, host=self.host, engine=self.settings.default_engine,
                                   started_at=self._started_at(staging), errors=[message])
                report.finished_at = now_iso()
                report.settle_status()
                return self._publish(claim, lease, staging, report, None)
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            raise disk_full_error() from exc
        finally:
            _close_job_log(lease.staging_id)

    def _open_staging(self, lease: LeaseData) -> Staging:
        staging = Staging(self.settings.outbox, lease.staging_id)
        staging.create()
        staging.drop_partials()
        job_sinks.open(lease.staging_id, staging.file("log.jsonl"))
        return staging

    def _run(self, claim: Claim, lease: LeaseData, staging: Staging) -> Published:
        report = JobReport(job=claim.job, host=self.host, started_at=self._started_at(staging))
        log.info("job_started", folder=str(claim.folder))
        self.progress(claim.job, "checking the job folder")
        plan = self._plan(claim, report)
        if plan is not None:
            report.engine = plan.engine
            self._process(plan, report, staging)
        report.finished_at = now_iso()
        report.settle_status()
        return self._publish(claim, lease, staging, report, plan)

    def _plan(self, claim: Claim, report: JobReport) -> JobPlan | None:
        try:
            return load_job(claim.folder, self.settings, known_engines=self.engines.names, name=claim.job)
        except JobValidationError as exc:
            log.warning("job_invalid", error=str(exc))
            report.engine = self.settings.default_engine
            report.errors.append(str(exc))
            return None

    def _process(self, plan: JobPlan, report: JobReport, staging: Staging) -> None:
        try:
            engine = self.engines.get(plan.engine)
        except HeygemError as exc:
            log.error("engine_unavailable", engine=plan.engine, error=str(exc))
            report.errors.append(str(exc))
            report.outputs = [_failed(p, str(exc)) for p in plan.pairs]
            return
        report.device = str(getattr(engine, "device", "cpu"))
        report.precision = _precision(engine)
        audios = self._decode_audio(plan, report)
        report.outputs = [OutputReport(video=p.video, audio=p.audio) for p in plan.pairs]
        todo: list[tuple[OutputPair, AudioReady]] = []
        for pair, out in zip(plan.pairs, report.outputs):
            done = _load_result(staging, pair)
            if done is not None:
                report.outputs[pair.index] = done
                log.info("video_already_done", video=pair.video, audio=pair.audio)
            elif isinstance(audio := audios[pair.audio], AudioFailed):
                out.error = audio.error
            else:
                todo.append((pair, audio))
        # The engine analyses each voice in a thread of its own while the videos start: a video
        # plans itself and analyses a new avatar meanwhile, and waits only when it needs the voice.
        analysis = self._analyse_audio(plan, engine, audios, {pair.audio for pair, _ in todo}, report)
        self._make_videos(plan, todo, engine, report, staging)
        # its report entries are complete when it ends (a video that failed early did not wait for
        # its voice); a stop, or an error that ends the job, leaves it behind
        while analysis.is_alive():
            self.check_stop()
            analysis.join(0.1)

    def _decode_audio(self, plan: JobPlan, report: JobReport) -> dict[str, PreparedAudio]:
        """Every audio decoded (a file that can't be fails its videos now, with the reason)."""
        decoded: dict[str, PreparedAudio] = {}
        for name in plan.audios:
            self.check_stop()
            entry = AudioReport(file=name)
            report.audio.append(entry)
            try:
                clip = decode_audio(plan.folder / name, self.settings.limits)
            except HeygemError as exc:
                log.error("audio_failed", audio=name, error=str(exc))
                report.errors.append(f"{name}: {exc}")
                decoded[name] = AudioFailed(str(exc))
                continue
            entry.duration_s = round(clip.duration_s, 3)
            decoded[name] = AudioReady(clip, PendingFeatures(), loudness_curve(clip.samples, clip.sample_rate))
        return decoded

    def _analyse_audio(self, plan: JobPlan, engine: Engine, audios: dict[str, PreparedAudio], needed: set[str],
                       report: JobReport) -> threading.Thread:
        """Start the engine's analysis of the ``needed`` audios, one after another, in a daemon thread
        (a stop leaves it behind; the process may end during it)."""
        entries = {entry.file: entry for entry in report.audio}
        context = contextvars.copy_context()  # its log lines name the job, as the runner's do

        def analyse() -> None:
            first = True
            for name, audio in audios.items():
                if not isinstance(audio, AudioReady) or name not in needed:
                    continue
                if first:  # the videos' own progress takes the line over once they render
                    self.progress(plan.name, f"analysing audio {name}")
                    first = False
                started = time.perf_counter()
                try:
                    features = engine.prepare(audio.clip, transcript=plan.transcript)
                except HeygemError as exc:
                    log.error("audio_failed", audio=name, error=str(exc))
                    report.errors.append(f"{name}: {exc}")
                    audio.features.fail(exc)
                    continue
                except Exception as exc:  # noqa: BLE001 -- a bug: raised in each video that waits for it
                    log.exception("audio_analysis_crashed", audio=name)
                    audio.features.fail(exc)
                    continue
                entry = entries[name]
                entry.features_s = round(time.perf_counter() - started, 3)
                entry.source = features.source
                audio.features.set(features)
                log.info("audio_prepared", audio=name, duration_s=entry.duration_s,
                         features_s=entry.features_s, source=features.source, details=features.details)

        thread = threading.Thread(target=context.run, args=(analyse,), name="audio-analysis", daemon=True)
        thread.start()
        return thread

    def _make_videos(self, plan: JobPlan, todo: list[tuple[OutputPair, AudioReady]], engine: Engine,
                     report: JobReport, staging: Staging) -> None:
        counter = VideoProgress(total=len(plan.pairs), finished=len(plan.pairs) - len(todo))

        def progress(index: int, fraction: float) -> None:
            self.progress(plan.name, *counter.update(index, fraction))

        def finish(unit: VideoUnit, error: HeygemError | None) -> None:
            try:
                self._finish(unit, error, staging)
            finally:
                counter.finish(unit.pair.index)

        units = [self._unit(plan, pair, audio, report.outputs[pair.index], staging,
                            functools.partial(progress, pair.index)) for pair, audio in todo]
        try:
            self.executor.render(engine, units, finish, self.check_stop)
        finally:
            where = sorted({u.where for u in units if u.where})
            if where:
                report.device = ", ".join(where)

    def _unit(self, plan: JobPlan, pair: OutputPair, audio: AudioReady, out: OutputReport, staging: Staging,
              progress: Callable[[float], None]) -> VideoUnit:
        task = VideoTask(
            video_path=plan.folder / pair.video,
            audio_path=plan.folder / pair.audio,
            audio_duration_s=audio.clip.duration_s,
            output_path=staging.partial_path(pair.output),
            output=plan.output,
            limits=self.settings.limits,
            spool_dir=self.settings.cache_path / "spool",
            opening=audio.loudness,
        )
        return VideoUnit(pair, task, audio.features, out, progress, job=plan.name)

    def _finish(self, unit: VideoUnit, error: HeygemError | None, staging: Staging) -> None:
        """Commit a rendered output in staging, or record why it failed; either is reused on resume."""
        pair, out = unit.pair, unit.report
        with unit.bound():
            if error is not None:
                self._record_failure(unit, error, staging)
                return
            staging.commit_output(pair.output)
            out.status, out.file, out.error = "done", pair.output, None
            _save_result(staging, pair, out)
            log.info("video_done", output=pair.output, frames=out.frames, frames_with_face=out.frames_with_face,
                     seconds=round(time.perf_counter() - unit.started, 2), device=unit.where,
                     timings=out.timings_s.model_dump())

    def _record_failure(self, unit: VideoUnit, exc: HeygemError, staging: Staging) -> None:
        pair, task, out = unit.pair, unit.task, unit.report
        full = _no_space_left(staging.path, exc)
        task.output_path.unlink(missing_ok=True)
        if full:
            # the encoder hit a full outbox: that is not this video's fault, and a
            # recorded failure would be reused (not redone) when the job is retried
            raise disk_full_error() from exc
        # people know the output by its name, not by our hidden work file
        message = str(exc).replace(task.output_path.name, pair.output)
        out.status, out.error, out.file = "failed", message, None
        log.error("video_failed", error=message, kind=exc.kind)
        _save_result(staging, pair, out)

    # -- publishing -----------------------------------------------------------------------
    def _publish(self, claim: Claim, lease: LeaseData, staging: Staging, report: JobReport,
                 plan: JobPlan | None) -> Published:
        self.check_stop()
        cut_posters(report, staging.path)
        write_atomic(staging.file("report.json"), report.model_dump_json(indent=2))
        text = error_text(report)
        staging.file("ERROR.txt").unlink(missing_ok=True)
        if text:
            write_atomic(staging.file("ERROR.txt"), text)
        shutil.rmtree(staging.results, ignore_errors=True)
        if self.settings.keep_sources or report.status != "done":
            skipped = stage_sources(staging, claim.folder)
            if skipped:
                log.warning("sources_not_copied", files=skipped,
                            reason="special files or files with other hard links are not copied")
        log.info("job_finished", status=report.status, outputs=len(report.outputs),
                 done=sum(o.status == "done" for o in report.outputs))
        job_sinks.close(lease.staging_id)
        fsync_dir(staging.path)

        def record(name: str) -> None:
            lease.publishing_to = name
            claim.write_lease(lease)
            if self.before_publish is not None:
                self.before_publish(claim, staging.path, name, report.status)

        path = publish(staging, claim.job, before_rename=record,
                       permissions=Permissions.from_settings(self.settings.publish))
        self._release(claim)
        return Published(path, JobOutcome(report.status))

    def _already_published(self, claim: Claim, lease: LeaseData) -> bool:
        """A crash between the publish rename and removing the claim: don't publish twice."""
        if not lease.publishing_to:
            return False
        staged = Staging(self.settings.outbox, lease.staging_id)
        return not staged.exists() and (self.settings.outbox / lease.publishing_to).is_dir()

    def _release(self, claim: Claim) -> None:
        shutil.rmtree(claim.folder, ignore_errors=True)
        claim.remove_lease()

    def _fresh_lease(self, claim: Claim) -> LeaseData:
        lease = claim.new_lease()
        claim.write_lease(lease)
        return lease

    def _started_at(self, staging: Staging) -> str:
        marker = staging.results / "started_at"
        try:
            return marker.read_text(encoding="utf-8").strip()
        except OSError:
            stamp = now_iso()
            marker.write_text(stamp, encoding="utf-8")
            return stamp


def _close_job_log(staging_id: str) -> None:
    try:
        job_sinks.close(staging_id)
    except OSError as exc:  # flushing the job's log.jsonl onto a full outbox
        log.warning("job_log_unwritable", error=str(exc))


def _no_space_left(folder: Path, exc: Exception) -> bool:
    """Whether a failed encode ran out of disk (ffmpeg's message, or next to no space left)."""
    if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
        return True
    try:
        return shutil.disk_usage(folder).free < 1024 * 1024
    except OSError:
        return False


def _failed(pair: OutputPair, error: str) -> OutputReport:
    return OutputReport(video=pair.video, audio=pair.audio, status="failed", error=error)


def _result_path(staging: Staging, pair: OutputPair) -> Path:
    return staging.results / f"{pair.index}.json"


def _save_result(staging: Staging, pair: OutputPair, out: OutputReport) -> None:
    write_atomic(_result_path(staging, pair), out.model_dump_json())


def _load_result(staging: Staging, pair: OutputPair) -> OutputReport | None:
    """A finished output from an earlier attempt: reused only if its file is there."""
    try:
        out = OutputReport.model_validate_json(_result_path(staging, pair).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if out.status == "done" and not staging.file(pair.output).is_file():
        return None
    return out


def _precision(engine: Engine) -> str:
    """What the engine computes in: its ``precision`` attribute, else what ``describe()`` says."""
    value = getattr(engine, "precision", None)
    if value is None and callable(describe := getattr(engine, "describe", None)):
        value = describe().get("precision")
    return str(value or "")
