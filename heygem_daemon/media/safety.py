"""Hardening for every untrusted file we hand to ffmpeg or ffprobe.

Job folders are untrusted (ARCHITECTURE section 6).  A file called ``x.mp4`` may
really be an HLS playlist or an ffconcat list that points at ``/etc/passwd`` or
at a URL; ffmpeg picks the demuxer from the content, not the name.  So every
input gets:

* a ``file:`` URL of the absolute path -- a name like ``http:x.mp4`` or
  ``-y`` can never be read as a protocol or an option;
* ``-protocol_whitelist file`` -- nothing but local files is ever opened;
* ``-format_whitelist`` -- only the container demuxers we accept; hls, concat,
  dash, image sequences and every other playlist-like demuxer are refused.
"""

from __future__ import annotations

from pathlib import Path

#: demuxers allowed for job inputs.  ffmpeg matches each comma-separated part
#: of a demuxer's name, so "mov" admits "mov,mp4,m4a,3gp,3g2,mj2" and
#: "matroska" admits "matroska,webm".  Covers .mp4 .mov .m4v .mkv .webm .avi
#: and .wav .mp3 .m4a .aac .flac .ogg .opus.
ALLOWED_DEMUXERS: tuple[str, ...] = (
    "mov",
    "mp4",
    "m4a",
    "matroska",
    "webm",
    "avi",
    "wav",
    "w64",
    "mp3",
    "aac",
    "flac",
    "ogg",
)


def ffmpeg_base_args() -> list[str]:
    """Global flags for every ffmpeg/ffprobe run: quiet, never interactive."""
    return ["-hide_banner", "-nostdin", "-loglevel", "error"]


def ffprobe_base_args() -> list[str]:
    """ffprobe takes neither -nostdin nor reads stdin; otherwise as ffmpeg."""
    return ["-hide_banner", "-loglevel", "error"]


def input_url(path: Path) -> str:
    """The ``file:`` URL of a path, absolute so the working directory never matters."""
    return "file:" + str(Path(path).absolute())


def hardened_input_options() -> list[str]:
    """Options that must precede an untrusted input's ``-i`` (or its URL in ffprobe)."""
    return [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ",".join(ALLOWED_DEMUXERS),
    ]


def hardened_input(path: Path) -> list[str]:
    """``[options..., "-i", "file:/abs/path"]`` for one untrusted ffmpeg input."""
    return [*hardened_input_options(), "-i", input_url(path)]
