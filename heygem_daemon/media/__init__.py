"""The media layer: the only code that starts ffmpeg or ffprobe.

Every untrusted input goes through :mod:`.safety` (``file:`` URLs, protocol and
demuxer whitelists); every process is owned by :mod:`._process`.
"""

from ._process import kill_owned
from .audio import decode_audio, file_digest
from .frames import FrameReader, FrameWriter, decode_rate, output_size
from .probe import AudioInfo, MediaInfo, VideoInfo, probe
from .safety import ffmpeg_base_args
from .timeline import FrameSource, Timeline, output_frame_count, source_index

__all__ = [
    "AudioInfo",
    "FrameReader",
    "FrameSource",
    "FrameWriter",
    "MediaInfo",
    "Timeline",
    "VideoInfo",
    "decode_audio",
    "decode_rate",
    "ffmpeg_base_args",
    "file_digest",
    "kill_owned",
    "output_frame_count",
    "output_size",
    "probe",
    "source_index",
]
