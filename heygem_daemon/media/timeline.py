"""Which source frame goes into which output frame.

The output lasts as long as the audio (ARCHITECTURE section 3).  A shorter
video is extended (pingpong, loop or freeze); a longer one is trimmed or kept
whole (with silence after the voice).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Iterator

import numpy as np
from numpy.typing import NDArray

from ..errors import MediaError
from ..logging import get_logger
from .frame_spool import FrameSpool, SpooledReader
from .frames import FrameReader

log = get_logger()

#: probe's frame count may be off by a few frames; within this margin the
#: video is treated as possibly too short and spooled for revisits
_COUNT_SLACK_FRAMES = 8
_COUNT_SLACK_RATIO = 0.02
#: at most this much disk for one video's spool; past it, "loop" decodes the
#: video again for each round and "pingpong" falls back to "loop" (logged)
SPOOL_MAX_BYTES = 4 * 1024**3


@dataclass(frozen=True)
class Timeline:
    """How a shorter video is extended for one output: decided once, when its frames are planned."""

    #: the when_video_shorter policy actually used ("pingpong", "loop", "freeze")
    policy: str
    #: the policy the job asked for
    requested: str
    #: why ``policy`` differs from ``requested`` (None when it does not)
    fallback_reason: str | None = None


def output_frame_count(audio_duration_s: float, fps: float, source_frames: int, when_longer: str) -> int:
    """Frames in the output: the audio's length, or the whole video when kept."""
    frames = max(1, round(audio_duration_s * fps))
    if when_longer == "keep":
        return max(frames, source_frames)
    return frames


def source_index(out_index: int, source_frames: int, when_shorter: str) -> int:
    """The source frame shown at output frame ``out_index``.

    pingpong: 0,1,..,n-1,n-2,..,1,0,1,.. (no frame repeated at the turns);
    loop: i mod n; freeze: the last frame once the video has run out.
    """
    n = source_frames
    if n <= 0:
        raise ValueError("a video needs at least one frame")
    if out_index < n or n == 1:
        return min(out_index, n - 1)
    if when_shorter == "loop":
        return out_index % n
    if when_shorter == "freeze":
        return n - 1
    if when_shorter == "pingpong":
        phase = out_index % (2 * (n - 1))
        return phase if phase < n else 2 * (n - 1) - phase
    raise ValueError(f"unknown when_video_shorter policy {when_shorter!r}")


