"""Decoded frames kept in memory for a second pass: what comes back is what was decoded, past the
cap the rest is decoded again from where the kept frames end, and memory stays bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from heygem_daemon.media import FrameReader, FrameSource
from heygem_daemon.media.frame_spool import FrameSpool, SpooledReader


def _decoded(path: Path, size: tuple[int, int]) -> np.ndarray:
    with FrameReader(path, size) as reader:
        return reader.read_batch(1000)


def _first_pass(path: Path, spool: FrameSpool, size: tuple[int, int]) -> np.ndarray:
    """What the avatar analysis does: read every frame once, keeping them."""
    with FrameReader(path, size, spool=spool) as reader:
        frames = reader.read_batch(1000)
        spool.whole = spool.count == reader.frames_read
    return frames


@pytest.mark.parametrize("size", [(160, 120), (161, 121)], ids=["yuv420p", "odd-size-bgr"])
def test_frames_read_back_are_the_decoded_ones(make_video, size: tuple[int, int]) -> None:
    """Every kept frame comes back byte for byte, and a whole video needs no second decoder."""
    clip = make_video(seconds=1.0)
    with FrameSpool(size) as spool:
        first = _first_pass(clip, spool, size)
        reader = SpooledReader(spool, clip)
        again = list(reader)
        assert reader._rest is None  # no ffmpeg was started for the second pass
    assert len(first) == len(again) == 25
    assert np.array_equal(first, np.stack(again))
    assert np.array_equal(_decoded(clip, size), first)


def test_past_the_cap_the_rest_is_decoded_from_where_the_kept_frames_end(make_video) -> None:
    """A spool with room for 10 of 25 frames: the second pass gives all 25, the last 15 from a
    decoder started at frame 10, equal to a plain decode of the video."""
    size = (160, 120)
    clip = make_video(seconds=1.0)
    with FrameSpool(size, max_bytes=10 * size[0] * size[1] * 3 // 2) as spool:
        _first_pass(clip, spool, size)
        assert (spool.count, spool.whole) == (10, False)
        reader = SpooledReader(spool, clip)
        again = np.stack(list(reader))
        reader.close()
    assert reader.frames_read == 25
    assert np.array_equal(_decoded(clip, size), again)


@pytest.mark.parametrize("policy", ["pingpong", "loop", "freeze"])
def test_a_render_pass_from_kept_frames_shows_the_same_frames(make_video, tmp_path: Path, policy: str) -> None:
    """FrameSource over kept frames gives the same frames in the same order as over the file,
    for every way of extending a short video, and learns the same true length."""
    size = (160, 120)
    clip = make_video(seconds=1.0)

    def output(decoded: FrameSpool | None) -> tuple[list[int], np.ndarray, int | None]:
        with FrameSource(clip, size, 60, 25, policy, tmp_path / policy, decoded=decoded) as source:
            batches = [source.next_batch(7) for _ in range(10)]
            srcs = [int(s) for _, batch_srcs, _ in batches for s in batch_srcs]
            return srcs, np.concatenate([frames for _, _, frames in batches]), source.decoded_frames

    with FrameSpool(size) as spool:
        _first_pass(clip, spool, size)
        kept = output(spool)
    plain = output(None)
    assert kept[0] == plain[0] and len(kept[0]) == 60
    assert np.array_equal(kept[1], plain[1])
    assert kept[2] == plain[2] == 25


def test_memory_is_bounded_by_the_cap_and_given_back_on_close(make_video) -> None:
    """Frames past the cap are not kept; after close nothing is."""
    size = (160, 120)
    clip = make_video(seconds=1.0)
    spool = FrameSpool(size, max_bytes=5 * size[0] * size[1] * 3 // 2 + 100)
    _first_pass(clip, spool, size)
    assert (spool.capacity, spool.count, spool.covers(5), spool.covers(6)) == (5, 5, True, False)
    spool.close()
    assert (spool.count, spool.covers(1)) == (0, False)


def test_a_spool_without_room_for_one_frame_keeps_nothing(make_video) -> None:
    """A cap below one frame (a huge video) is no error: nothing is kept and the pass decodes."""
    size = (160, 120)
    clip = make_video(seconds=1.0)
    with FrameSpool(size, max_bytes=100) as spool:
        _first_pass(clip, spool, size)
        assert (spool.capacity, spool.count) == (0, 0)
        with FrameSource(clip, size, 25, 25, "pingpong", Path("/nonexistent"), decoded=spool) as source:
            assert len(source.next_batch(100)[0]) == 25


def test_a_spool_keeps_all_the_frames_asked_for_or_none(make_video) -> None:
    """Asked for 10 frames it keeps exactly 10 (no more, though the cap has room); asked for more than
    the cap holds it keeps none, so memory goes only where it saves a whole decode."""
    size = (160, 120)
    clip = make_video(seconds=1.0)
    one = size[0] * size[1] * 3 // 2
    with FrameSpool(size, choices=(10,), max_bytes=40 * one) as spool:
        _first_pass(clip, spool, size)
        assert (spool.capacity, spool.count, spool.whole) == (10, 10, False)
    with FrameSpool(size, choices=(26,), max_bytes=20 * one) as spool:
        _first_pass(clip, spool, size)
        assert (spool.capacity, spool.count) == (0, 0)
    # the first choice that fits: a whole analysis window is too much, the frames shown are not
    with FrameSpool(size, choices=(26, 12), max_bytes=20 * one) as spool:
        _first_pass(clip, spool, size)
        assert (spool.capacity, spool.count) == (12, 12)
