"""Frame pipes: decode a video to BGR frames, encode BGR frames to an MP4.

Both ends are one owned ffmpeg process (see ``_process``).  Memory stays
bounded: the reader reads exactly one frame's bytes at a time, the writer's
blocking stdin writes hold the producer back when the encoder is behind.
"""

from __future__ import annotations

import subprocess
import threading
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Iterator, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import UNREADABLE_HINT, MediaError
from ..logging import get_logger
from ._process import STOP_GRACE_S, OwnedProcess
from .probe import VideoInfo, ffmpeg_reason
from .safety import ffmpeg_base_args, hardened_input

if TYPE_CHECKING:
    from .frame_spool import FrameSpool

log = get_logger()

#: how long the encoder may take to flush its last frames after stdin closes
FINALISE_TIMEOUT_S = 300.0
#: the mov demuxer's words for data cut off at the end (a truncated upload)
_TRUNCATED_MARK = "partial file"


def output_size(video: VideoInfo, max_height: int) -> tuple[int, int]:
    """(width, height) no taller than ``max_height``, never upscaled, both even.

    H.264 in yuv420p needs even sizes, so odd sources (701x525) lose at most a
    pixel to rounding.
    """
    target = min(video.height, max_height)
    # integer arithmetic: 700 * 360 / 700 must be 360, not 359.99...
    width = video.width * target // (video.height * 2) * 2
    height = target // 2 * 2
    return max(2, width), max(2, height)


def decode_rate(video: VideoInfo) -> str | None:
    """The ``fps_text`` to give FrameReader/FrameSource for this video.

    None (frames one-to-one) for constant-rate video; the probed rate for
    variable-rate video, so ``video.frame_count`` frames come out evenly timed.
    """
    return video.fps_text if video.variable_rate else None


