"""Frames per second of each wav2lip stage, and end to end, on a GPU (or the CPU).

    .venv/bin/python benchmarks/gpu_check.py [VIDEO] [--device auto|cpu|cuda:N] [--frames N]

Self-contained: random weights (saved in the public checkpoint layout and loaded
through the real loader), synthetic audio, a real talking-head video scaled to
1280×720 (height 720, sides mirrored).  Needs only the project's venv; the encode
stage also needs an ``ffmpeg`` with libx264 on PATH (skipped with a note if absent).

Stages: decode (OpenCV), mel (60 s of audio), model alone at batch 128 and 512
(tensors already on the device; fp16 autocast + channels-last on CUDA), engine
infer (uint8 in and out, transfers included), crop + paste with OpenCV on the CPU
and with torch on the device (``engines/gpu_warp.py``: the batch uploaded, every face
cropped to 96 px and pasted back through the feathered mask, the batch downloaded),
the engine's whole render both ways, encode (libx264 veryfast), and end to end
(decode → render → encode in three threads).  On CUDA it also prints the peak GPU
memory of one render batch, the figure ``runtime.GPU_BYTES_PER_VIDEO`` estimates.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from heygem_daemon.engines.base import AudioClip, EngineConfig, Face  # noqa: E402
from heygem_daemon.engines.gpu_warp import FaceWindows  # noqa: E402
from heygem_daemon.engines.wav2lip import (  # noqa: E402
    CROP,
    Wav2LipEngine,
    crop_box,
    crop_face,
    feather_mask,
    paste_face,
)
from heygem_daemon.engines.wav2lip_net import Wav2LipNet  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[1] / ".." / "shared" / "media" / "face_1.mp4"
HEIGHT, WIDTH = 720, 1280


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.engine == "musetalk":
        # its own stage table (benchmarks/musetalk_check.py): whisper, UNet, VAE, blend, end to end
        from musetalk_check import run

        return run(args)
    cuda = args.device != "cpu" and torch.cuda.is_available()
    frames_total = args.frames or (1000 if cuda else 48)
    with tempfile.TemporaryDirectory(prefix="w2l-bench-") as tmp:
        engine = _engine(Path(tmp), args.device, batch=128 if cuda else 16)
        _header(engine, args.video)
        clip, fps = _decode_clip(args.video)
        faces = _faces(clip)
        results: dict[str, float] = {}
        results["decode"] = _time_decode(args.video, frames_total)
        results["mel (per video frame of 60 s audio)"] = _time_mel(engine, fps)
        for batch in ([128, 512] if cuda else [16]):
            results[f"model alone, batch {batch}"] = _time_model(engine, batch, repeats=20 if cuda else 2)
        results[f"engine infer, batch {engine.batch_size}"] = _time_infer(engine, engine.batch_size * (8 if cuda else 2))
        results["crop + paste, OpenCV (CPU)"] = _time_crop_paste(clip, faces, min(frames_total, 200))
        results[f"crop + paste, torch ({engine.device}, I/O)"] = _time_device_crop_paste(
            clip, faces, min(frames_total, 200), engine.device, engine.batch_size)
        renders = engine.batch_size * (4 if cuda else 1)
        for device_warp in (False, True):
            way = f"torch ({engine.device})" if device_warp else "OpenCV (CPU)"
            results[f"render, crop + paste {way}"] = _time_render(
                Path(tmp), args.device, engine.batch_size, device_warp, clip, faces, fps, renders)
        results["encode (libx264 veryfast)"] = _time_encode(clip, frames_total, fps)
        results["end to end"] = _time_end_to_end(args.video, engine, faces, fps, frames_total)
    _print_results(results)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--frames", type=int, default=0, help="frames for decode/encode/end to end")
    parser.add_argument("--engine", choices=["wav2lip", "musetalk"], default="wav2lip")
    parser.add_argument("--batches", default="", help="musetalk: UNet/VAE batch sizes (default 32,128 on CUDA)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="musetalk: a models.musetalk folder (default: random weights, real architecture)")
    args = parser.parse_args(argv)
    if not args.video.is_file():
        parser.error(f"video not found: {args.video}")
    return args


# -- setup --------------------------------------------------------------------------------
def _engine(tmp: Path, device: str, batch: int) -> Wav2LipEngine:
    torch.manual_seed(0)
    path = tmp / "random_wav2lip.pth"
    state = {"module." + k: v for k, v in Wav2LipNet().state_dict().items()}
    torch.save({"state_dict": state, "optimizer": {}, "global_step": 0, "global_epoch": 0}, path)
    return Wav2LipEngine(EngineConfig(device=device, models={"wav2lip": path}, batch_size=batch))


def _header(engine: Wav2LipEngine, video: Path) -> None:
    card = torch.cuda.get_device_name(engine.device) if engine.device.startswith("cuda") else "none"
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), device {engine.device}, GPU: {card}")
    print(f"CPU cores: {os.cpu_count()}, OpenCV threads: {cv2.getNumThreads()}, torch threads: {torch.get_num_threads()}")
    print(f"video: {video.resolve()} scaled to {WIDTH}x{HEIGHT}; engine: {engine.describe()}")


def _to_720p(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    width = max(2, round(w * HEIGHT / h / 2) * 2)
    scaled = cv2.resize(frame, (width, HEIGHT), interpolation=cv2.INTER_AREA if h > HEIGHT else cv2.INTER_LINEAR)
    if width >= WIDTH:
        left = (width - WIDTH) // 2
        return np.ascontiguousarray(scaled[:, left : left + WIDTH])
    side = WIDTH - width
    return cv2.copyMakeBorder(scaled, 0, 0, side // 2, side - side // 2, cv2.BORDER_REFLECT)


def _read(video: Path) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield _to_720p(frame)
    finally:
        capture.release()


def _looped(video: Path, count: int) -> Iterator[np.ndarray]:
    produced = 0
    while produced < count:
        for frame in _read(video):
            yield frame
            produced += 1
            if produced == count:
                return


def _decode_clip(video: Path) -> tuple[np.ndarray, float]:
    capture = cv2.VideoCapture(str(video))
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
    capture.release()
    return np.stack(list(_read(video))), fps


def _faces(clip: np.ndarray) -> list[Face | None]:
    """The project's tracker when it is importable, else one Haar-cascade box for all frames."""
    try:
        from heygem_daemon.faces.tracker import FaceTracker
    except ImportError:
        FaceTracker = None  # noqa: N806
    if FaceTracker is not None:
        track = FaceTracker().track(clip)
        faces = [track.face(i, WIDTH, HEIGHT) for i in range(len(clip))]
        print(f"faces: project tracker, {track.frames_with_face}/{len(clip)} frames with a face")
        return faces
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found = cascade.detectMultiScale(cv2.cvtColor(clip[0], cv2.COLOR_BGR2GRAY), 1.1, 5)
    if len(found) == 0:
        raise SystemExit("no face found in the first frame")
    x, y, w, h = max(found, key=lambda r: r[2] * r[3])
    print("faces: fixed Haar-cascade box (tracker not importable)")
    return [Face(box=np.array([x, y, x + w, y + h], dtype=np.float32))] * len(clip)


