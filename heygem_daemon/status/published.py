"""What the page shows of a published job, read from its outbox folder once, when it ends.

The outputs (file, poster, what failed) come from report.json; the reason a job
failed from the first lines of ERROR.txt, the words the person who dropped the job
reads there too.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from ..jobs.report import JobReport
from ..logging import get_logger

log = get_logger()

#: ERROR.txt is cut to this for the page; the page links the whole file
REASON_LINES = 6
REASON_CHARS = 600


def read_outputs(folder: Path) -> list[dict[str, str | None]]:
    """One row per output of report.json: video, audio, file, poster, status, error."""
    try:
        report = JobReport.model_validate_json((folder / "report.json").read_text(encoding="utf-8"))
    except FileNotFoundError:  # cleared away by retention, or moved by hand
        return []
    except (OSError, ValueError, ValidationError) as exc:
        log.warning("status_report_unreadable", folder=folder.name, error=str(exc))
        return []
    return [{"video": o.video, "audio": o.audio, "file": o.file, "poster": o.poster,
             "status": o.status, "error": o.error} for o in report.outputs]


def read_reason(folder: Path) -> str | None:
    """The first lines of ERROR.txt after its heading: the problems, in plain words."""
    try:
        text = (folder / "ERROR.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return first_lines(text)


def first_lines(text: str) -> str | None:
    """ERROR.txt is a heading ("Job 'x' failed."), a blank line, the problems, a blank line and
    advice: the problems are the reason.  Cut to REASON_LINES lines and REASON_CHARS characters."""
    lines = text.strip().splitlines()
    if len(lines) > 2 and lines[0].startswith("Job ") and not lines[1].strip():
        lines = lines[2:]
    block: list[str] = []
    for line in lines:
        if not line.strip():
            if block:
                break
            continue
        block.append(line.rstrip())
    if not block:
        return None
    cut = block[:REASON_LINES]
    reason = "\n".join(cut)
    if len(reason) > REASON_CHARS:
        reason = reason[:REASON_CHARS].rstrip()
    if len(cut) < len(block) or len(reason) < len("\n".join(cut)):
        reason += " …"
    return reason
