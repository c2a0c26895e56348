"""Lip-sync quality benchmark for the built-in engine (and any output video).

For an output video and the audio it was driven by, mouth opening is measured
with dlib's 68-point landmark model -- a detector independent of the engine's
face mesh -- and compared with the audio's loudness envelope:

* corr      Pearson correlation of mouth opening with loudness (dB), per frame
* lag_ms    the audio shift (searched over +-200 ms in 5 ms steps) giving the
            best correlation; positive = the mouth moves after the sound
* open_sil / open_sp   mean opening (inner-lip gap / eye distance) in silent
            and in speech frames of the audio
* psnr_up   PSNR of everything above the mouth (above the midpoint of nose
            base and upper lip, full width) against the source frame
* corr_src  the same correlation for the untouched source video (a control:
            the person's own mouth follows their own, different speech)

Default run: renders every ../shared/media/face_*.mp4 with audio_1.wav and
audio_2.wav through the engine (video shorter than audio: ping-pong), encodes
with ffmpeg (libx264, crf 18), measures, prints the table.  ``--speed`` times
each pipeline stage at 720p instead.  ``--output OUT --source SRC --audio A``
measures an existing output (e.g. one the daemon published).

Needs the ``bench`` extra: dlib-bin and face-recognition-models (the 68-point
model file is located without importing that package, which needs
setuptools' pkg_resources).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / ".." / "shared" / "media"
SAMPLE_RATE = 16_000
_TILE = 256
THRESHOLDS = {"corr": 0.5, "lag_ms": 40.0, "psnr_up": 35.0}


# --------------------------------------------------------------------- media I/O
def probe(path: Path) -> tuple[int, int, float]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height,r_frame_rate",
         "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout.strip().split(",")
    num, den = out[2].split("/")
    return int(out[0]), int(out[1]), float(num) / float(den)


def read_frames(path: Path, vf: str | None = None, size: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
    """All frames of a video, BGR uint8 (N, H, W, 3), and its fps; ``size`` is the filtered (w, h)."""
    width, height, fps = probe(path)
    cmd = ["ffmpeg", "-v", "error", "-i", str(path)]
    if vf:
        cmd += ["-vf", vf]
        width, height = size
    cmd += ["-f", "rawvideo", "-pix_fmt", "bgr24", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3), fps


def read_audio(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"],
        check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.float32).copy()


def encode(frames: np.ndarray, fps: float, audio: Path | None, out: Path, crf: int = 18) -> float:
    """Encode BGR frames (and audio) to H.264 MP4; returns seconds spent."""
    height, width = frames.shape[1:3]
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
           "-r", f"{fps}", "-i", "-"]
    if audio is not None:
        cmd += ["-i", str(audio), "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p", str(out)]
    start = time.perf_counter()
    subprocess.run(cmd, input=frames.tobytes(), check=True, capture_output=True)
    return time.perf_counter() - start


def pingpong(count: int, source_frames: int) -> np.ndarray:
    """Output frame → source frame when the video is shorter than the audio."""
    if source_frames < 2:
        return np.zeros(count, dtype=int)
    period = 2 * (source_frames - 1)
    phase = np.arange(count) % period
    return np.where(phase < source_frames, phase, period - phase)


# ------------------------------------------------------------------- rendering
def render_frames(face: Path, audio: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, dict[str, float]]:
    """Drive ``face`` with ``audio`` through the built-in engine.

    Returns source frames, output→source frame map, rendered frames, fps, stage timings.
    """
    sys.path.insert(0, str(REPO))
    from heygem_daemon.engines.base import AudioClip, EngineConfig
    from heygem_daemon.engines.builtin import BuiltinEngine
    from heygem_daemon.faces.tracker import FaceTracker

    frames, fps = read_frames(face)
    height, width = frames.shape[1:3]
    timings: dict[str, float] = {}
    start = time.perf_counter()
    track = FaceTracker().track(frames)
    timings["track"] = time.perf_counter() - start
    from heygem_daemon.runtime import configure_runtime
    from heygem_daemon.settings import Settings

    configure_runtime(Settings(default_engine="builtin"))  # as the daemon does at start-up
    engine = BuiltinEngine(EngineConfig(device="auto"))
    samples = read_audio(audio)
    start = time.perf_counter()
    features = engine.prepare(AudioClip(samples))
    timings["prepare"] = time.perf_counter() - start
    count = int(math.ceil(features.duration_s * fps - 1e-6))
    mapping = pingpong(count, len(frames))
    rendered = np.empty((count,) + frames.shape[1:], np.uint8)
    start = time.perf_counter()
    for lo in range(0, count, engine.batch_size):
        idx = np.arange(lo, min(count, lo + engine.batch_size))
        src = mapping[idx]
        faces = [track.face(int(i), width, height) for i in src]
        rendered[idx] = engine.render(frames[src], faces, features, idx, fps)
    timings["render"] = time.perf_counter() - start
    timings["frames"] = count
    return frames, mapping, rendered, fps, timings


def render(face: Path, audio: Path, out: Path) -> dict[str, float]:
    """Render and encode ``out``; returns stage timings."""
    _, _, rendered, fps, timings = render_frames(face, audio)
    timings["encode"] = encode(rendered, fps, audio, out)
    return timings


def figure(face: Path, audio: Path, out: Path, picks: list[int]) -> None:
    """Before/after PNG: source (left) and output (right) of a few output frames, cropped to the face."""
    import cv2

    frames, mapping, rendered, _, _ = render_frames(face, audio)
    detector = Landmarks68()
    tiles = []
    for i in picks:
        marks = detector(frames[mapping[i]])
        centre = marks[[36, 45, 57]].mean(axis=0)
        size = 2.1 * np.linalg.norm(marks[45] - marks[36])
        x0, y0 = max(0, int(centre[0] - size / 2)), max(0, int(centre[1] - size * 0.42))
        x1, y1 = x0 + int(size), y0 + int(size)
        pair = [cv2.resize(p[y0:y1, x0:x1], (_TILE, _TILE), interpolation=cv2.INTER_AREA)
                for p in (frames[mapping[i]], rendered[i])]
        for img, label in zip(pair, ("source", f"builtin, frame {i}")):
            cv2.putText(img, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([pair[0], np.full((_TILE, 4, 3), 255, np.uint8), pair[1]], axis=1))
    gap_v = np.full((_TILE, 16, 3), 255, np.uint8)
    rows = [np.concatenate([tiles[k], gap_v, tiles[k + 1]], axis=1) for k in range(0, len(tiles) - 1, 2)]
    gap_h = np.full((12, rows[0].shape[1], 3), 255, np.uint8)
    grid = np.concatenate([part for row in rows for part in (row, gap_h)][:-1])
    cv2.imwrite(str(out), grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])


# ------------------------------------------------------------------- measuring
class Landmarks68:
    """dlib HOG face detector + 68-point shape predictor."""

    def __init__(self) -> None:
        import dlib

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or spec.origin is None:
            raise SystemExit("install the bench extra: pip install dlib-bin face-recognition-models")
        model = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
        self._detect = dlib.get_frontal_face_detector()
        self._predict = dlib.shape_predictor(str(model))
        self._dlib = dlib

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """(68, 2) landmarks of the largest face, or None."""
        scale = min(1.0, 400.0 / max(frame.shape[:2]))
        small = frame if scale == 1.0 else _resize(frame, scale)
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        boxes = self._detect(rgb, 0)
        if not boxes:
            return None
        box = max(boxes, key=lambda r: r.width() * r.height())
        rect = self._dlib.rectangle(
            int(box.left() / scale), int(box.top() / scale), int(box.right() / scale), int(box.bottom() / scale))
        shape = self._predict(np.ascontiguousarray(frame[:, :, ::-1]), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def _resize(frame: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    return cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def opening(marks: np.ndarray) -> float:
    """Inner-lip gap (mean of three vertical pairs) over the outer eye-corner distance."""
    gap = np.mean([np.linalg.norm(marks[a] - marks[b]) for a, b in ((61, 67), (62, 66), (63, 65))])
    return float(gap / np.linalg.norm(marks[45] - marks[36]))


def above_mouth_row(marks: np.ndarray) -> int:
    """Rows above this one are 'above the mouth': midway between nose base (33) and upper lip top (51)."""
    return int(math.floor((marks[33, 1] + marks[51, 1]) / 2.0))


def loudness_db(samples: np.ndarray, times: np.ndarray, window_s: float) -> np.ndarray:
    """RMS level in dB of a window centred at each time, floored 50 dB under the peak."""
    half = int(window_s * SAMPLE_RATE / 2)
    power = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    centre = np.round(times * SAMPLE_RATE).astype(int)
    lo = np.clip(centre - half, 0, len(samples))
    hi = np.clip(centre + half, 0, len(samples))
    mean = (power[hi] - power[lo]) / np.maximum(hi - lo, 1)
    level = 10 * np.log10(mean + 1e-12)
    return np.maximum(level, np.percentile(level, 97) - 50.0)


@dataclass
class Score:
    frames: int
    measured: int
    corr: float
    lag_ms: float
    open_sil: float
    open_sp: float
    psnr_up: float
    corr_src: float

    @property
    def passed(self) -> bool:
        return (self.corr >= THRESHOLDS["corr"] and abs(self.lag_ms) <= THRESHOLDS["lag_ms"]
                and self.open_sil < 0.5 * self.open_sp and self.psnr_up >= THRESHOLDS["psnr_up"])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def measure(output: Path, source: Path, audio: Path, detector: Landmarks68, cache: dict) -> Score:
    out_frames, fps = read_frames(output)
    if source not in cache:
        src_frames, _ = read_frames(source)
        cache[source] = (src_frames, [detector(f) for f in src_frames])
    src_frames, src_marks = cache[source]
    mapping = pingpong(len(out_frames), len(src_frames))
    samples = read_audio(audio)
    times = np.arange(len(out_frames)) / fps
    window = 1.0 / fps

    opens, src_opens, keep, sq_err = [], [], [], []
    for i, frame in enumerate(out_frames):
        marks, ref = detector(frame), src_marks[mapping[i]]
        if marks is None or ref is None:
            continue
        keep.append(i)
        opens.append(opening(marks))
        src_opens.append(opening(ref))
        row = above_mouth_row(ref)
        diff = frame[:row].astype(np.float64) - src_frames[mapping[i]][:row]
        sq_err.append(float(np.mean(diff**2)))
    keep_idx = np.array(keep, dtype=int)
    opens_a, src_a = np.array(opens), np.array(src_opens)
    env = loudness_db(samples, times[keep_idx], window)
    lags = np.arange(-200, 205, 5)
    corrs = [_corr(opens_a, loudness_db(samples, times[keep_idx] - lag / 1000.0, window)) for lag in lags]
    peak = np.percentile(loudness_db(samples, times, window), 97)
    silent, speech = env < peak - 30.0, env > peak - 15.0
    mse = float(np.mean(sq_err)) if sq_err else float("nan")
    return Score(
        frames=len(out_frames),
        measured=len(keep),
        corr=_corr(opens_a, env),
        lag_ms=float(lags[int(np.nanargmax(corrs))]),
        open_sil=float(opens_a[silent].mean()) if silent.any() else float("nan"),
        open_sp=float(opens_a[speech].mean()) if speech.any() else float("nan"),
        psnr_up=10 * math.log10(255.0**2 / mse) if mse > 0 else float("inf"),
        corr_src=_corr(src_a, env),
    )


# ------------------------------------------------------------------------ runs
def run_table(faces: list[Path], audios: list[Path], workdir: Path) -> bool:
    detector, cache = Landmarks68(), {}
    header = "| video | audio | frames | corr | lag ms | open silence | open speech | PSNR above mouth dB | corr source | pass |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    all_ok = True
    for face in faces:
        for audio in audios:
            out = workdir / f"{face.stem}_{audio.stem}.mp4"
            render(face, audio, out)
            s = measure(out, face, audio, detector, cache)
            all_ok &= s.passed
            print(f"| {face.name} | {audio.name} | {s.measured}/{s.frames} | {s.corr:.2f} | {s.lag_ms:+.0f} | "
                  f"{s.open_sil:.3f} | {s.open_sp:.3f} | {s.psnr_up:.1f} | {s.corr_src:.2f} | "
                  f"{'yes' if s.passed else 'NO'} |", flush=True)
    return all_ok


def run_speed(face: Path, audio: Path, workdir: Path) -> None:
    """Frames per second of each stage at 720p (the face video padded to 1280x720)."""
    vf = "scale=-2:720,pad=1280:720:(ow-iw)/2:0"
    start = time.perf_counter()
    frames, fps = read_frames(face, vf, (1280, 720))
    decode_s = time.perf_counter() - start
    src = workdir / "speed_720p_source.mp4"
    encode(frames, fps, None, src, crf=20)
    timings = render(src, audio, workdir / "speed_720p_out.mp4")
    bare = encode(frames, fps, None, workdir / "speed_bare.mp4", crf=20)
    n_src, n_out = len(frames), timings["frames"]
    print(f"720p stage speed ({face.name} padded to 1280x720, {n_src} source frames, {n_out} output frames)")
    print("| stage | frames/s |")
    print("|---|---|")
    print(f"| decode (ffmpeg) | {n_src / decode_s:.0f} |")
    print(f"| face tracking | {n_src / timings['track']:.0f} |")
    print(f"| audio prepare | {timings['prepare'] * 1000:.0f} ms per {n_out / fps:.1f} s audio |")
    print(f"| engine render | {n_out / timings['render']:.0f} |")
    print(f"| encode (libx264 veryfast crf 20) | {n_src / bare:.0f} |")


def _quiet_logs() -> None:
    """This script is an entry point: keep the engine's debug logs out of the table."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=MEDIA)
    parser.add_argument("--faces", nargs="*", default=None, help="video names (default: face_*.mp4)")
    parser.add_argument("--audios", nargs="*", default=["audio_1.wav", "audio_2.wav"])
    parser.add_argument("--workdir", type=Path, default=None, help="keep rendered outputs here")
    parser.add_argument("--speed", action="store_true", help="time each stage at 720p instead")
    parser.add_argument("--figure", type=Path, help="write a before/after PNG of the first face and audio")
    parser.add_argument("--picks", default="20,32,44,56,68,80", help="output frames for --figure")
    parser.add_argument("--output", type=Path, help="measure this existing output video")
    parser.add_argument("--source", type=Path, help="its source video (with --output)")
    parser.add_argument("--audio", type=Path, help="its audio (with --output)")
    args = parser.parse_args(argv)

    _quiet_logs()
    if args.output:
        s = measure(args.output, args.source, args.audio, Landmarks68(), {})
        print(s, "pass" if s.passed else "FAIL")
        return 0 if s.passed else 1
    faces = [args.media / f for f in args.faces] if args.faces else sorted(args.media.glob("face_*.mp4"))
    audios = [args.media / a for a in args.audios]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.figure:
            figure(faces[0], audios[0], args.figure, [int(p) for p in args.picks.split(",")])
            return 0
        if args.speed:
            run_speed(faces[0], audios[0], workdir)
            return 0
        return 0 if run_table(faces, audios, workdir) else 1


if __name__ == "__main__":
    raise SystemExit(main())
