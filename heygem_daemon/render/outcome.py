"""What one rendered output reports: its part of report.json (ARCHITECTURE §4).

The per-video render path fills these; ``jobs/report.py`` gathers them into the
job's report, so the models live here, below the job layer that publishes them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Timings(BaseModel):
    decode: float = 0.0
    faces: float = 0.0
    render: float = 0.0
    encode: float = 0.0
    #: the avatar video's self-analysis (calibration and sync figure; 0 when cached), less its tracking,
    #: which counts as ``faces``
    avatar: float = 0.0


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
