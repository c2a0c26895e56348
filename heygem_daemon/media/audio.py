"""Decode a job's voice once: ffmpeg -> 16 kHz mono float32 in [-1, 1]."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..logging import get_logger
from ..types import SAMPLE_RATE, AudioClip
from ..errors import UNREADABLE_HINT, LimitExceededError, MediaError, duration_text, raise_setting
from ..settings import LimitSettings
from ._process import OwnedProcess
from .probe import ffmpeg_reason, probe
from .safety import ffmpeg_base_args, hardened_input

log = get_logger()

_DIGEST_CHUNK = 1024 * 1024
#: pipe reads of 64 k samples (256 KiB)
_READ_SAMPLES = 64 * 1024


def file_digest(path: Path) -> str:
    """sha256 of the file's content, read in 1 MiB chunks (cache key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_DIGEST_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def decode_audio(path: Path, limits: LimitSettings, *, digest: str | None = None,
                 max_seconds: float | None = None) -> AudioClip:
    """The first audio track of ``path`` as an AudioClip.

    The whole clip is held in memory: it is the job's one shared input and the
    duration limit bounds it (2 h at 16 kHz float32 is 460 MB).  ``digest``
    defaults to the file's content hash, which keys the engines' feature caches
    (the same voice in another job, or a retry, is not analysed again).
    """
    path = Path(path)
    info = probe(path, limits)
    if digest is None:
        digest = _digest(path)
    if info.audio is None:
        raise MediaError(f"{path.name} has no sound track.", hint="Put a voice recording in the job folder.")
    cap = int(limits.max_duration_s * SAMPLE_RATE) + SAMPLE_RATE
    guess = min(cap, int(info.duration_s * SAMPLE_RATE) + SAMPLE_RATE)
    if max_seconds is not None:  # only the start is wanted (an avatar's own voice)
        guess = min(guess, int(max_seconds * SAMPLE_RATE) + SAMPLE_RATE)
    samples = _read_samples(path, guess, cap, max_seconds)
    if samples.size == 0:
        raise MediaError(f"{path.name} holds no sound samples that could be decoded.")
    np.clip(samples, -1.0, 1.0, out=samples)
    log.debug("audio_decoded", file=path.name, seconds=round(samples.size / SAMPLE_RATE, 3))
    return AudioClip(samples=samples, sample_rate=SAMPLE_RATE, digest=digest)


def _digest(path: Path) -> str:
    try:
        return file_digest(path)
    except OSError as exc:  # probed a moment ago: it was removed or became unreadable since
        raise MediaError(f"{path.name} could not be read: {exc.strerror or exc}.") from exc


def _args(path: Path, max_seconds: float | None = None) -> list[str]:
    return [
        "ffmpeg",
        *ffmpeg_base_args(),
        *hardened_input(path),
        "-map", "0:a:0",
        "-vn", "-sn", "-dn",
        "-ac", "1",
        "-ar", str(SAMPLE_RATE),
        *(["-t", f"{max_seconds:.3f}"] if max_seconds is not None else []),
        "-f", "f32le",
        "pipe:1",
    ]  # fmt: skip


def _read_samples(path: Path, guess: int, cap: int, max_seconds: float | None = None) -> NDArray[np.float32]:
    """Read the pipe straight into a float32 array that grows (to ``cap``) if needed."""
    buffer = np.empty(max(guess, _READ_SAMPLES), dtype=np.float32)
    filled = 0  # bytes
    proc = OwnedProcess(_args(path, max_seconds))
    try:
        while True:
            if filled + 4 * _READ_SAMPLES > buffer.nbytes:
                buffer = _grow(buffer, cap, path)
            got = proc.stdout.readinto(buffer.data.cast("B")[filled : filled + 4 * _READ_SAMPLES])
            if not got:
                break
            filled += got
        code = proc.wait()
        tail = proc.stderr_tail()
    finally:
        proc.stop()
    if code != 0:
        # ffmpeg's words are for the log; people get what they can do about it
        log.info("audio_undecodable", file=path.name, ffmpeg=ffmpeg_reason(tail, path) or f"exit code {code}")
        raise MediaError(f"{path.name} could not be decoded.", hint=UNREADABLE_HINT)
    if "partial file" in tail:
        raise MediaError(f"{path.name} is incomplete (the file ends early).", hint="Copy the whole file again.")
    count = filled // 4
    # a tight guess keeps the buffer; a loose one is copied so the slack is freed
    return buffer[:count] if count >= 0.9 * buffer.size else buffer[:count].copy()


def _grow(buffer: NDArray[np.float32], cap: int, path: Path) -> NDArray[np.float32]:
    if buffer.size >= cap + _READ_SAMPLES:
        raise LimitExceededError(
            f"{path.name} lasts longer than the limit of {duration_text(cap // SAMPLE_RATE - 1)} (h:mm:ss).",
            key="limits.max_duration_s",
            hint=f"Use a shorter recording. {raise_setting('limits.max_duration_s')}",
        )
    bigger = np.empty(min(cap + _READ_SAMPLES, int(buffer.size * 1.5) + _READ_SAMPLES), dtype=np.float32)
    bigger[: buffer.size] = buffer
    return bigger