class FrameReader:
    """Decoded frames of one video as (H, W, 3) uint8 BGR arrays, in display orientation.

    ``fps_text`` None keeps the source frames one-to-one (``-fps_mode
    passthrough``: nothing duplicated or dropped); pass ``VideoInfo.fps_text``
    for a variable-rate source to get frames at that constant rate instead.
    """

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        *,
        batch: int = 1,
        fps_text: str | None = None,
        only: Sequence[int] | None = None,
        start: int = 0,
        spool: FrameSpool | None = None,
    ) -> None:
        self.path = Path(path)
        self.size = size
        self.batch = batch
        #: decode every frame but hand out only these (frame numbers after ``fps_text``), in order
        self.only = None if only is None else sorted(set(int(i) for i in only))
        #: the first frame handed out (the ones before it are decoded and dropped inside ffmpeg)
        self.start = start
        #: frames are counted from ``start``: ``frames_read`` is the number handed out
        self.frames_read = 0
        #: keeps each frame's raw bytes for a second pass (media/frame_spool.py)
        self._spool = spool
        # Even sizes travel as yuv420p and become BGR with OpenCV: half the pipe
        # bytes, and cv2's SIMD conversion costs a fraction of swscale's bgr24
        # path (measured at 720p: 6.9 + 2.3 ms a frame instead of 14.8).
        # Both use BT.601 limited range, as swscale does for untagged video.
        self._yuv = size[0] % 2 == 0 and size[1] % 2 == 0
        self._frame_bytes = size[0] * size[1] * 3 // 2 if self._yuv else size[0] * size[1] * 3
        self._raw = np.empty(self._frame_bytes, dtype=np.uint8) if self._yuv else None
        self._proc: OwnedProcess | None = OwnedProcess(self._args(fps_text))
        self._ended = False

    def _args(self, fps_text: str | None) -> list[str]:
        width, height = self.size
        scale = f"scale={width}:{height}:flags=bicubic"
        picked = f"select={_any_of(self.only)}" if self.only is not None else (
            f"trim=start_frame={self.start}" if self.start > 0 else None)
        if picked is not None:
            # selecting inside ffmpeg skips scaling and piping the frames nobody wants
            scale = f"{picked},{scale}"
        if fps_text is not None:
            # Every read of a variable-rate video, whole or picked, takes its constant-rate frames
            # from this one filter, so frame N is the same picture in each (the output option
            # `-fps_mode cfr -r` chose other frames than the filter on 39 of 118 frames of a
            # B-frame or WebM clip, and frame N of the track was then not frame N of the library's
            # read).  start_time=0 pads a video that starts after 0 with its first frame, as the
            # output option did; the filter shows each frame from its own time on (the output
            # option showed some a frame early).
            scale = f"fps={fps_text}:start_time=0,{scale}"
        return [
            "ffmpeg",
            *ffmpeg_base_args(),
            *hardened_input(self.path),
            "-map",
            "0:v:0",
            "-an",
            "-sn",
            "-dn",
            # autorotation is ffmpeg's default: frames come out as displayed
            "-vf",
            scale,
            "-fps_mode",
            "passthrough",
            "-pix_fmt",
            "yuv420p" if self._yuv else "bgr24",
            "-f",
            "rawvideo",
            "pipe:1",
        ]

    # -- reading -----------------------------------------------------------------
    def read(self) -> NDArray[np.uint8] | None:
        """The next frame, or None at the end of the video."""
        frame = np.empty((self.size[1], self.size[0], 3), dtype=np.uint8)
        return frame if self.read_into(frame) else None

    def read_batch(self, n: int) -> NDArray[np.uint8]:
        """Up to ``n`` frames as (k, H, W, 3); fewer at the end, (0, H, W, 3) after it."""
        frames = np.empty((n, self.size[1], self.size[0], 3), dtype=np.uint8)
        count = 0
        while count < n and self.read_into(frames[count]):
            count += 1
        return frames if count == n else frames[:count].copy()

    def __iter__(self) -> Iterator[NDArray[np.uint8]]:
        while (frame := self.read()) is not None:
            yield frame

    def read_into(self, frame: NDArray[np.uint8]) -> bool:
        """The next frame into ``frame`` ((H, W, 3) uint8); False at the end of the video."""
        if self._ended or self._proc is None:
            return False
        if self._raw is not None:
            if not self._read_raw(self._raw.data):
                return False
            width, height = self.size
            cv2.cvtColor(self._raw.reshape(height * 3 // 2, width), cv2.COLOR_YUV2BGR_I420, dst=frame)
            return True
        return self._read_raw(frame.reshape(-1).data)

    def _read_raw(self, view: memoryview) -> bool:
        assert self._proc is not None  # _read_into checked
        filled = 0
        while filled < self._frame_bytes:
            got = self._proc.stdout.readinto(view[filled:])
            if not got:
                self._finish(partial=filled > 0)
                return False
            filled += got
        if self._spool is not None and self.only is None:
            self._spool.offer(view, self.start + self.frames_read)
        self.frames_read += 1
        return True

    def _finish(self, *, partial: bool) -> None:
        """End of the pipe: ffmpeg must have ended cleanly and the file be whole."""
        self._ended = True
        assert self._proc is not None
        code = self._proc.wait(timeout=FINALISE_TIMEOUT_S)
        tail = self._proc.stderr_tail()
        if code != 0 or partial:
            # ffmpeg's words are for the log; people get what they can do about it
            log.info("video_undecodable", file=self.path.name,
                     ffmpeg=ffmpeg_reason(tail, self.path) or f"exit code {code}")
            raise MediaError(f"{self.path.name} could not be decoded.", hint=UNREADABLE_HINT)
        if _TRUNCATED_MARK in tail:
            raise MediaError(
                f"{self.path.name} is incomplete (the file ends early): {tail.splitlines()[-1]}",
                hint="Copy the whole file into the job folder again.",
            )

    # -- lifetime ----------------------------------------------------------------
    def kill(self) -> None:
        """SIGKILL the decoder from any thread: a read blocked on it ends; ``close`` still cleans up."""
        proc = self._proc
        if proc is not None:
            proc.kill()

    def close(self) -> None:
        """Stop ffmpeg (if still decoding) and its stderr thread."""
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _any_of(frames: list[int]) -> str:
    """A select expression true on these frame numbers, as a balanced sum: ffmpeg's parser
    refuses a flat chain of ~120 terms, a balanced tree of thousands is fine."""
    if not frames:
        return "0"
    if len(frames) == 1:
        return f"eq(n\\,{frames[0]})"
    middle = len(frames) // 2
    return f"({_any_of(frames[:middle])}+{_any_of(frames[middle:])})"


def _audio_filter(duration_s: float, pad_audio: bool) -> str:
    """Audio cut to ``duration_s``, padded with silence up to it when asked.

    The cut is done here rather than with an output ``-t``: ``-t`` makes ffmpeg
    stop reading stdin at the limit, and the last frame's write would then
    fail with a broken pipe.
    """
    steps = ["aformat=sample_rates=48000:channel_layouts=mono|stereo"]
    if pad_audio:
        steps.append(f"apad=whole_dur={duration_s:.6f}")
    steps.append(f"atrim=end={duration_s:.6f}")
    return ",".join(steps)


class FrameWriter:
    """Encode BGR frames plus an audio file into an H.264/AAC MP4 at ``path``.

    The output lasts ``duration_s``: the video holds round(duration_s * fps)
    frames (extra frames written are dropped), the audio is cut there and, with
    ``pad_audio``, followed by silence up to it.  On failure, or when the
    ``with`` block raises, ffmpeg is killed and the partial file removed.
    """

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        fps_text: str,
        *,
        audio_path: Path | None,
        duration_s: float,
        crf: int,
        preset: str,
        pad_audio: bool,
        threads: int = 0,
    ) -> None:
        if size[0] % 2 or size[1] % 2:
            raise ValueError(f"H.264 needs an even frame size, got {size[0]}x{size[1]}")
        self.path = Path(path)
        self.size = size
        self._audio_path = audio_path
        self.frames_written = 0
        self._yuv: NDArray[np.uint8] | None = None
        self.max_frames = max(1, round(duration_s * float(Fraction(fps_text))))
        args = self._args(fps_text, audio_path, duration_s, crf, preset, pad_audio, threads)
        self._proc: OwnedProcess | None = OwnedProcess(args, stdin=True, stdout=False)

    def _args(
        self, fps_text: str, audio_path: Path | None, duration_s: float, crf: int, preset: str, pad_audio: bool,
        threads: int,
    ) -> list[str]:
        width, height = self.size
        # frames are converted to yuv420p with OpenCV before the pipe (see FrameReader)
        video_in = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-framerate", fps_text]
        args = ["ffmpeg", *ffmpeg_base_args(), "-y", *video_in, "-i", "pipe:0"]
        if audio_path is not None:
            args += [*hardened_input(audio_path), "-map", "0:v:0", "-map", "1:a:0"]
            args += ["-af", _audio_filter(duration_s, pad_audio), "-c:a", "aac", "-b:a", "128k", "-ar", "48000"]
        else:
            args += ["-map", "0:v:0", "-an"]
        args += [
            "-c:v", "libx264", "-preset", preset, "-crf", str(crf),
            # 0: x264's own count; start-up decides it (runtime.encoder_threads)
            "-threads", str(threads),
            # crf 0 (allowed by the settings) is lossless, which x264 refuses under "high"
            "-profile:v", "high444" if crf == 0 else "high", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart",
            "-f", "mp4",
            "file:" + str(self.path.absolute()),
        ]  # fmt: skip
        return args

    def write(self, frames: NDArray[np.uint8]) -> None:
        """Encode one frame (H, W, 3) or a batch (B, H, W, 3); blocks while ffmpeg is busy."""
        if self._proc is None:
            raise MediaError(f"{self.path.name}: the encoder is already closed.")
        expected = (self.size[1], self.size[0], 3)
        if frames.shape[-3:] != expected or frames.dtype != np.uint8 or frames.ndim not in (3, 4):
            raise ValueError(f"frames must be uint8 {expected} or a batch of them, got {frames.dtype} {frames.shape}")
        batch = frames if frames.ndim == 4 else frames[None]
        room = self.max_frames - self.frames_written
        if room <= 0:
            return
        width, height = self.size
        if self._yuv is None:
            # one buffer for every frame: a fresh 1.4 MB array per 720p frame cost its page faults each time
            self._yuv = np.empty((height * 3 // 2, width), dtype=np.uint8)
        for frame in batch[:room]:
            yuv = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGR2YUV_I420, dst=self._yuv)
            try:
                self._proc.stdin.write(yuv.reshape(-1).data)
            except (BrokenPipeError, ValueError) as err:
                raise self._failure("the encoder stopped early") from err
            self.frames_written += 1

    def close(self) -> None:
        """Finish the file; raise MediaError (and remove the file) if ffmpeg failed."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg already ended; its exit code tells why
            try:
                code = proc.wait(timeout=FINALISE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = -1
            if code == 0 and self.frames_written < self.max_frames:
                log.warning(
                    "video_shorter_than_planned", file=self.path.name, frames=self.frames_written, planned=self.max_frames
                )
            if code != 0:
                reason = self._reason(proc.stderr_tail()) or f"ffmpeg exit code {code}"
                raise MediaError(f"{self.path.name} could not be written: {reason}")
        except BaseException:
            proc.stop()
            self._remove_partial()
            raise
        proc.stop()

    def kill(self) -> None:
        """SIGKILL the encoder from any thread: a write blocked on it fails; ``abort`` still cleans up."""
        proc = self._proc
        if proc is not None:
            proc.kill()

    def abort(self) -> None:
        """Kill the encoder and remove what it wrote."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()
        self._remove_partial()

    def _failure(self, what: str) -> MediaError:
        proc, self._proc = self._proc, None
        tail = ""
        if proc is not None:
            try:
                # it closed its stdin because it is ending: let it say why
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
            proc.stop()
            tail = self._reason(proc.stderr_tail())
        self._remove_partial()
        detail = f"{what}: {tail}" if tail else f"{what}."
        return MediaError(f"{self.path.name} could not be written: {detail}")

    def _reason(self, tail: str) -> str:
        paths = [self.path] if self._audio_path is None else [self.path, Path(self._audio_path)]
        return ffmpeg_reason(tail, *paths)

    def _remove_partial(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


#: a sampled frame is read by a fast seek: a hostile file must not hold validate longer
_SAMPLE_TIMEOUT_S = 30.0


def sample_frames(path: Path, video: VideoInfo, *, count: int = 8, max_side: int = 640) -> list[NDArray[np.uint8]]:
    """``count`` frames spread evenly over the video (BGR uint8, as displayed, the
    longer side at most ``max_side``).  Each is read after a fast seek, so checking a
    long video costs no more than a short one; frames that can't be read are left out."""
    scale = min(1.0, max_side / max(video.width, video.height))
    size = (max(2, round(video.width * scale) // 2 * 2), max(2, round(video.height * scale) // 2 * 2))
    frames = []
    for index in range(count):
        frame = _frame_at(path, video.duration_s * (index + 0.5) / count, size)
        if frame is not None:
            frames.append(frame)
    return frames


def _frame_at(path: Path, at_s: float, size: tuple[int, int]) -> NDArray[np.uint8] | None:
    width, height = size
    args = [
        "ffmpeg", *ffmpeg_base_args(), "-ss", f"{at_s:.3f}", *hardened_input(path),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v", "1",
        "-vf", f"scale={width}:{height}", "-pix_fmt", "bgr24", "-f", "rawvideo", "pipe:1",
    ]  # fmt: skip
    frame = np.empty((height, width, 3), dtype=np.uint8)
    view, filled = frame.data.cast("B"), 0
    proc = OwnedProcess(args)
    try:
        timer = _Timeout(proc, _SAMPLE_TIMEOUT_S)
        try:
            # the pipe is unbuffered: one read returns what is there, not a whole frame
            while filled < len(view) and (got := proc.stdout.readinto(view[filled:])):
                filled += got
        finally:
            timer.cancel()
    finally:
        proc.stop()
    return frame if filled == len(view) else None


class _Timeout:
    """Kills ``proc`` after ``seconds``, which ends a blocking read of its output."""

    def __init__(self, proc: OwnedProcess, seconds: float) -> None:
        self._timer = threading.Timer(seconds, proc.proc.kill)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()
