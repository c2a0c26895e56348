"""Output timing: frame counts, source-frame plans, and frames in output order."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from heygem_daemon.media import FrameReader, FrameSource, Timeline, output_frame_count, source_index

SIZE = (160, 120)
FRAME_BYTES = SIZE[0] * SIZE[1] * 3


@pytest.mark.parametrize(
    ("audio_s", "fps", "source", "when_longer", "expected"),
    [
        (3.0, 25.0, 25, "trim", 75),
        (1.0, 25.0, 100, "trim", 25),
        (1.0, 25.0, 100, "keep", 100),
        (3.0, 25.0, 25, "keep", 75),
        (5.0155, 30000 / 1001, 0, "trim", 150),
    ],
)
def test_output_frame_count(audio_s: float, fps: float, source: int, when_longer: str, expected: int) -> None:
    """The output has the audio's length in frames, or the whole video when kept."""
    assert expected == output_frame_count(audio_s, fps, source, when_longer)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("pingpong", [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0]),
        ("loop", [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0]),
        ("freeze", [0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]),
    ],
)
def test_source_index_sequences(policy: str, expected: list[int]) -> None:
    """pingpong turns without repeating a frame, loop wraps, freeze holds the last frame."""
    assert expected == [source_index(i, 4, policy) for i in range(13)]


@pytest.mark.parametrize("policy", ["pingpong", "loop", "freeze"])
def test_single_frame_video_repeats_it(policy: str) -> None:
    """A one-frame video shows that frame throughout."""
    assert [0] * 5 == [source_index(i, 1, policy) for i in range(5)]


def test_unknown_policy_is_refused() -> None:
    """A misspelt policy is an error, not a silent default."""
    with pytest.raises(ValueError):
        source_index(10, 4, "bounce")


def _decoded(path: Path) -> np.ndarray:
    with FrameReader(path, SIZE) as reader:
        return reader.read_batch(1000)


@pytest.mark.parametrize("policy", ["pingpong", "loop", "freeze"])
def test_frame_source_extends_short_video(make_video, tmp_path: Path, policy: str) -> None:
    """A 1 s video under 3 s of audio yields 75 frames in plan order, equal to the decoded ones."""
    clip = make_video(seconds=1.0)
    originals = _decoded(clip)
    spool = tmp_path / "spool"
    with FrameSource(clip, SIZE, 75, 25, policy, spool) as source:
        items = list(source)
        assert 25 == source.decoded_frames
    assert list(range(75)) == [out for out, _, _ in items]
    assert [source_index(i, 25, policy) for i in range(75)] == [src for _, src, _ in items]
    for _, src, frame in items:
        assert np.array_equal(originals[src], frame)
    assert not spool.exists() or [] == list(spool.iterdir())


def test_frame_source_spools_to_disk_not_memory(make_video, tmp_path: Path) -> None:
    """While revisiting frames the spool is a file on disk and Python memory stays a few frames."""
    clip = make_video(seconds=1.0)
    spool = tmp_path / "spool"
    tracemalloc.start()
    try:
        with FrameSource(clip, SIZE, 75, 25, "pingpong", spool) as source:
            for out, _, _ in source:
                if out == 50:
                    spooled = [p.stat().st_size for p in spool.iterdir()]
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [25 * FRAME_BYTES] == spooled
    assert peak < 6 * FRAME_BYTES
    assert [] == list(spool.iterdir())


def test_freeze_keeps_no_spool(make_video, tmp_path: Path) -> None:
    """freeze needs only the last frame: nothing is written to the spool folder."""
    spool = tmp_path / "spool"
    with FrameSource(make_video(seconds=1.0), SIZE, 40, 25, "freeze", spool) as source:
        assert 40 == len(list(source))
    assert not spool.exists() or [] == list(spool.iterdir())


def test_frame_source_trims_long_video(make_video, tmp_path: Path) -> None:
    """With fewer output frames than the video has, decoding stops early and order is 1:1."""
    with FrameSource(make_video(seconds=1.0), SIZE, 10, 25, "pingpong", tmp_path) as source:
        items = list(source)
    assert [(i, i) for i in range(10)] == [(out, src) for out, src, _ in items]


def test_frame_source_when_probe_overcounts(make_video, tmp_path: Path) -> None:
    """Probe said 40 frames but the file has 25: the plan uses the 25 decoded and still yields all frames."""
    clip = make_video(seconds=1.0)
    originals = _decoded(clip)
    with FrameSource(clip, SIZE, 40, 40, "pingpong", tmp_path) as source:
        items = list(source)
        assert 25 == source.decoded_frames
    assert 40 == len(items)
    assert all(np.array_equal(originals[src], frame) for _, src, frame in items)


