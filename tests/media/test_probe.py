"""probe(): what is in a file, and refusing what is not a plain video/audio file."""

from __future__ import annotations

from pathlib import Path

import pytest

from heygem_daemon.errors import LimitExceededError, MediaError, duration_text
from heygem_daemon.media import probe
from heygem_daemon.settings import LimitSettings


def test_face_1_facts(media_dir: Path, limits: LimitSettings) -> None:
    """face_1.mp4 reads as 700x700 at 30 fps, about 6.1 s, with an AAC track."""
    info = probe(media_dir / "face_1.mp4", limits)
    assert info.video is not None and info.audio is not None
    assert (700, 700) == (info.video.width, info.video.height)
    assert "30/1" == info.video.fps_text
    assert 30.0 == info.video.fps
    assert info.duration_s == pytest.approx(6.1, abs=0.1)
    assert info.video.frame_count == pytest.approx(183, abs=2)
    assert ("h264", "aac") == (info.video.codec, info.audio.codec)
    assert 2 == info.stream_count


def test_audio_only_file(media_dir: Path, limits: LimitSettings) -> None:
    """A WAV has audio facts and no video."""
    info = probe(media_dir / "audio_1.wav", limits)
    assert info.video is None
    assert info.audio is not None
    assert (44100, 2) == (info.audio.sample_rate, info.audio.channels)
    assert info.audio.duration_s == pytest.approx(5.0, abs=0.05)


def test_constant_rate_frame_count_from_container(make_video, limits: LimitSettings) -> None:
    """A 1 s 25 fps clip has 25 frames and is not variable-rate."""
    info = probe(make_video(rate=25, seconds=1.0), limits)
    assert info.video is not None
    assert (25, "25/1", False) == (info.video.frame_count, info.video.fps_text, info.video.variable_rate)


def test_rotated_clip_reports_displayed_size(make_video, run_ffmpeg, tmp_path: Path, limits: LimitSettings) -> None:
    """A 320x240 clip tagged rotate=90 reads as 240x320 (the way players show it)."""
    stored = make_video("stored.mp4", size="320x240")
    rotated = tmp_path / "rotated.mp4"
    run_ffmpeg("-i", str(stored), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    info = probe(rotated, limits)
    assert info.video is not None
    assert (240, 320) == (info.video.width, info.video.height)
    assert info.video.rotation in (90, 270)


def test_zero_byte_file(tmp_path: Path, limits: LimitSettings) -> None:
    """An empty file is a MediaError that says so."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        probe(empty, limits)


def test_garbage_file(tmp_path: Path, limits: LimitSettings) -> None:
    """Random bytes named .mp4: the error names the file and says what to do, not what ffmpeg said."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(MediaError) as caught:
        probe(junk, limits)
    message = str(caught.value)
    assert message.startswith("junk.mp4 could not be read as a video or audio file.")
    assert "may be incomplete (copy it again)" in message
    assert "export it as MP4 with H.264 video" in message
    assert "Invalid data" not in message


def test_truncated_file(media_dir: Path, tmp_path: Path, limits: LimitSettings) -> None:
    """The first half of an MP4 whose index sits at the end is a MediaError."""
    data = (media_dir / "face_1.mp4").read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError):
        probe(half, limits)


def test_missing_file(tmp_path: Path, limits: LimitSettings) -> None:
    """A path that does not exist is a MediaError, not an OSError."""
    with pytest.raises(MediaError):
        probe(tmp_path / "nope.mp4", limits)


def test_file_name_that_looks_like_an_option_or_url(media_dir: Path, tmp_path: Path, limits: LimitSettings) -> None:
    """Names such as '-y' or 'http:x.mp4' are read as plain files."""
    data = (media_dir / "face_1.mp4").read_bytes()
    for name in ("-y", "http:x.mp4"):
        odd = tmp_path / name
        odd.write_bytes(data)
        assert probe(odd, limits).video is not None


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("max_duration_s", 1.0),
        ("max_width", 640),
        ("max_input_height", 640),
        ("max_pixels", 100_000),
        ("max_fps", 24.0),
        ("max_streams", 1),
    ],
)
def test_limits_name_the_setting(media_dir: Path, setting: str, value: float) -> None:
    """A file over a limit raises LimitExceededError naming the setting to raise."""
    limits = LimitSettings(**{setting: value})
    with pytest.raises(LimitExceededError) as caught:
        probe(media_dir / "face_1.mp4", limits)
    assert f"limits.{setting}" == caught.value.key
    assert f"limits.{setting}" in str(caught.value)


def test_probe_timeout_is_a_media_error(media_dir: Path) -> None:
    """ffprobe running past limits.probe_timeout_s is killed and reported as unreadable."""
    with pytest.raises(MediaError, match="took longer than"):
        probe(media_dir / "face_1.mp4", LimitSettings(probe_timeout_s=0.001))


def test_a_duration_over_the_limit_is_told_in_hours_minutes_and_seconds(media_dir: Path) -> None:
    """A 5 s clip over a 2 s limit: "lasts 0:00:05, longer than the limit of 0:00:02", and "shorter"."""
    with pytest.raises(LimitExceededError) as caught:
        probe(media_dir / "face_1.mp4", LimitSettings(max_duration_s=2.0))
    message = str(caught.value)
    assert "longer than the limit of 0:00:02 (h:mm:ss)" in message
    assert "Use a shorter file." in message
    assert "smaller" not in message


def test_a_fix_only_the_administrator_can_make_is_labelled_so(media_dir: Path) -> None:
    """Raising a limit is the administrator's job, and the message says so."""
    with pytest.raises(LimitExceededError) as caught:
        probe(media_dir / "face_1.mp4", LimitSettings(max_width=640))
    assert str(caught.value).endswith(
        "(For the administrator: raise limits.max_width in the daemon's settings.)")


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00:00"), (2.4, "0:00:02"), (247, "0:04:07"),
                                              (7200, "2:00:00"), (36_000, "10:00:00")])
def test_durations_read_as_h_mm_ss(seconds: float, text: str) -> None:
    """Durations in messages are h:mm:ss, as a player shows them."""
    assert text == duration_text(seconds)
