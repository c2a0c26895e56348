"""decode_audio and file_digest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from heygem_daemon.errors import LimitExceededError, MediaError
from heygem_daemon.media import decode_audio, file_digest
from heygem_daemon.settings import LimitSettings


def test_decode_speech_wav(media_dir: Path, limits: LimitSettings) -> None:
    """audio_1.wav (44.1 kHz stereo) decodes to ~5.0 s of 16 kHz mono float32 within [-1, 1]."""
    clip = decode_audio(media_dir / "audio_1.wav", limits, digest="abc")
    assert (16_000, np.dtype(np.float32), 1, "abc") == (
        clip.sample_rate,
        clip.samples.dtype,
        clip.samples.ndim,
        clip.digest,
    )
    assert clip.duration_s == pytest.approx(5.0, abs=0.05)
    assert -1.0 <= float(clip.samples.min()) and float(clip.samples.max()) <= 1.0
    assert float(np.abs(clip.samples).max()) > 0.1  # speech, not silence


def test_decode_audio_track_of_a_video(media_dir: Path, limits: LimitSettings) -> None:
    """The sound track of a video file decodes like an audio file."""
    clip = decode_audio(media_dir / "face_1.mp4", limits)
    assert clip.duration_s == pytest.approx(6.1, abs=0.05)


def test_only_the_start_is_decoded_when_asked(media_dir: Path, limits: LimitSettings) -> None:
    """max_seconds decodes just the start of a sound track (an avatar's own voice), equal to the full decode there."""
    start = decode_audio(media_dir / "talk_en_40s.mp4", limits, digest="x", max_seconds=3.0)
    assert start.duration_s == pytest.approx(3.0, abs=0.01)
    whole = decode_audio(media_dir / "talk_en_40s.mp4", limits, digest="x")
    np.testing.assert_allclose(start.samples[:16_000], whole.samples[:16_000], atol=1e-4)


def test_tone_is_decoded_faithfully(make_tone, limits: LimitSettings) -> None:
    """A 440 Hz tone keeps its pitch: its spectrum peaks at 440 Hz."""
    clip = decode_audio(make_tone(seconds=1.0, rate=48000), limits)
    spectrum = np.abs(np.fft.rfft(clip.samples))
    peak_hz = np.argmax(spectrum) * clip.sample_rate / len(clip.samples)
    assert peak_hz == pytest.approx(440, abs=2)


def test_video_without_sound(make_video, limits: LimitSettings) -> None:
    """A file with no audio track is a MediaError saying so."""
    with pytest.raises(MediaError, match="no sound track"):
        decode_audio(make_video(audio=False), limits)


def test_audio_over_duration_limit(make_tone) -> None:
    """Audio longer than limits.max_duration_s is refused, naming the setting."""
    with pytest.raises(LimitExceededError, match="limits.max_duration_s"):
        decode_audio(make_tone(seconds=3.0), LimitSettings(max_duration_s=2.0))


def test_corrupt_audio(tmp_path: Path, limits: LimitSettings) -> None:
    """A file that is not audio is a MediaError."""
    junk = tmp_path / "voice.wav"
    junk.write_bytes(b"RIFF" + bytes(200))
    with pytest.raises(MediaError):
        decode_audio(junk, limits)


def test_file_digest_is_sha256_of_content(tmp_path: Path) -> None:
    """file_digest equals hashlib's sha256 of the bytes, across chunk boundaries."""
    data = bytes(range(256)) * 9000  # > 2 MiB
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert hashlib.sha256(data).hexdigest() == file_digest(path)


def test_a_decoded_clip_carries_the_files_content_digest(media_dir, limits):
    """Without an explicit digest the clip is keyed by the file's sha256 (feature caches use it)."""
    path = media_dir / "audio_1.wav"
    assert file_digest(path) == decode_audio(path, limits).digest
