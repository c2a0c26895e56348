"""Frames per second of each musetalk stage, and end to end at 720p, on a GPU (or the CPU).

    .venv/bin/python benchmarks/gpu_check.py --engine musetalk [VIDEO] [--device auto|cpu|cuda:N]
        [--frames N] [--batches 32,128] [--weights MODELS_DIR]

Without ``--weights``, random weights of the published architecture (musetalk.json's UNet,
sd-vae-ft-mse's VAE, whisper-tiny) are written in the public layout to a temp folder and
loaded through the engine's own loader: speed does not depend on the weights' values.
fp16 on CUDA, fp32 on the CPU (the engine's own choice).

Stages: whisper features (60 s of audio, per video frame), VAE encode (the reference
latents: once per avatar frame, then cached), UNet alone and VAE decode alone at each
batch (tensors already on the device), crop + mask + colour + paste at 720p (torch on the
device, transfers included), and end to end at 720p: decode → engine render (latents cold)
→ libx264 encode.  On CUDA it prints the peak GPU memory of the largest UNet + decode batch.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

from heygem_daemon.engines.base import AudioClip, EngineConfig, Face
from heygem_daemon.engines.musetalk import MuseTalkEngine
from heygem_daemon.engines.musetalk_blend import crop_box, crops, masks, match_colour, paste

HEIGHT, WIDTH = 720, 1280


def run(args: argparse.Namespace) -> int:
    cuda = args.device != "cpu" and torch.cuda.is_available()
    batches = [int(b) for b in (args.batches or ("32,128" if cuda else "2")).split(",")]
    count = args.frames or (250 if cuda else 4)
    with tempfile.TemporaryDirectory(prefix="musetalk-bench-") as tmp, _weights(args.weights, Path(tmp)) as root:
        started = time.perf_counter()
        engine = MuseTalkEngine(EngineConfig(device=args.device, models={"musetalk": root}, batch_size=max(batches)))
        print(f"musetalk on {engine.device} ({engine.precision}), {engine.models.parameters / 1e6:.0f} M parameters, "
              f"loaded in {time.perf_counter() - started:.1f} s; weights {root}")
        clip, fps = _clip(args.video, count)
        faces = _faces(clip)
        results: dict[str, float] = {}
        results["whisper features (per frame of 60 s audio)"] = _time_whisper(engine, fps)
        results[f"VAE encode x2 (reference latents), batch {batches[0]}"] = _time(
            lambda n: engine.encode(torch.rand(n, 3, 256, 256, device=engine._device)), batches[0], engine)
        for batch in batches:
            latents = torch.randn(batch, 8, 32, 32, device=engine._device, dtype=engine._dtype)
            audio = torch.randn(batch, 50, engine.models.audio_dim, device=engine._device, dtype=engine._dtype)
            results[f"UNet alone, batch {batch}"] = _time(
                lambda n: engine.models.unet(latents[:n], engine._timestep, encoder_hidden_states=audio[:n]).sample,
                batch, engine)
            results[f"VAE decode alone, batch {batch}"] = _time(
                lambda n: engine.models.vae.decode(latents[:n, :4]).sample, batch, engine)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            engine.generate(latents.float(), audio)
            print(f"peak GPU memory, UNet + decode at batch {batches[-1]}: "
                  f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        results["crop + mask + colour + paste at 720p (torch)"] = _time_blend(engine, clip, faces)
        results["end to end at 720p (decode, render, encode)"] = _time_end_to_end(engine, args.video, clip, faces, fps)
    width = max(len(k) for k in results)
    print(f"{'stage':<{width}}  frames/s")
    for name, rate in results.items():
        print(f"{name:<{width}}  {rate:8.2f}")
    return 0


@contextlib.contextmanager
def _weights(given: Path | None, tmp: Path) -> Iterator[Path]:
    if given is not None:
        yield given
        return
    from tests.support.musetalk_weights import make_weights

    started = time.perf_counter()
    root = make_weights(tmp / "models", real=True)
    print(f"random weights of the published architecture written in {time.perf_counter() - started:.1f} s")
    yield root


def _sync(engine: MuseTalkEngine) -> None:
    if engine._device.type == "cuda":
        torch.cuda.synchronize(engine._device)


def _time(step: Callable[[int], object], batch: int, engine: MuseTalkEngine) -> float:
    with torch.inference_mode():
        step(batch)  # warm-up: cuDNN's kernel search, allocator
        _sync(engine)
        repeats = 5 if engine._device.type == "cuda" else 1
        started = time.perf_counter()
        for _ in range(repeats):
            step(batch)
        _sync(engine)
    return repeats * batch / (time.perf_counter() - started)


def _time_whisper(engine: MuseTalkEngine, fps: float) -> float:
    rng = np.random.default_rng(0)
    audio = AudioClip((0.1 * rng.standard_normal(60 * 16000)).astype(np.float32))
    engine.prepare(AudioClip(audio.samples[:16000]))
    started = time.perf_counter()
    engine.prepare(audio)
    return 60 * fps / (time.perf_counter() - started)


def _clip(video: Path, count: int) -> tuple[np.ndarray, float]:
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(_to_720p(frame))
    capture.release()
    return np.stack(frames), float(fps)


def _to_720p(frame: np.ndarray) -> np.ndarray:
    """Height 720, the sides mirrored out to 1280 (a face the size a 720p talking head has)."""
    scale = HEIGHT / frame.shape[0]
    resized = cv2.resize(frame, (round(frame.shape[1] * scale), HEIGHT), interpolation=cv2.INTER_AREA)
    pad = max(0, WIDTH - resized.shape[1])
    return cv2.copyMakeBorder(resized, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_REFLECT)[:, :WIDTH]


def _faces(clip: np.ndarray) -> list[Face | None]:
    from heygem_daemon.faces.tracker import FaceTracker

    track = FaceTracker().track(list(clip))
    return [track.face(i, WIDTH, HEIGHT) for i in range(len(clip))]


def _time_blend(engine: MuseTalkEngine, clip: np.ndarray, faces: list[Face | None]) -> float:
    rows = [i for i, f in enumerate(faces) if f is not None]
    kept = [faces[i] for i in rows]
    started = time.perf_counter()
    with torch.inference_mode():
        pixels = torch.from_numpy(clip[rows]).to(engine._device)
        boxes = [crop_box(f, WIDTH, HEIGHT) for f in kept]  # type: ignore[arg-type]
        source = crops(pixels, boxes)  # type: ignore[arg-type]
        lower, lips = (torch.from_numpy(m).to(engine._device)[:, None] for m in masks(kept, boxes))  # type: ignore[arg-type]
        face = match_colour(source.flip(2), source, lower, lips)
        paste(pixels, face, lower, boxes, [int(f.landmarks[2, 1]) for f in kept])  # type: ignore[arg-type, index, union-attr]
        pixels.cpu()
    return len(rows) / (time.perf_counter() - started)


def _time_end_to_end(engine: MuseTalkEngine, video: Path, clip: np.ndarray, faces: list[Face | None],
                     fps: float) -> float:
    ffmpeg = shutil.which("ffmpeg")
    started = time.perf_counter()
    _clip(video, len(clip))  # decode (and scale) again, as a job would
    audio = engine.prepare(AudioClip(np.zeros(int(16000 * len(clip) / fps) + 1, np.float32)))
    out = engine.render(clip, faces, audio, np.arange(len(clip)), fps)
    if ffmpeg:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([ffmpeg, "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{WIDTH}x{HEIGHT}",
                            "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast",
                            str(Path(tmp) / "out.mp4")], input=out.tobytes(), check=True, timeout=600)
    return len(clip) / (time.perf_counter() - started)
