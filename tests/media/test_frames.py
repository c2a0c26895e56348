"""FrameReader and FrameWriter: decoding and encoding through owned ffmpeg pipes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import psutil
import pytest
from structlog.testing import capture_logs

from heygem_daemon.errors import MediaError
from heygem_daemon.media import FrameReader, FrameWriter, VideoInfo, decode_rate, output_size, probe
from heygem_daemon.settings import LimitSettings


def _info(width: int, height: int) -> VideoInfo:
    return VideoInfo(width, height, 25.0, "25/1", 25, 1.0, 0, "h264", "yuv420p")


@pytest.mark.parametrize(
    ("source", "max_height", "expected"),
    [
        ((700, 700), 1080, (700, 700)),
        ((1920, 1080), 720, (1280, 720)),
        ((1080, 1920), 1080, (606, 1080)),
        ((701, 525), 1080, (700, 524)),
        ((640, 360), 2160, (640, 360)),
        ((700, 700), 360, (360, 360)),
        ((703, 525), 1079, (702, 524)),
    ],
)
def test_output_size(source: tuple[int, int], max_height: int, expected: tuple[int, int]) -> None:
    """Downscale to max_height, never upscale, keep the aspect, both sides even."""
    assert expected == output_size(_info(*source), max_height)


def _writer(
    path: Path, size: tuple[int, int], duration_s: float, audio: Path | None, pad: bool = False
) -> FrameWriter:
    # veryfast, the default preset: ultrafast drops the High-profile features
    return FrameWriter(
        path, size, "25/1", audio_path=audio, duration_s=duration_s, crf=20, preset="veryfast", pad_audio=pad
    )


def test_variable_rate_video_decodes_to_probed_count(media_dir: Path, limits: LimitSettings) -> None:
    """face_1.mp4 is variable-rate (135 stored frames over 6.1 s): read at 30 fps it gives ~183 frames."""
    video = probe(media_dir / "face_1.mp4", limits).video
    assert video is not None and video.variable_rate
    with FrameReader(media_dir / "face_1.mp4", (64, 64), fps_text=decode_rate(video)) as reader:
        count = len(reader.read_batch(1000))
    assert abs(count - video.frame_count) <= 2
    with FrameReader(media_dir / "face_1.mp4", (64, 64)) as reader:
        assert 135 == len(reader.read_batch(1000))


def test_reader_yields_every_frame_once(make_video) -> None:
    """A 1 s 25 fps clip gives exactly 25 BGR frames of the requested size."""
    with FrameReader(make_video(), (80, 60)) as reader:
        frames = list(reader)
    assert 25 == len(frames)
    assert [(60, 80, 3)] * 25 == [f.shape for f in frames]
    assert {np.dtype(np.uint8)} == {f.dtype for f in frames}


def test_reader_hands_out_only_the_chosen_frames(media_dir: Path) -> None:
    """``only`` gives exactly those frame numbers (121 of them, more than a flat ffmpeg expression
    allows), and each is the frame a full decode gives at that number."""
    with FrameReader(media_dir / "face_1.mp4", (96, 96)) as reader:
        every = reader.read_batch(1000)
    chosen = list(range(0, 120)) + [130, 3]
    with FrameReader(media_dir / "face_1.mp4", (96, 96), only=chosen) as reader:
        picked = reader.read_batch(1000)
    assert 121 == len(picked)
    assert np.array_equal(every[sorted(set(chosen))], picked)


@pytest.fixture
def b_frame_variable_rate(run_ffmpeg, tmp_path: Path) -> Path:
    """A variable-rate clip with B-frames: 30 fps testsrc2 with 2 of every 15 frames kept at their own
    times (0, 0.1, 0.167, 0.2, 0.3, 0.333 s ...), so many of its frames fall exactly on 30 fps ticks."""
    out = tmp_path / "vfr.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x96:r=30:d=4", "-vf", r"select='not(mod(n\,3))+not(mod(n\,5))'",
               "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "medium", "-bf", "3", "-pix_fmt", "yuv420p", str(out))
    return out


def test_every_read_of_a_variable_rate_video_gives_frame_n_the_same_picture(
    b_frame_variable_rate: Path, limits: LimitSettings
) -> None:
    """The whole read, a read of picked frames (the mouth library) and a read from frame N on (the
    render pass past its kept frames) agree on every frame number: a face tracked on frame N is
    pasted from, and drawn into, that very picture.  (ffmpeg's output rate option and its fps filter
    chose different frames for 39 of this clip's 118.)"""
    video = probe(b_frame_variable_rate, limits).video
    assert video is not None and video.variable_rate
    rate = decode_rate(video)
    with FrameReader(b_frame_variable_rate, (96, 96), fps_text=rate) as reader:
        every = reader.read_batch(1000)
    assert video.frame_count == len(every)
    chosen = [0, 1, 2, 5, 6, 9, 10, 40, 77, len(every) - 1]
    with FrameReader(b_frame_variable_rate, (96, 96), fps_text=rate, only=chosen) as reader:
        assert np.array_equal(every[chosen], reader.read_batch(1000))
    with FrameReader(b_frame_variable_rate, (96, 96), fps_text=rate, start=50) as reader:
        assert np.array_equal(every[50:], reader.read_batch(1000))


def test_a_variable_rate_frame_is_shown_from_its_own_time_on(b_frame_variable_rate: Path, limits: LimitSettings) -> None:
    """Output frame i (at i/30 s) is the last stored frame due by then, never the next one early."""
    video = probe(b_frame_variable_rate, limits).video
    assert video is not None
    with FrameReader(b_frame_variable_rate, (96, 96)) as reader:
        stored = reader.read_batch(1000)  # one-to-one: 2 of every 15 source frames, in order
    times = np.array([n / 30 for n in range(120) if n % 3 == 0 or n % 5 == 0])
    assert len(times) == len(stored)
    with FrameReader(b_frame_variable_rate, (96, 96), fps_text=decode_rate(video)) as reader:
        shown = reader.read_batch(1000)
    for i, frame in enumerate(shown):
        due = int(np.searchsorted(times, i / 30 + 1e-6, side="right")) - 1
        assert np.array_equal(stored[due], frame), f"frame {i}"


def test_read_batch_shrinks_at_the_end(make_video) -> None:
    """read_batch returns full batches, then the rest, then an empty batch."""
    with FrameReader(make_video(), (32, 24)) as reader:
        sizes = [len(reader.read_batch(10)) for _ in range(4)]
        assert (0, 24, 32, 3) == reader.read_batch(10).shape
    assert [10, 10, 5, 0] == sizes


def test_reader_applies_rotation(make_video, run_ffmpeg, tmp_path: Path, limits: LimitSettings) -> None:
    """Frames of a rotated clip come out as displayed: turned by probe's (counter-clockwise) rotation."""
    stored = make_video("stored.mp4", size="160x120")
    rotated = tmp_path / "rotated.mp4"
    run_ffmpeg("-i", str(stored), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    video = probe(rotated, limits).video
    assert video is not None and (120, 160) == (video.width, video.height)
    with FrameReader(stored, (160, 120)) as reader:
        picture = reader.read().astype(int)
    with FrameReader(rotated, (120, 160)) as reader:
        shown = reader.read().astype(int)
    turned = np.rot90(picture, k=video.rotation // 90)
    assert np.abs(turned - shown).mean() < 3
    assert np.abs(np.rot90(turned, k=2) - shown).mean() > 30


def test_reader_closed_early_leaves_no_process(media_dir: Path) -> None:
    """Closing a reader after one frame ends its ffmpeg child and stderr thread."""
    reader = FrameReader(media_dir / "face_1.mp4", (700, 700))
    pid = reader._proc.proc.pid
    assert reader.read() is not None
    reader.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_reader_on_corrupt_file(tmp_path: Path) -> None:
    """A file ffmpeg cannot open is a MediaError saying what to do; ffmpeg's reason goes to the log."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4000))
    with capture_logs() as logs, FrameReader(junk, (64, 64)) as reader, pytest.raises(MediaError) as caught:
        reader.read()
    assert str(caught.value).startswith("junk.mp4 could not be decoded. The file may be incomplete (copy it again)")
    [logged] = [row for row in logs if row["event"] == "video_undecodable"]
    assert logged["ffmpeg"]


def test_reader_on_truncated_faststart_file(media_dir: Path, run_ffmpeg, tmp_path: Path) -> None:
    """An MP4 cut short (index at the front, data missing) is a MediaError, not a short video."""
    whole = tmp_path / "whole.mp4"
    run_ffmpeg("-i", str(media_dir / "face_1.mp4"), "-c", "copy", "-movflags", "+faststart", str(whole))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with FrameReader(cut, (64, 64)) as reader, pytest.raises(MediaError, match="incomplete"):
        list(reader)


def test_odd_sized_input_encodes_to_even_output(run_ffmpeg, tmp_path: Path, limits: LimitSettings) -> None:
    """A 701x525 video is read at 700x524 and encodes to a valid H.264 file of that size."""
    odd = tmp_path / "odd.mkv"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=701x525:r=25:d=0.4", "-c:v", "ffv1", str(odd))
    info = probe(odd, limits)
    assert info.video is not None
    size = output_size(info.video, 1080)
    out = tmp_path / "out.mp4"
    with FrameReader(odd, size) as reader, _writer(out, size, 0.4, None) as writer:
        for frame in reader:
            writer.write(frame)
    written = probe(out, limits)
    assert written.video is not None
    video = written.video
    assert ((700, 524), "h264", 10) == ((video.width, video.height), video.codec, video.frame_count)


def _video_profile(path: Path) -> str:
    """The H.264 profile ffprobe reports (the library's probe does not need it)."""
    args = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=profile", "-of", "csv=p=0"]
    return subprocess.run([*args, str(path)], capture_output=True, text=True, check=True).stdout.strip()


def _atom_order(data: bytes) -> list[bytes]:
    """Top-level MP4 box types in file order."""
    order, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        order.append(kind)
        if size < 8:
            break
        pos += size
    return order


def test_writer_output_is_h264_aac_faststart_with_padded_audio(
    make_video, make_tone, tmp_path: Path, limits: LimitSettings
) -> None:
    """2 s of frames with a 1 s tone and pad_audio: H.264 high + AAC 48 kHz, 2 s long, moov before mdat."""
    out = tmp_path / "out.mp4"
    with FrameReader(make_video(seconds=1.0), (160, 120)) as reader:
        frames = reader.read_batch(25)
    with _writer(out, (160, 120), 2.0, make_tone(seconds=1.0), pad=True) as writer:
        writer.write(frames)
        writer.write(frames)
    info = probe(out, limits)
    assert info.video is not None and info.audio is not None
    assert ("h264", "aac", 48000) == (info.video.codec, info.audio.codec, info.audio.sample_rate)
    assert info.video.duration_s == pytest.approx(2.0, abs=1 / 25)
    assert info.audio.duration_s == pytest.approx(2.0, abs=1 / 25)
    atoms = _atom_order(out.read_bytes())
    assert atoms.index(b"moov") < atoms.index(b"mdat")
    assert "High" == _video_profile(out)


def test_writer_cuts_to_duration(make_video, make_tone, tmp_path: Path, limits: LimitSettings) -> None:
    """Frames and audio beyond duration_s are dropped; the output lasts duration_s within a frame."""
    out = tmp_path / "out.mp4"
    with FrameReader(make_video(seconds=1.0), (160, 120)) as reader:
        frames = reader.read_batch(25)
    with _writer(out, (160, 120), 0.6, make_tone(seconds=3.0)) as writer:
        writer.write(frames)
    info = probe(out, limits)
    assert info.video is not None and info.audio is not None
    assert 15 == info.video.frame_count
    assert info.duration_s == pytest.approx(0.6, abs=1 / 25)
    assert info.audio.duration_s == pytest.approx(0.6, abs=1 / 25)


def test_the_encoder_runs_the_threads_it_is_given(tmp_path: Path) -> None:
    """threads=2: libx264 encodes with two (its settings, written into the stream, say so); 0 leaves
    x264's own count, which on a machine of at least two CPUs is more than one."""
    import os
    import re

    frames = np.random.default_rng(0).integers(0, 256, (10, 240, 320, 3), dtype=np.uint8)
    used = {}
    for threads in (2, 0):
        out = tmp_path / f"t{threads}.mp4"
        with FrameWriter(out, (320, 240), "25/1", audio_path=None, duration_s=0.4, crf=20, preset="veryfast",
                         pad_audio=False, threads=threads) as writer:
            writer.write(frames)
        found = re.search(rb"threads=(\d+) ", out.read_bytes())  # x264's SEI: "... options: ... threads=N ..."
        assert found is not None
        used[threads] = int(found.group(1))
    assert 2 == used[2]
    if len(os.sched_getaffinity(0)) >= 2:
        assert used[0] > 1


def test_writer_removes_partial_file_on_exception(tmp_path: Path) -> None:
    """An exception inside the with block kills the encoder and removes the file."""
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), _writer(out, (64, 48), 1.0, None) as writer:
        writer.write(np.zeros((5, 48, 64, 3), np.uint8))
        raise RuntimeError("engine failed")
    assert not out.exists()


def test_writer_with_unreadable_audio_fails_cleanly(tmp_path: Path) -> None:
    """A broken audio input is a MediaError from the writer and leaves no file."""
    junk = tmp_path / "voice.wav"
    junk.write_bytes(b"not audio at all" * 100)
    out = tmp_path / "out.mp4"
    frames = np.zeros((25, 48, 64, 3), np.uint8)
    with pytest.raises(MediaError, match="out.mp4 could not be written"):
        with _writer(out, (64, 48), 1.0, junk) as writer:
            for _ in range(40):  # ffmpeg may end before or after the first writes
                writer.write(frames)
    assert not out.exists()


def test_writer_rejects_wrong_frame_shape(tmp_path: Path) -> None:
    """Frames of another size are refused before they reach ffmpeg."""
    with _writer(tmp_path / "out.mp4", (64, 48), 1.0, None) as writer, pytest.raises(ValueError):
        writer.write(np.zeros((48, 60, 3), np.uint8))


def test_sample_video_through_source_and_writer(media_dir: Path, tmp_path: Path, limits: LimitSettings) -> None:
    """face_1.mp4 (6.1 s) with audio_1.wav (5.0 s), trimmed at 360p: output lasts the audio's 5.0 s."""
    from heygem_daemon.media import FrameSource, output_frame_count

    video = probe(media_dir / "face_1.mp4", limits).video
    voice = probe(media_dir / "audio_1.wav", limits)
    assert video is not None
    size = output_size(video, 360)
    n_out = output_frame_count(voice.duration_s, video.fps, video.frame_count, "trim")
    out = tmp_path / "out.mp4"
    source = FrameSource(
        media_dir / "face_1.mp4", size, n_out, video.frame_count, "pingpong", tmp_path, fps_text=decode_rate(video)
    )
    writer = FrameWriter(
        out, size, video.fps_text, audio_path=voice.path, duration_s=n_out / video.fps, crf=23, preset="ultrafast",
        pad_audio=False,
    )
    with source, writer:
        while len((batch := source.next_batch(32))[2]):
            writer.write(batch[2])
    result = probe(out, limits)
    assert result.video is not None and result.audio is not None
    assert ((360, 360), n_out) == ((result.video.width, result.video.height), result.video.frame_count)
    assert result.duration_s == pytest.approx(voice.duration_s, abs=1 / video.fps + 0.03)


def test_sampled_frames_are_spread_over_the_video_and_leave_no_process(media_dir: Path, limits: LimitSettings) -> None:
    """sample_frames reads 8 frames by seeking (shrunk to 640 pixels at most), each from another moment."""
    from heygem_daemon.media.frames import sample_frames

    info = probe(media_dir / "face_1.mp4", limits)
    frames = sample_frames(media_dir / "face_1.mp4", info.video, count=8)
    assert 8 == len(frames)
    assert all(f.dtype == np.uint8 and max(f.shape[:2]) <= 640 and f.shape[2] == 3 for f in frames)
    assert len({f.tobytes() for f in frames}) == 8
    assert not [p for p in psutil.Process().children(recursive=True) if p.name() == "ffmpeg"]