class FrameSource:
    """Frames in output order: yields (out_index, src_index, frame) for ``n_out`` frames.

    The first pass streams from a FrameReader, or from ``decoded``: frames an
    earlier pass over the video kept (media/frame_spool.py).  When the plan revisits frames
    (pingpong, loop) they are spooled to a raw file in ``spool_dir`` during that
    pass and read back one at a time, so memory does not grow with the video's
    length; freeze keeps only the last frame.  Only the frames the plan will
    revisit are written (a video one frame shorter than its audio spools one
    frame, not the whole video), and a spool that would exceed
    ``spool_max_bytes`` (default ``SPOOL_MAX_BYTES``) is replaced by decoding the file again.  The true frame
    count is the number decoded (probe's estimate may be off by a few).
    """

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        n_out: int,
        source_frames: int,
        when_shorter: str,
        spool_dir: Path,
        *,
        fps_text: str | None = None,
        spool_max_bytes: int | None = None,
        decoded: FrameSpool | None = None,
    ) -> None:
        source_index(0, 1, when_shorter)  # rejects an unknown policy now, not mid-video
        self.path = Path(path)
        self.size = size
        self.n_out = n_out
        self._source_frames = source_frames
        self.when_shorter = when_shorter
        #: the policy used for this output, and why it differs from the one asked for
        self.timeline = Timeline(when_shorter, when_shorter)
        #: real number of source frames, known once the reader has ended
        self.decoded_frames: int | None = None
        self._frame_shape = (size[1], size[0], 3)
        self._frame_bytes = size[0] * size[1] * 3
        self._next_out = 0
        self._last: NDArray[np.uint8] | None = None
        self._spool_path: Path | None = None
        self._spool_fd: int | None = None
        self._reader: FrameReader | SpooledReader | None = None
        self._fps_text = fps_text
        #: source frames [lo, hi) are written to the spool during the first pass
        self._spool_range = (0, 0)
        self._spooled_until = 0
        #: re-decoding reader for "loop" rounds when no spool is kept
        self._again: FrameReader | None = None
        if when_shorter != "freeze" and n_out > _spool_threshold(source_frames):
            cap = SPOOL_MAX_BYTES if spool_max_bytes is None else spool_max_bytes
            self._plan_spool(Path(spool_dir), source_frames, cap)
        try:
            # frames an earlier pass kept (the avatar analysis) are read back, not decoded again
            self._reader = (SpooledReader(decoded, path, fps_text=fps_text) if decoded is not None and decoded.count
                            else FrameReader(path, size, fps_text=fps_text))
        except BaseException:
            self.close()
            raise

    def _plan_spool(self, spool_dir: Path, source_frames: int, max_bytes: int) -> None:
        low_n = max(1, _spool_threshold(source_frames))
        high_n = source_frames + max(_COUNT_SLACK_FRAMES, round(source_frames * _COUNT_SLACK_RATIO))
        lo, hi = _revisited(self.when_shorter, self.n_out, low_n, high_n)
        if (hi - lo) * self._frame_bytes > max_bytes and self.when_shorter == "pingpong":
            gib = (hi - lo) * self._frame_bytes / 1024**3
            log.warning("pingpong_spool_too_large", file=self.path.name, frames=hi - lo,
                        gib=round(gib, 1), instead="loop")
            self._fall_back("loop", f"pingpong would spool {_size((hi - lo) * self._frame_bytes)} of frames, "
                                    f"over the {_size(max_bytes)} cap")
            lo, hi = _revisited("loop", self.n_out, low_n, high_n)
        if (hi - lo) * self._frame_bytes > max_bytes:
            return  # loop rounds decode the file again (_revisit)
        # pingpong revisits everything from lo to the true end, which probe may
        # undercount; the byte cap still bounds the file
        end = lo + max_bytes // self._frame_bytes if self.when_shorter == "pingpong" else hi
        self._spool_range = (lo, end)
        self._open_spool(spool_dir)

    def _fall_back(self, policy: str, reason: str) -> None:
        self.when_shorter = policy
        self.timeline = replace(self.timeline, policy=policy, fallback_reason=reason)

    def _open_spool(self, spool_dir: Path) -> None:
        spool_dir.mkdir(parents=True, exist_ok=True)
        self._spool_path = spool_dir / f"frames-{os.getpid()}-{id(self):x}.bgr"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        self._spool_fd = os.open(self._spool_path, flags, 0o600)

    # -- iteration ---------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[int, int, NDArray[np.uint8]]]:
        while (item := self.next()) is not None:
            yield item

    def next(self) -> tuple[int, int, NDArray[np.uint8]] | None:
        """The next (out_index, src_index, frame), or None after ``n_out`` frames."""
        frame = np.empty(self._frame_shape, dtype=np.uint8)
        item = self._next_into(frame)
        return None if item is None else (*item, frame)

    def next_batch(self, n: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.uint8]]:
        """Up to ``n`` items as (out_indices, src_indices, frames (k, H, W, 3)); k=0 at the end."""
        # each frame is decoded (or read back) straight into its place in the batch: a fresh
        # frame and a copy of it cost as much CPU as the read itself at 720p (page faults)
        frames = np.empty((n, *self._frame_shape), dtype=np.uint8)
        outs: list[int] = []
        srcs: list[int] = []
        while len(outs) < n and (item := self._next_into(frames[len(outs)])) is not None:
            outs.append(item[0])
            srcs.append(item[1])
        return np.array(outs, dtype=np.int64), np.array(srcs, dtype=np.int64), frames[: len(outs)]

    def _next_into(self, frame: NDArray[np.uint8]) -> tuple[int, int] | None:
        """The next output frame into ``frame``: (out_index, src_index), or None after ``n_out``."""
        if self._next_out >= self.n_out:
            self._learn_length()
            self._close_reader()
            return None
        out = self._next_out
        if self.decoded_frames is None and self._first_pass(out, frame):
            src = out
        else:
            src = self._revisit(out, frame)
        self._next_out += 1
        return out, src

    def _first_pass(self, out: int, frame: NDArray[np.uint8]) -> bool:
        """Decode source frame ``out`` into ``frame``; False when the video has ended before it."""
        if self._reader is None:
            raise MediaError(f"{self.path.name}: frames were asked for after the source was closed.")
        if not self._reader.read_into(frame):
            self.decoded_frames = self._reader.frames_read
            self._close_reader()
            if self.decoded_frames == 0:
                raise MediaError(f"{self.path.name} has no video frames that could be decoded.")
            return False
        lo, hi = self._spool_range
        if self._spool_fd is not None and lo <= out < hi:
            # offsets from the start of the range: the file holds only revisited frames
            if os.pwrite(self._spool_fd, frame.data, (out - lo) * self._frame_bytes) != self._frame_bytes:
                raise MediaError(f"{self.path.name}: could not spool frames to disk (disk full?).")
            self._spooled_until = out + 1
        # the caller may edit the frame in place; a frozen ending needs the original
        if self._last is None:
            self._last = np.empty(self._frame_shape, dtype=np.uint8)
        np.copyto(self._last, frame)
        return True

    def _learn_length(self) -> None:
        """An output that reaches the probed end of the video reads one frame more: whether the
        video ended there is what tells a face track of every frame (cached for any later
        output) from a track of its first frames.  Costs at most one frame's decode."""
        if self.decoded_frames is not None or self._reader is None or self._next_out < self._source_frames:
            return
        if self._reader.read() is None:
            self.decoded_frames = self._reader.frames_read

    def _revisit(self, out: int, frame: NDArray[np.uint8]) -> int:
        """A source frame shown again into ``frame``; its source index."""
        n = self.decoded_frames
        assert n is not None
        src = source_index(out, n, self.when_shorter)
        lo = self._spool_range[0]
        if self._spool_fd is None and self.when_shorter == "loop" and n > 1:
            self._decode_again(src, frame)
            return src
        if self._spool_fd is None or not lo <= src < self._spooled_until:
            assert self._last is not None
            if src != n - 1:
                # probe promised more frames than the file holds and nothing
                # was spooled: hold the last frame rather than fail the video
                log.warning("video_shorter_than_probed", file=self.path.name, frames=n, policy=self.when_shorter)
                self._fall_back("freeze", f"the video has {n} frames, fewer than probed, and they were not spooled")
            np.copyto(frame, self._last)
            return n - 1
        got = os.preadv(self._spool_fd, [frame.data], (src - lo) * self._frame_bytes)
        if got != self._frame_bytes:
            raise MediaError(f"{self.path.name}: the frame spool on disk was cut short.")
        return src

    def _decode_again(self, src: int, frame: NDArray[np.uint8]) -> None:
        """Loop rounds without a spool: read the file again from the start (frames come in order)."""
        if src == 0 or self._again is None:
            if self._again is not None:
                self._again.close()
            self._again = FrameReader(self.path, self.size, fps_text=self._fps_text)
        if not self._again.read_into(frame):
            raise MediaError(f"{self.path.name} changed while it was being read.")

    # -- lifetime ----------------------------------------------------------------
    def kill(self) -> None:
        """SIGKILL the decoders from any thread (a stuck stop); ``close`` still cleans up."""
        for reader in (self._reader, self._again):
            if reader is not None:
                reader.kill()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def close(self) -> None:
        """Stop decoding and delete the spool file."""
        self._close_reader()
        if self._again is not None:
            self._again.close()
            self._again = None
        if self._spool_fd is not None:
            os.close(self._spool_fd)
            self._spool_fd = None
        if self._spool_path is not None:
            self._spool_path.unlink(missing_ok=True)
            self._spool_path = None
        self._last = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _revisited(when_shorter: str, n_out: int, low_n: int, high_n: int) -> tuple[int, int]:
    """Source frames [lo, hi) the plan can show again, for any true count in [low_n, high_n].

    pingpong's first turn goes back from the end: with n frames it revisits
    n-2 down to 2n-1-n_out (all of them once the output is 2n-1 or longer);
    loop's second round revisits 0 .. n_out-n-1 (all for longer outputs).
    """
    if when_shorter == "pingpong":
        return max(0, 2 * low_n - 1 - n_out), high_n
    return 0, min(high_n, max(0, n_out - low_n))


def _size(n_bytes: float) -> str:
    """A byte count for people: "57.6 KiB", "4.0 GiB"."""
    for unit in ("bytes", "KiB", "MiB"):
        if n_bytes < 1024:
            return f"{n_bytes:.0f} bytes" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} GiB"


def _spool_threshold(source_frames: int) -> int:
    """Output lengths above this may revisit frames, given probe's count error."""
    slack = max(_COUNT_SLACK_FRAMES, round(source_frames * _COUNT_SLACK_RATIO))
    return max(0, source_frames - slack)
