"""A poster per output: a JPEG cut from the published video at the moment its render chose.

The moment itself (a frame with a face and the mouth open) is picked while the
video renders, by ``render/moment.py``; this cuts the stills once the outputs
are final, just before the job is published.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from ..errors import MediaError
from ..logging import get_logger
from ..media.still import write_still
from .report import JobReport

log = get_logger()


def poster_name(output: str) -> str:
    """``alice_voice.mp4`` → ``alice_voice.jpg`` (outputs always end in .mp4, so names never clash)."""
    return PurePath(output).stem + ".jpg"


def cut_posters(report: JobReport, folder: Path) -> None:
    """Write a poster beside each finished output in ``folder`` and name it in the report.

    A poster that cannot be cut is logged and left out: it never fails the job."""
    for out in report.outputs:
        if out.status != "done" or out.file is None or out.poster_at_s is None:
            continue
        name = poster_name(out.file)
        try:
            write_still(folder / out.file, out.poster_at_s, folder / name)
        except MediaError as exc:
            log.warning("poster_failed", output=out.file, error=str(exc))
            out.poster = None
            continue
        out.poster = name