# -- stages ---------------------------------------------------------------------------------
def _rate(count: int, seconds: float) -> float:
    return count / max(seconds, 1e-9)


def _time_decode(video: Path, count: int) -> float:
    started = time.perf_counter()
    decoded = sum(1 for _ in _looped(video, count))
    return _rate(decoded, time.perf_counter() - started)


def _time_mel(engine: Wav2LipEngine, fps: float) -> float:
    audio = AudioClip(np.random.default_rng(0).uniform(-0.3, 0.3, 60 * 16_000).astype(np.float32))
    started = time.perf_counter()
    engine.prepare(audio)
    return _rate(int(60 * fps), time.perf_counter() - started)


def _time_model(engine: Wav2LipEngine, batch: int, repeats: int) -> float:
    device = torch.device(engine.device)
    cuda = device.type == "cuda"
    net = Wav2LipNet().to(device).eval()
    face = torch.rand(batch, 6, CROP, CROP, device=device)
    if cuda:
        net = net.to(memory_format=torch.channels_last)
        face = face.contiguous(memory_format=torch.channels_last)
    mel = torch.randn(batch, 1, 80, 16, device=device)
    autocast = torch.autocast("cuda", dtype=torch.float16) if cuda else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for _ in range(3 if cuda else 1):
            net(mel, face)
        _sync(device)
        started = time.perf_counter()
        for _ in range(repeats):
            net(mel, face)
        _sync(device)
    return _rate(batch * repeats, time.perf_counter() - started)