def test_frame_source_when_probe_undercounts(make_video, tmp_path: Path) -> None:
    """Probe said 10 frames but the file has 25: all 25 are used before turning back."""
    clip = make_video(seconds=1.0)
    with FrameSource(clip, SIZE, 60, 10, "pingpong", tmp_path) as source:
        srcs = [src for _, src, _ in source]
    assert [source_index(i, 25, "pingpong") for i in range(60)] == srcs


def test_next_batch(make_video, tmp_path: Path) -> None:
    """next_batch gives index arrays and a frame batch, then empty at the end."""
    with FrameSource(make_video(seconds=1.0), SIZE, 30, 25, "loop", tmp_path) as source:
        outs, srcs, frames = source.next_batch(16)
        assert (list(range(16)), (16, 120, 160, 3)) == (outs.tolist(), frames.shape)
        outs, srcs, frames = source.next_batch(16)
        assert [25, 26, 27, 28, 29] == outs.tolist()[-5:] and [0, 1, 2, 3, 4] == srcs.tolist()[-5:]
        assert (0, 120, 160, 3) == source.next_batch(16)[2].shape


def test_frame_source_closed_early(make_video, tmp_path: Path) -> None:
    """Leaving after a few frames stops ffmpeg and removes the spool."""
    spool = tmp_path / "spool"
    with FrameSource(make_video(seconds=1.0), SIZE, 75, 25, "loop", spool) as source:
        source.next()
    assert [] == list(spool.iterdir())


def test_only_revisited_frames_are_spooled(make_video, tmp_path: Path) -> None:
    """A 25-frame video with a 28-frame pingpong output spools the last few frames, not all 25."""
    spool = tmp_path / "spool"
    with FrameSource(make_video(seconds=1.0), SIZE, 28, 25, "pingpong", spool) as source:
        srcs = [src for _, src, _ in source]
        (spool_file,) = list(spool.iterdir())
        spooled_frames = spool_file.stat().st_size // (SIZE[0] * SIZE[1] * 3)
    assert [source_index(i, 25, "pingpong") for i in range(28)] == srcs
    assert spooled_frames <= 25 - 2 * 25 + 1 + 28 + 2 * 8  # the tail from 2n-1-n_out, with probe slack


def test_a_spool_over_its_byte_cap_is_replaced_by_decoding_again(make_video, tmp_path: Path) -> None:
    """loop with a 1-frame spool cap: no spool file, and the rounds still show the right frames."""
    spool = tmp_path / "spool"
    clip = make_video(seconds=1.0)
    with FrameSource(clip, SIZE, 60, 25, "loop", spool, spool_max_bytes=SIZE[0] * SIZE[1] * 3) as looped:
        items = list(looped)
        assert not spool.exists() or list(spool.iterdir()) == []
    with FrameSource(clip, SIZE, 25, 25, "loop", tmp_path / "other") as once:
        first_round = [frame for _, _, frame in once]
    assert [i % 25 for i in range(60)] == [src for _, src, _ in items]
    for out, src, frame in items[25:]:
        assert np.array_equal(first_round[src], frame)


def test_pingpong_over_the_byte_cap_falls_back_to_loop(make_video, tmp_path: Path) -> None:
    """pingpong that would need more spool than allowed loops instead (logged), never fails."""
    with FrameSource(make_video(seconds=1.0), SIZE, 60, 25, "pingpong", tmp_path / "s",
                     spool_max_bytes=SIZE[0] * SIZE[1] * 3) as source:
        srcs = [src for _, src, _ in source]
    assert [i % 25 for i in range(60)] == srcs


def test_the_timeline_records_the_policy_used_and_why(make_video, tmp_path: Path) -> None:
    """pingpong over the spool cap: the timeline says loop, that pingpong was asked for, and why."""
    with FrameSource(make_video(seconds=1.0), SIZE, 60, 25, "pingpong", tmp_path / "s",
                     spool_max_bytes=FRAME_BYTES) as capped:
        assert "loop" == capped.timeline.policy
        assert "pingpong" == capped.timeline.requested
        assert "over the 56.2 KiB cap" in (capped.timeline.fallback_reason or "")
    with FrameSource(make_video(name="b.mp4", seconds=1.0), SIZE, 60, 25, "pingpong", tmp_path / "t") as roomy:
        assert Timeline("pingpong", "pingpong", None) == roomy.timeline
