"""report.json (ARCHITECTURE §4) and ERROR.txt: the outcome, for machines and people."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field


class JobOutcome(str, Enum):
    """How a published job ended: report.json's "status", returned by the runner."""

    DONE = "done"
    PARTIAL = "partial"
    FAILED = "failed"


class Timings(BaseModel):
    decode: float = 0.0
    faces: float = 0.0
    render: float = 0.0
    encode: float = 0.0
    #: the avatar video's self-analysis (calibration and sync figure; 0 when cached)
    avatar: float = 0.0


class AudioReport(BaseModel):
    file: str
    duration_s: float = 0.0
    features_s: float = 0.0
    #: what drove the mouth shapes ("loudness", "transcript", "phonemes:…", "mel:wav2lip");
    #: an addition to ARCHITECTURE §4
    source: str = ""


class SyncFigure(BaseModel):
    """A held-out part of the avatar video, predicted from its own audio and compared with its real frames."""

    #: Pearson r of predicted and real mouth opening on the held-out frames
    r_truth: float
    #: the lead of the mouth over the sound that matched best there (ms; positive = mouth first)
    lead_ms: int
    #: held-out frames compared
    frames: int


class TimelineReport(BaseModel):
    """How a video shorter than its audio was extended (media.timeline.Timeline)."""

    #: the when_video_shorter policy actually used
    policy: str
    #: the policy the job asked for
    requested: str
    #: why ``policy`` differs from ``requested`` (pingpong over the spool cap loops instead)
    fallback_reason: str | None = None


class OutputReport(BaseModel):
    video: str
    audio: str
    file: str | None = None
    status: Literal["done", "failed"] = "failed"
    error: str | None = None
    frames: int = 0
    frames_with_face: int = 0
    duration_s: float = 0.0
    #: how well the engine predicts this video's own mouth from its own speech (ARCHITECTURE §4)
    sync: SyncFigure | None = None
    #: why ``sync`` is null ("the video has no speech", ...)
    sync_reason: str | None = None
    #: frames whose lips and mouth interior came from the avatar's own footage (its mouth library);
    #: null for engines without one; an addition to ARCHITECTURE §4
    exemplar_frames: int | None = None
    #: the when_video_shorter policy used for this output; an addition to ARCHITECTURE §4
    timeline: TimelineReport | None = None
    #: the JPEG thumbnail beside ``file`` (the status page shows it); null when none could be cut;
    #: an addition to ARCHITECTURE §4
    poster: str | None = None
    #: where in the output the poster was cut (s): a frame with the face and the mouth open
    poster_at_s: float | None = None
    timings_s: Timings = Field(default_factory=Timings)


class JobReport(BaseModel):
    job: str
    status: Literal["done", "partial", "failed"] = "failed"
    engine: str = ""
    #: where the engine ran ("cpu", "cuda:0"); an addition to ARCHITECTURE §4
    device: str = ""
    started_at: str = ""
    finished_at: str = ""
    host: str = ""
    audio: list[AudioReport] = Field(default_factory=list)
    outputs: list[OutputReport] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)

    def settle_status(self) -> None:
        done = [o for o in self.outputs if o.status == "done"]
        if self.errors and not done:
            self.status = "failed"
        elif done and len(done) == len(self.outputs) and not self.errors:
            self.status = "done"
        elif done:
            self.status = "partial"
        else:
            self.status = "failed"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def error_text(report: JobReport) -> str | None:
    """ERROR.txt: plain words for the person who dropped the job, or None if all went well."""
    failed = [o for o in report.outputs if o.status == "failed"]
    if report.status == "done":
        return None
    lines = [f"Job '{report.job}' {'failed' if report.status == 'failed' else 'finished only in part'}.", ""]
    for err in dict.fromkeys(report.errors):
        # an error that lists several problems keeps them under its bullet
        lines.append("- " + err.replace("\n", "\n  "))
    for out in failed:
        lines.append(f"- {out.video} with {out.audio}: {out.error or 'failed'}")
    done = len(report.outputs) - len(failed)
    lines += ["", f"{done} of {len(report.outputs)} videos were made."]
    lines.append("Your original files are in the 'source' folder next to this file.")
    lines.append("Fix the problem and drop the job folder into the inbox again.")
    return "\n".join(lines) + "\n"