def _time_infer(engine: Wav2LipEngine, count: int) -> float:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (count, CROP, CROP, 3), dtype=np.uint8)
    mels = rng.uniform(-4, 4, (count, 80, 16)).astype(np.float32)
    engine.infer(crops[: engine.batch_size], mels[: engine.batch_size])  # warm-up
    started = time.perf_counter()
    engine.infer(crops, mels)
    return _rate(count, time.perf_counter() - started)


def _time_crop_paste(clip: np.ndarray, faces: list[Face | None], count: int) -> float:
    mask = feather_mask(CROP)
    work = clip.copy()
    done = 0
    started = time.perf_counter()
    for i in range(count):
        face = faces[i % len(clip)]
        box = None if face is None else crop_box(face, WIDTH, HEIGHT)
        if box is None:
            continue
        crop = crop_face(work[i % len(clip)], box)
        paste_face(work[i % len(clip)], box, crop, mask)
        done += 1
    return _rate(done, time.perf_counter() - started)


def _time_device_crop_paste(clip: np.ndarray, faces: list[Face | None], count: int, device: str,
                            batch: int) -> float:
    """What the GPU path does around the network, a batch at a time: upload, crop, paste, download."""
    mask = torch.from_numpy(feather_mask(CROP)).to(device)
    work = [clip[i % len(clip)] for i in range(count)]
    boxes = [None if (f := faces[i % len(clip)]) is None else crop_box(f, WIDTH, HEIGHT) for i in range(count)]

    def one_pass() -> int:
        done = 0
        for start in range(0, count, batch):
            stop = min(start + batch, count)
            rows = [i - start for i in range(start, stop) if boxes[i] is not None]
            corners = np.array([[b.x0, b.y0, b.x1, b.y1] for i in range(start, stop) if (b := boxes[i]) is not None])
            with torch.inference_mode():
                source = torch.from_numpy(np.stack(work[start:stop])).to(device)
                out = source.clone()
                if rows:
                    windows = FaceWindows.plan(corners, np.array(rows), (HEIGHT, WIDTH), device)
                    windows.paste(source, out, windows.crop(source, CROP).round_(), mask)
                out.cpu().numpy()
            done += len(rows)
        return done

    one_pass()  # warm-up: CUDA kernels and the allocator
    _sync(torch.device(device))
    started = time.perf_counter()
    done = one_pass()
    return _rate(done, time.perf_counter() - started)


def _time_render(tmp: Path, device: str, batch: int, device_warp: bool, clip: np.ndarray,
                 faces: list[Face | None], fps: float, count: int) -> float:
    """The engine's whole render (crop, network, paste) with the crop and paste one way or the other."""
    engine = Wav2LipEngine(EngineConfig(device=device, models={"wav2lip": tmp / "random_wav2lip.pth"},
                                        batch_size=batch), device_warp=device_warp)
    mel = engine.prepare(AudioClip(np.random.default_rng(2).uniform(-0.3, 0.3, 16_000 * 60).astype(np.float32)))

    def render(start: int) -> int:
        idx = np.arange(start, start + engine.batch_size)
        frames = np.stack([clip[i % len(clip)] for i in idx])
        engine.render(frames, [faces[i % len(clip)] for i in idx], mel, idx, fps)
        return len(idx)

    render(0)  # warm-up (cuDNN's kernel search on CUDA)
    cuda = engine.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(engine.device)
    started = time.perf_counter()
    rendered = sum(render(start) for start in range(0, count, engine.batch_size))
    rate = _rate(rendered, time.perf_counter() - started)
    if cuda:
        peak = torch.cuda.max_memory_allocated(engine.device) / 2**30
        print(f"peak GPU memory, render batches of {engine.batch_size} {WIDTH}x{HEIGHT} frames "
              f"({'torch' if device_warp else 'OpenCV'} crop + paste): {peak:.2f} GiB")
    return rate


