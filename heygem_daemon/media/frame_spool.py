"""Decoded frames kept in memory for a second pass over the same video.

A new avatar is read twice: the analysis tracks its frames and builds its mouth
library, then the render pass needs the same frames again.  Decoding them
twice (and a third time for the library's picked frames) was a fifth of the
first job's CPU on two cores.  The first pass hands each frame's raw bytes,
as they came out of ffmpeg (yuv420p: half of BGR), to a ``FrameSpool``; later
passes read them back with :class:`SpooledReader`, which goes on with a
decoder started where the spool ends when the video is longer than what was
kept.  The spool is bounded in bytes (frames past the cap are not kept, so
memory does not grow with the video's length) and freed when its owner
closes it.

Why memory and not a file: on a disk file system the same writes cost 1–5×
the CPU (page-cache writeback and journalling of data read once and deleted;
0.16–0.75 s against a steady 0.15 s for 200 frames of 720p on the 2-core box),
and a file outlives a killed process.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from types import TracebackType
from typing import Iterator, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import MediaError
from .frames import FrameReader

#: at most this much memory per spool: 15 s of 720p at 25 frames/s, 6 s of 1080p at 30 (avatar
#: clips are mostly this short; a longer one is decoded again); pages are taken only as frames
#: arrive, so a short clip takes only what it needs
FRAME_SPOOL_MAX_BYTES = 512 * 1024**2


class FrameSpool:
    """Frames 0, 1, … of one video at one size, in the decoder's pixel format, in anonymous memory."""

    def __init__(self, size: tuple[int, int], *, choices: Sequence[int] = (), max_bytes: int | None = None) -> None:
        """``choices``: frame counts a second pass could use, best first; the first that fits the cap is
        kept whole, or (none fits) nothing, so that memory is spent only where it saves a whole decode
        (a 1-minute 1080p avatar kept its first 172 frames for 440 MB more peak RSS and a 6 % faster
        job).  No choices: as many as the cap holds."""
        max_bytes = FRAME_SPOOL_MAX_BYTES if max_bytes is None else max_bytes
        self.size = size
        #: frames travel as yuv420p when both sides are even (FrameReader), else as BGR
        self.yuv = size[0] % 2 == 0 and size[1] % 2 == 0
        self.frame_bytes = size[0] * size[1] * 3 // 2 if self.yuv else size[0] * size[1] * 3
        room = max(0, max_bytes // self.frame_bytes)
        self.capacity = next((n for n in choices if n <= room), 0) if choices else room
        #: frames kept so far (always the first ones)
        self.count = 0
        #: the video has no frames after the ones kept (set by whoever decoded them)
        self.whole = False
        # address space only: the kernel gives pages as they are first written
        self._memory: mmap.mmap | None = mmap.mmap(-1, self.capacity * self.frame_bytes) if self.capacity else None
        self._frames: NDArray[np.uint8] | None = None
        if self._memory is not None:
            self._frames = np.frombuffer(self._memory, dtype=np.uint8).reshape(self.capacity, self.frame_bytes)

    def offer(self, raw: memoryview, index: int) -> None:
        """Keep decoded frame ``index`` if it is the next one and the cap allows."""
        if self._frames is None or index != self.count or self.count >= self.capacity:
            return
        self._frames[self.count] = np.frombuffer(raw, dtype=np.uint8)
        self.count += 1

    def covers(self, frames: int) -> bool:
        """Whether the first ``frames`` frames are all kept."""
        return self._frames is not None and frames <= self.count

    def read_into(self, index: int, frame: NDArray[np.uint8]) -> None:
        """Kept frame ``index`` as BGR into ``frame`` ((H, W, 3) uint8)."""
        if self._frames is None or not 0 <= index < self.count:
            raise MediaError(f"frame {index} is not in the frame spool.")
        kept = self._frames[index]
        if self.yuv:
            width, height = self.size
            cv2.cvtColor(kept.reshape(height * 3 // 2, width), cv2.COLOR_YUV2BGR_I420, dst=frame)
        else:
            frame.reshape(-1)[:] = kept

    def close(self) -> None:
        """Give the memory back."""
        self._frames = None  # the mmap refuses to close while an array still exports it
        if self._memory is not None:
            self._memory.close()
            self._memory = None
        self.count = 0

    def __enter__(self) -> FrameSpool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SpooledReader:
    """A FrameReader's frames, the first ones from a spool: reads the kept frames back, then (unless
    the spool holds the whole video) decodes the rest with ffmpeg from the first frame not kept."""

    def __init__(self, spool: FrameSpool, path: Path, *, fps_text: str | None = None) -> None:
        self.spool = spool
        self.path = Path(path)
        self.size = spool.size
        self.frames_read = 0
        self._fps_text = fps_text
        self._rest: FrameReader | None = None

    def read(self) -> NDArray[np.uint8] | None:
        """The next frame, or None at the end of the video."""
        frame = np.empty((self.size[1], self.size[0], 3), dtype=np.uint8)
        return frame if self.read_into(frame) else None

    def __iter__(self) -> Iterator[NDArray[np.uint8]]:
        while (frame := self.read()) is not None:
            yield frame

    def read_into(self, frame: NDArray[np.uint8]) -> bool:
        """The next frame into ``frame`` ((H, W, 3) uint8); False at the end of the video."""
        if self.frames_read < self.spool.count:
            self.spool.read_into(self.frames_read, frame)
        elif self.spool.whole:
            return False
        else:
            if self._rest is None:
                self._rest = FrameReader(self.path, self.size, fps_text=self._fps_text, start=self.spool.count)
            if not self._rest.read_into(frame):
                return False
        self.frames_read += 1
        return True

    def kill(self) -> None:
        if self._rest is not None:
            self._rest.kill()

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()
            self._rest = None
