"""An outbox in each state the page must show, built with the real board and real files.

Finished jobs are real folders as the daemon publishes them: an MP4 per output (the
packaged sample face, so a fresh clone has it), its poster cut by media.still,
report.json from the report model and ERROR.txt from ``error_text``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from heygem_daemon.jobs.poster import poster_name
from heygem_daemon.jobs.report import JobReport, OutputReport, error_text
from heygem_daemon.media.still import write_still
from heygem_daemon.settings import StatusSettings
from heygem_daemon.status import JobStatus, StatusBoard

SAMPLE_FACE = Path(__file__).resolve().parents[2] / "heygem_daemon" / "assets" / "sample_face.mp4"
NO_FACE = "No face was found in any frame of 'talk.mp4'.\nUse a video where one person faces the camera."


@dataclass
class FakeClock:
    """Monotonic seconds the test moves on by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Scene:
    outbox: Path
    board: StatusBoard
    clock: FakeClock = field(default_factory=FakeClock)

    @property
    def page(self) -> Path:
        return self.outbox / "index.html"

    def publish(self, job: str, outputs: dict[str, str | None], errors: tuple[str, ...] = ()) -> Path:
        """A published job folder: ``outputs`` maps video name → None (made) or its error."""
        folder = self.outbox / job
        folder.mkdir()
        report = JobReport(job=job, engine="builtin", errors=list(errors))
        for video, error in outputs.items():
            out = OutputReport(video=video, audio="voice.wav", status="failed" if error else "done", error=error)
            if error is None:
                out.file = f"{Path(video).stem}_voice.mp4"
                shutil.copyfile(SAMPLE_FACE, folder / out.file)
                out.poster = poster_name(out.file)
                write_still(folder / out.file, 1.2, folder / out.poster)
            report.outputs.append(out)
        report.settle_status()
        (folder / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
        text = error_text(report)
        if text:
            (folder / "ERROR.txt").write_text(text, encoding="utf-8")
        self.board.finished(job, report.status, "published", job)
        return folder

    def age(self, minutes: float) -> None:
        """Make the newest finished job ``minutes`` old, and write the page again."""
        stamp = datetime.now(timezone.utc) - timedelta(minutes=minutes)
        self.board.recent[0].since = stamp.isoformat(timespec="seconds")
        self.board.write()


def make_scene(tmp_path: Path, *, timezone_name: str | None = "Europe/Berlin", refresh_s: float = 5.0) -> Scene:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    clock = FakeClock()
    board = StatusBoard(outbox, tmp_path / "state", "nas-1", clock=clock,
                        page=StatusSettings(timezone=timezone_name, refresh_s=refresh_s))
    return Scene(outbox, board, clock)


def running(scene: Scene) -> Scene:
    """Onboarding 2027: video 3 of 8, 30 % of the job after 90 s of videos."""
    scene.board.running_update("Onboarding 2027", "analysing audio voice.wav")
    scene.board.running_update("Onboarding 2027", "video 1 of 8: 0%", 0.0)
    scene.clock.now += 90
    scene.board.running_update("Onboarding 2027", "video 3 of 8: 40%", 0.3)
    scene.board.set_inbox({"Sales kickoff": "settling (3/10 s unchanged)"},
                          [JobStatus("Team call", "queued", "priority 0")], None)
    scene.board.write()
    return scene


def failed(scene: Scene) -> Scene:
    """Holiday greeting: its one video has no face."""
    scene.publish("Holiday greeting", {"talk.mp4": NO_FACE})
    return scene


def done(scene: Scene) -> Scene:
    """Quarterly update: two videos made, with posters."""
    scene.publish("Quarterly update", {"alice.mp4": None, "bob.mp4": None})
    return scene


def partial(scene: Scene) -> Scene:
    """Welcome: one of two videos made."""
    scene.publish("Welcome", {"carol.mp4": None, "talk.mp4": NO_FACE})
    return scene


def every_state(tmp_path: Path, **options: object) -> Scene:
    """Done, partial, failed, running, queued, arriving and two notices on one page."""
    scene = make_scene(tmp_path, **options)  # type: ignore[arg-type]
    done(scene)
    scene.age(42)
    partial(scene)
    scene.age(7)
    failed(scene)
    scene.board.notice("retention", "moved 2 jobs older than 30 days to .trash")
    scene.board.notice("notify", "Webhook https://hooks.example/heygem: HTTP 503 after 5 tries.")
    return running(scene)
