"""report.json (ARCHITECTURE §4) and ERROR.txt: the outcome, for machines and people."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field

# the per-output models are filled by the render path (render/outcome.py); re-exported for the job's report
from ..render.outcome import OutputReport, SyncFigure, TimelineReport, Timings

__all__ = ["AudioReport", "JobOutcome", "JobReport", "OutputReport", "SyncFigure", "TimelineReport", "Timings",
           "error_text", "now_iso"]


class JobOutcome(str, Enum):
    """How a published job ended: report.json's "status", returned by the runner."""

    DONE = "done"
    PARTIAL = "partial"
    FAILED = "failed"


class AudioReport(BaseModel):
    file: str
    duration_s: float = 0.0
    features_s: float = 0.0
    #: what drove the mouth shapes ("loudness", "transcript", "phonemes:…", "mel:wav2lip");
    #: an addition to ARCHITECTURE §4
    source: str = ""


class JobReport(BaseModel):
    job: str
    status: Literal["done", "partial", "failed"] = "failed"
    engine: str = ""
    #: where the engine ran ("cpu", "cuda:0"); an addition to ARCHITECTURE §4
    device: str = ""
    #: the engine's arithmetic ("fp16", "fp32", "fp16 autocast"; "" when it does not say); an addition to ARCHITECTURE §4
    precision: str = ""
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
