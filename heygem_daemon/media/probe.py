"""What is in a media file, read with ffprobe and checked against the limits."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import UNREADABLE_HINT, LimitExceededError, MediaError, duration_text, raise_setting
from ..logging import get_logger
from ..settings import LimitSettings
from ._process import OwnedProcess
from .safety import ffprobe_base_args, hardened_input_options, input_url

log = get_logger()


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream. ``width``/``height`` are the size as displayed."""

    width: int
    height: int
    fps: float
    #: exact rate as ffmpeg writes it, e.g. "30000/1001"; pass this to the encoder
    fps_text: str
    frame_count: int
    duration_s: float
    #: how far players turn the stored picture, in degrees counter-clockwise
    #: (the display matrix, as ffprobe reports it): 0, 90, 180 or 270
    rotation: int
    codec: str
    pix_fmt: str
    #: frame durations vary (phones, screen recordings): read it with
    #: ``FrameReader(..., fps_text=info.fps_text)`` to get ``frame_count`` frames
    variable_rate: bool = False


@dataclass(frozen=True)
class AudioInfo:
    """The first audio stream."""

    sample_rate: int
    channels: int
    duration_s: float
    codec: str


@dataclass(frozen=True)
class MediaInfo:
    """One probed file."""

    path: Path
    format_name: str
    duration_s: float
    stream_count: int
    video: VideoInfo | None
    audio: AudioInfo | None


def probe(path: Path, limits: LimitSettings) -> MediaInfo:
    """Read a file's streams with ffprobe; raise if unreadable or over a limit."""
    path = Path(path)
    _require_content(path)
    raw = _run_ffprobe(path, limits.probe_timeout_s)
    info = _parse(path, raw)
    check_limits(info, limits)
    return info


def check_limits(info: MediaInfo, limits: LimitSettings) -> None:
    """Raise LimitExceededError naming the first limit ``info`` is over."""
    name = info.path.name
    if info.stream_count > limits.max_streams:
        _over(name, f"has {info.stream_count} streams, more than the limit of {limits.max_streams}",
              "max_streams", "Export it again with one video and one audio track.")
    if info.duration_s > limits.max_duration_s:
        _over(name, f"lasts {duration_text(info.duration_s)}, longer than the limit of "
              f"{duration_text(limits.max_duration_s)} (h:mm:ss)", "max_duration_s", "Use a shorter file.")
    video = info.video
    if video is None:
        return
    smaller = "Export it at a lower resolution (1080p is plenty)."
    if video.width > limits.max_width:
        _over(name, f"is {video.width} pixels wide, more than the limit of {limits.max_width}", "max_width", smaller)
    if video.height > limits.max_input_height:
        _over(name, f"is {video.height} pixels high, more than the limit of {limits.max_input_height}",
              "max_input_height", smaller)
    if video.width * video.height > limits.max_pixels:
        _over(name, f"has {video.width * video.height} pixels per frame, more than the limit of {limits.max_pixels}",
              "max_pixels", smaller)
    if video.fps > limits.max_fps:
        _over(name, f"runs at {video.fps:.2f} frames per second, more than the limit of {limits.max_fps:g}",
              "max_fps", "Export it at 30 or 60 frames per second.")


def _over(name: str, what: str, key: str, fix: str) -> None:
    raise LimitExceededError(f"{name} {what}.", key=f"limits.{key}", hint=f"{fix} {raise_setting(f'limits.{key}')}")


def _unreadable(path: Path, reason: str | None = None, *, ffmpeg: str = "") -> MediaError:
    """The file cannot be read: ``reason`` in plain words, or else (ffmpeg's own words,
    which mean nothing to most people, go to the log) what people can do about it."""
    if reason is not None:
        return MediaError(f"{path.name} could not be read as a video or audio file: {reason}")
    log.info("media_unreadable", file=path.name, ffmpeg=ffmpeg)
    return MediaError(f"{path.name} could not be read as a video or audio file.", hint=UNREADABLE_HINT)


