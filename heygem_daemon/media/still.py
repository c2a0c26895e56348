"""One still frame of a video as a small JPEG: the poster the status page shows.

The frame is cut from the finished output, so the poster shows exactly what the
viewer gets (the new mouth, the output's size and colours).  The seek goes before
``-i``: ffmpeg jumps to the nearest keyframe and decodes forward to the exact time,
so a poster from the end of a long video costs no more than one from the start.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import MediaError
from ._process import OwnedProcess
from .probe import ffmpeg_reason
from .safety import ffmpeg_base_args, hardened_input

#: posters are thumbnails: this wide at most (never upscaled), the height keeps the aspect
STILL_WIDTH = 320
#: mjpeg's quantiser, 2 (best) .. 31; 5 keeps a 320 px face crisp at roughly 10-25 kB
STILL_QUALITY = 5
#: a still is one seek and one frame: a file that takes longer is not worth waiting for
STILL_TIMEOUT_S = 30.0


def write_still(video: Path, at_s: float, dest: Path, *, width: int = STILL_WIDTH) -> None:
    """Write the frame shown at ``at_s`` seconds of ``video`` to ``dest`` as a JPEG.

    Raises MediaError when ffmpeg fails or writes nothing (a time past the end)."""
    args = [
        "ffmpeg", *ffmpeg_base_args(), "-y", "-ss", f"{max(0.0, at_s):.3f}", *hardened_input(video),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v", "1",
        "-vf", f"scale='min({width},iw)':-2", "-q:v", str(STILL_QUALITY),
        "-f", "image2", "-c:v", "mjpeg", "file:" + str(dest.absolute()),
    ]  # fmt: skip
    dest.unlink(missing_ok=True)
    proc = OwnedProcess(args, stdout=False)
    try:
        try:
            code = proc.wait(timeout=STILL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        tail = proc.stderr_tail()
    finally:
        proc.stop()
    if code is None:
        raise MediaError(f"Cutting a still from '{video.name}' took longer than {STILL_TIMEOUT_S:.0f} s.")
    if code != 0 or not dest.is_file() or dest.stat().st_size == 0:
        dest.unlink(missing_ok=True)
        reason = ffmpeg_reason(tail, video, dest) if tail else f"no frame at {at_s:.2f} s"
        raise MediaError(f"Cannot cut a still from '{video.name}': {reason}.")