def _time_encode(clip: np.ndarray, count: int, fps: float) -> float:
    with _encoder(fps) as write:
        if write is None:
            return float("nan")
        started = time.perf_counter()
        for i in range(count):
            write(clip[i % len(clip)])
    return _rate(count, time.perf_counter() - started)


def _time_end_to_end(video: Path, engine: Wav2LipEngine, faces: list[Face | None], fps: float, count: int) -> float:
    mel = engine.prepare(AudioClip(np.random.default_rng(1).uniform(-0.3, 0.3, 16_000 * 120).astype(np.float32)))
    decoded: queue.Queue = queue.Queue(maxsize=4)
    rendered: queue.Queue = queue.Queue(maxsize=4)
    batch = engine.batch_size

    def decode() -> None:
        frames: list[np.ndarray] = []
        for frame in _looped(video, count):
            frames.append(frame)
            if len(frames) == batch:
                decoded.put(np.stack(frames))
                frames = []
        if frames:
            decoded.put(np.stack(frames))
        decoded.put(None)

    with _encoder(fps) as write:
        if write is None:
            write = _discard
            print("end to end: no ffmpeg, so frames are discarded instead of encoded")
        encoder = threading.Thread(target=_drain, args=(rendered, write), daemon=True)
        decoder = threading.Thread(target=decode, daemon=True)
        started = time.perf_counter()
        encoder.start()
        decoder.start()
        index = 0
        while (frames := decoded.get()) is not None:
            idx = np.arange(index, index + len(frames))
            batch_faces = [faces[i % len(faces)] for i in idx]
            rendered.put(engine.render(frames, batch_faces, mel, idx, fps))
            index += len(frames)
        rendered.put(None)
        decoder.join()
        encoder.join()
    return _rate(index, time.perf_counter() - started)


def _drain(rendered: queue.Queue, write: Callable[[np.ndarray], None]) -> None:
    while (frames := rendered.get()) is not None:
        for frame in frames:
            write(frame)


def _discard(frame: np.ndarray) -> None:
    return None


@contextlib.contextmanager
def _encoder(fps: float) -> Iterator[Callable[[np.ndarray], None] | None]:
    """A libx264 veryfast ffmpeg pipe writing to a temporary file (None without ffmpeg)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="w2l-enc-") as tmp:
        args = [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{WIDTH}x{HEIGHT}", "-r", f"{fps:.3f}", "-i", "pipe:0",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
            str(Path(tmp) / "out.mp4"),
        ]  # fmt: skip
        process = subprocess.Popen(args, stdin=subprocess.PIPE)
        try:
            assert process.stdin is not None
            yield lambda frame: process.stdin.write(frame.tobytes())  # type: ignore[union-attr]
            process.stdin.close()
            if process.wait(timeout=120) != 0:
                raise SystemExit(f"ffmpeg failed with exit code {process.returncode}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _print_results(results: dict[str, float]) -> None:
    print()
    print(f"{'stage':<40} {'frames/s':>10}")
    for stage, rate in results.items():
        print(f"{stage:<40} {rate:>10.1f}")
    encode, total = results["encode (libx264 veryfast)"], results["end to end"]
    if encode == encode:  # not NaN
        print(f"\nend to end / encode alone = {total / encode:.2f} (near 1.0: the encoder is the limit)")


if __name__ == "__main__":
    sys.exit(main())