def _require_content(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise _unreadable(path, err.strerror or str(err)) from err
    if size == 0:
        raise MediaError(f"{path.name} is empty (0 bytes).", hint="Copy it into the job folder again.")


def _run_ffprobe(path: Path, timeout_s: float) -> dict[str, Any]:
    args = [
        "ffprobe",
        *ffprobe_base_args(),
        *hardened_input_options(),
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        input_url(path),
    ]
    proc = OwnedProcess(args)
    try:
        # a hostile file can make ffprobe read forever; the watchdog kills it,
        # which ends the blocking read below
        expired = threading.Event()
        def expire() -> None:
            expired.set()
            proc.proc.kill()

        watchdog = threading.Timer(timeout_s, expire)
        watchdog.start()
        try:
            out = proc.stdout.read()
            code = proc.wait()
        finally:
            watchdog.cancel()
            watchdog.join()
        if expired.is_set():
            raise _unreadable(path, f"reading it took longer than {timeout_s:g} s. {UNREADABLE_HINT}")
        if code != 0:
            raise _ffmpeg_unreadable(path, proc.stderr_tail(), f"ffprobe exit code {code}")
    finally:
        proc.stop()
    try:
        data: dict[str, Any] = json.loads(out or b"{}")
        return data
    except ValueError as err:
        raise _unreadable(path, ffmpeg="ffprobe gave no JSON") from err


def _ffmpeg_unreadable(path: Path, stderr_tail: str, fallback: str) -> MediaError:
    reason = ffmpeg_reason(stderr_tail, path)
    if reason.startswith("it is a playlist"):
        return _unreadable(path, reason)  # already plain words
    return _unreadable(path, ffmpeg=reason or fallback)


def ffmpeg_reason(stderr_tail: str, *paths: Path) -> str:
    """ffmpeg's complaint in words for people, without our long file: URLs."""
    if "whitelist" in stderr_tail:
        return "it is a playlist, a stream or another format the daemon does not accept."
    lines = [line for line in stderr_tail.splitlines() if line.strip()]
    if not lines:
        return ""
    reason = lines[-1]
    # the first path is the file the message is about; others keep their name
    for index, path in enumerate(paths):
        reason = reason.replace(input_url(path) + ": ", "" if index == 0 else f"{path.name}: ")
    return reason.strip()


def _parse(path: Path, raw: dict[str, Any]) -> MediaInfo:
    fmt = raw.get("format") or {}
    streams = raw.get("streams") or []
    video_raw = _first(streams, "video")
    audio_raw = _first(streams, "audio")
    if video_raw is None and audio_raw is None:
        raise _unreadable(path, "it has no video or audio track.")
    duration = _float(fmt.get("duration"))
    video = _video(path, video_raw, duration) if video_raw else None
    audio = _audio(audio_raw, duration) if audio_raw else None
    if duration <= 0:
        duration = max(video.duration_s if video else 0.0, audio.duration_s if audio else 0.0)
    return MediaInfo(
        path=path,
        format_name=str(fmt.get("format_name", "")),
        duration_s=duration,
        stream_count=int(fmt.get("nb_streams") or len(streams)),
        video=video,
        audio=audio,
    )


def _first(streams: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    for stream in streams:
        # cover art in mp3/m4a is a "video" stream of one still picture
        if stream.get("codec_type") == kind and not (stream.get("disposition") or {}).get("attached_pic"):
            return stream
    return None


def _video(path: Path, s: dict[str, Any], format_duration: float) -> VideoInfo:
    rate, variable = _frame_rate(s)
    if not rate:
        raise _unreadable(path, "its frame rate is unknown.")
    width, height = int(s.get("width") or 0), int(s.get("height") or 0)
    if width <= 0 or height <= 0:
        raise _unreadable(path, "its picture size is unknown.")
    rotation = _rotation(s)
    if rotation in (90, 270):
        width, height = height, width
    duration = _float(s.get("duration")) or format_duration
    # a variable-rate video is decoded at the constant ``rate`` (frames are
    # repeated to keep motion timing), so its stored frame count does not apply
    stored = 0 if variable else int(s.get("nb_frames") or 0)
    frames = stored or round(duration * float(rate))
    return VideoInfo(
        width=width,
        height=height,
        fps=float(rate),
        fps_text=f"{rate.numerator}/{rate.denominator}",
        frame_count=frames,
        duration_s=duration,
        rotation=rotation,
        codec=str(s.get("codec_name", "")),
        pix_fmt=str(s.get("pix_fmt", "")),
        variable_rate=variable,
    )


def _audio(s: dict[str, Any], format_duration: float) -> AudioInfo:
    return AudioInfo(
        sample_rate=int(s.get("sample_rate") or 0),
        channels=int(s.get("channels") or 0),
        duration_s=_float(s.get("duration")) or format_duration,
        codec=str(s.get("codec_name", "")),
    )


def _rotation(s: dict[str, Any]) -> int:
    """Rotation from the display matrix (ffmpeg >= 5) or the legacy ``rotate`` tag."""
    degrees: float | None = None
    for side in s.get("side_data_list") or []:
        if "rotation" in side:
            degrees = _float(side["rotation"])
    if degrees is None:
        # the legacy tag counts clockwise
        degrees = -_float((s.get("tags") or {}).get("rotate"))
    return int(round(degrees / 90.0)) * 90 % 360


def _frame_rate(s: dict[str, Any]) -> tuple[Fraction | None, bool]:
    """(rate to use, whether the stream is variable-rate).

    ``avg_frame_rate`` is frames / duration; ``r_frame_rate`` is the rate the
    timestamps are laid out on.  They agree for constant-rate video.  When they
    differ the nominal ``r_frame_rate`` is the better output rate, unless it is
    a timestamp-resolution artefact (e.g. 1000/1).
    """
    avg, nominal = _rate(s.get("avg_frame_rate")), _rate(s.get("r_frame_rate"))
    if avg is None or nominal is None:
        return avg or nominal, False
    if abs(avg - nominal) <= nominal / 100:
        return avg, False
    if avg <= nominal <= max(Fraction(60), avg):
        return nominal, True
    return avg.limit_denominator(1001), True


def _rate(text: object) -> Fraction | None:
    try:
        rate = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def _float(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0  # NaN -> 0
