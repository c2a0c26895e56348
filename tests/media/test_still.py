"""Posters: one frame of a finished video as a small JPEG (media.still)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from heygem_daemon.errors import MediaError
from heygem_daemon.media.still import STILL_WIDTH, write_still


@pytest.fixture
def dark_then_bright(tmp_path: Path, run_ffmpeg) -> Path:
    """640x360 at 25 fps: 1 s black, then 1 s white, with a keyframe only at the start."""
    out = tmp_path / "dark then bright.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "color=black:s=640x360:r=25:d=1", "-f", "lavfi", "-i",
               "color=white:s=640x360:r=25:d=1", "-filter_complex", "[0:v][1:v]concat=n=2:v=1",
               "-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-pix_fmt", "yuv420p", str(out))
    return out


def test_the_still_shows_the_frame_at_the_asked_time(tmp_path, dark_then_bright):
    """A still at 0.5 s is dark and one at 1.5 s bright: the seek is exact, not to the keyframe before."""
    write_still(dark_then_bright, 0.5, tmp_path / "early.jpg")
    write_still(dark_then_bright, 1.5, tmp_path / "late.jpg")
    early = cv2.imread(str(tmp_path / "early.jpg"), cv2.IMREAD_GRAYSCALE)
    late = cv2.imread(str(tmp_path / "late.jpg"), cv2.IMREAD_GRAYSCALE)
    assert early.mean() < 30 and late.mean() > 225


def test_the_still_is_a_small_jpeg_with_the_video_aspect(tmp_path, dark_then_bright):
    """At most STILL_WIDTH wide, 16:9 kept, JPEG bytes, a few kB."""
    dest = tmp_path / "poster.jpg"
    write_still(dark_then_bright, 1.5, dest)
    data = dest.read_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    height, width = cv2.imread(str(dest)).shape[:2]
    assert (STILL_WIDTH, 180) == (width, height)
    assert len(data) < 40_000


def test_a_small_video_is_not_upscaled(tmp_path, make_video):
    """A 160x120 video gives a 160x120 still."""
    write_still(make_video(), 0.2, tmp_path / "small.jpg")
    assert (120, 160) == cv2.imread(str(tmp_path / "small.jpg")).shape[:2]


def test_a_time_past_the_end_is_an_error_and_leaves_no_file(tmp_path, dark_then_bright):
    """No frame there: MediaError naming the video, and no empty JPEG left behind."""
    dest = tmp_path / "none.jpg"
    with pytest.raises(MediaError, match="dark then bright.mp4"):
        write_still(dark_then_bright, 60.0, dest)
    assert not dest.exists()
