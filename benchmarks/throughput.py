"""Throughput of every stage, end to end, and the ratio to a bare ffmpeg transcode.

    .venv/bin/python benchmarks/throughput.py [--video V] [--audio A] [--sizes native,720,1080]
                                              [--engine builtin] [--scaling 8] [--long-minutes 10]

Prints a table; asserts nothing (targets live in the issue and the README).
Stage figures are measured in isolation on pre-decoded frames; "end to end" is
the daemon's own per-video pipeline (heygem_daemon.render.video.make_video) with
a cold face-track cache; "bare ffmpeg" decodes and encodes the same clip with
the same libx264 settings and the same audio, in the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from heygem_daemon.engines.base import EngineConfig  # noqa: E402
from heygem_daemon.engines.registry import EngineRegistry  # noqa: E402
from heygem_daemon.faces.tracker import FaceTracker  # noqa: E402
from heygem_daemon.media.audio import decode_audio  # noqa: E402
from heygem_daemon.media.frames import FrameReader, FrameWriter  # noqa: E402
from heygem_daemon.media.probe import probe  # noqa: E402
from heygem_daemon.runtime import configure_runtime  # noqa: E402
from heygem_daemon.settings import LimitSettings, OutputSettings, Settings  # noqa: E402

MEDIA = REPO / ".." / "shared" / "media"
LIMITS = LimitSettings()
OUT = OutputSettings()


def scaled_clip(src: Path, height: int | None, work: Path) -> Path:
    """The sample at its size, or centred in a 16:9 frame of the given height (720p, 1080p)."""
    if height is None:
        return src
    out = work / f"clip_{height}.mp4"
    width = height * 16 // 9
    vf = f"scale=-2:{height},pad={width}:{height}:(ow-iw)/2:0"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", vf, "-c:v", "libx264", "-crf", "16",
                    "-preset", "veryfast", "-c:a", "copy", str(out)], check=True)
    return out


def long_inputs(video: Path, audio: Path, minutes: float, work: Path) -> tuple[Path, Path]:
    """A 1080p talking-head video and a speech track, both ``minutes`` long (the samples looped)."""
    seconds = f"{minutes * 60:.0f}"
    out_v, out_a = work / f"long_{minutes:g}.mp4", work / f"long_{minutes:g}.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(video), "-t", seconds,
                    "-vf", "scale=-2:1080,pad=1920:1080:(ow-iw)/2:0", "-an", "-c:v", "libx264", "-preset",
                    "ultrafast", "-crf", "23", str(out_v)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(audio), "-t", seconds,
                    str(out_a)], check=True)
    return out_v, out_a


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def stage_figures(clip: Path, audio: Path, engine_name: str, work: Path) -> dict:
    info = probe(clip, LIMITS).video
    size = (info.width - info.width % 2, info.height - info.height % 2)
    engine = EngineRegistry(EngineConfig(device="auto")).get(engine_name)
    decode_s, frames = timed(lambda: np.stack(list(FrameReader(clip, size))))
    n = len(frames)
    tracker = FaceTracker()
    # the pipeline hands the tracker full-size frames; it downscales for the face mesh itself
    track_s, track = timed(lambda: tracker.track(iter(frames)))
    clip_audio = decode_audio(audio, LIMITS)
    features_s, features = timed(lambda: engine.prepare(clip_audio))
    faces = [track.face(i, size[0], size[1]) for i in range(n)]

    def render_all():
        for i in range(0, n, engine.batch_size):
            idx = np.arange(i, min(n, i + engine.batch_size))
            engine.render(frames[idx], faces[i:i + len(idx)], features, idx, info.fps)

    render_s, _ = timed(render_all)
    out = work / "encode.mp4"

    def encode():
        with FrameWriter(out, size, info.fps_text, audio_path=audio, duration_s=n / info.fps,
                         crf=OUT.crf, preset=OUT.preset, pad_audio=False) as writer:
            for i in range(0, n, 16):
                writer.write(frames[i:i + 16])

    encode_s, _ = timed(encode)
    return {"frames": n, "size": f"{size[0]}x{size[1]}", "decode": n / decode_s, "faces": n / track_s,
            "features_x_realtime": clip_audio.duration_s / max(features_s, 1e-9),
            "render": n / render_s, "encode": n / encode_s, "device": getattr(engine, "device", "cpu")}


def end_to_end(clip: Path, audio: Path, engine_name: str, work: Path, videos: int = 1) -> dict:
    """The real per-video pipeline in a child process (so its peak RSS is its own)."""
    code = f"""
import json, sys, time, shutil
from pathlib import Path
sys.path.insert(0, {str(REPO)!r})
from heygem_daemon.engines.base import EngineConfig
from heygem_daemon.engines.registry import EngineRegistry
from heygem_daemon.faces.cache import FaceTrackCache
from heygem_daemon.faces.tracker import FaceTracker
from heygem_daemon.jobs.report import OutputReport
from heygem_daemon.render.video import VideoTask, VideoTools, make_video
from heygem_daemon.media.audio import decode_audio
from heygem_daemon.settings import LimitSettings, OutputSettings
sys.path.insert(0, {str(REPO / "tests")!r})
from heygem_daemon.engines import registry as _r
_r._BUILTIN_ENGINES["paint"] = "support.paint_engine:PaintEngine"
def peak_rss_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec from the parent
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
work = Path({str(work)!r}); cache = work / "cache"; shutil.rmtree(cache, ignore_errors=True)
from heygem_daemon.runtime import configure_runtime
from heygem_daemon.settings import Settings
configure_runtime(Settings(default_engine={engine_name!r}))  # as the daemon does at start-up
engine = EngineRegistry(EngineConfig(device="auto")).get({engine_name!r})
tracker = FaceTracker()
# the model and the tracker are loaded once per worker and stay resident: not part of a job's time
started = time.perf_counter()
clip = decode_audio(Path({str(audio)!r}), LimitSettings())
features = engine.prepare(clip)
tools = VideoTools(engine, tracker, FaceTrackCache(cache), lambda: None)
reports = []
for i in range({videos}):
    task = VideoTask(Path({str(clip)!r}), Path({str(audio)!r}), clip.duration_s, work / f"e2e{{i}}.mp4",
                     OutputSettings(max_height=4320), LimitSettings(), work / "spool")
    report = OutputReport(video="v", audio="a")
    make_video(task, features, tools, report)
    reports.append(report.model_dump())
elapsed = time.perf_counter() - started
print(json.dumps({{"seconds": elapsed, "frames": sum(r["frames"] for r in reports), "timings": reports[0]["timings_s"],
                  "peak_rss_mb": peak_rss_mb()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def bare_ffmpeg(clip: Path, audio: Path, work: Path, duration: float) -> float:
    """Decode + libx264 encode of the same clip, same settings, same audio, same duration,
    at the same constant frame rate as ours (a variable-rate source gets the same frames)."""
    out = work / "bare.mp4"
    rate = probe(clip, LIMITS).video.fps_text
    args = ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-i", str(audio), "-map", "0:v", "-map", "1:a",
            "-r", rate, "-c:v", "libx264", "-preset", OUT.preset, "-crf", str(OUT.crf),
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", f"{duration:.3f}", "-movflags", "+faststart", str(out)]
    seconds, _ = timed(lambda: subprocess.run(args, check=True))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=MEDIA / "face_1.mp4")
    parser.add_argument("--audio", type=Path, default=MEDIA / "audio_2.wav")
    parser.add_argument("--sizes", default="native,720,1080")
    parser.add_argument("--engine", default="builtin")
    parser.add_argument("--scaling", type=int, default=0, help="also time a job of N videos vs 1 (same audio)")
    parser.add_argument("--long-minutes", default="", help="e.g. 1,10: peak RSS of 1080p inputs this long")
    args = parser.parse_args()
    # the process-wide switches the daemon sets at start-up (torch threads)
    configure_runtime(Settings(default_engine=args.engine))
    work = Path(tempfile.mkdtemp(prefix="heygem-bench-"))
    try:
        print(f"engine {args.engine}; video {args.video.name}; audio {args.audio.name}; "
              f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores")
        print(f"{'size':>10} {'frames':>6} {'decode':>8} {'faces':>8} {'render':>8} {'encode':>8} "
              f"{'e2e':>8} {'bare':>8} {'ratio':>6} {'audio xRT':>9} {'peak RSS':>9}")
        for label in args.sizes.split(","):
            height = None if label == "native" else int(label)
            clip = scaled_clip(args.video, height, work)
            st = stage_figures(clip, args.audio, args.engine, work)
            e2e = end_to_end(clip, args.audio, args.engine, work)
            bare = bare_ffmpeg(clip, args.audio, work, e2e["frames"] / probe(clip, LIMITS).video.fps)
            print(f"{st['size']:>10} {e2e['frames']:>6} {st['decode']:>8.1f} {st['faces']:>8.1f} "
                  f"{st['render']:>8.1f} {st['encode']:>8.1f} {e2e['frames'] / e2e['seconds']:>8.1f} "
                  f"{e2e['frames'] / bare:>8.1f} {e2e['seconds'] / bare:>6.2f} {st['features_x_realtime']:>9.0f} "
                  f"{e2e['peak_rss_mb']:>7.0f}MB")
        print("figures are frames/s; e2e = the daemon's per-video pipeline incl. model load, audio and tracking;"
              " ratio = e2e time / bare ffmpeg decode+encode time")
        if args.scaling:
            clip = scaled_clip(args.video, 720, work)
            one = end_to_end(clip, args.audio, args.engine, work, videos=1)
            many = end_to_end(clip, args.audio, args.engine, work, videos=args.scaling)
            print(f"job of 1 video: {one['seconds']:.1f} s; job of {args.scaling} videos: {many['seconds']:.1f} s; "
                  f"ratio {many['seconds'] / one['seconds']:.2f} (limit {args.scaling + 0.2:.1f})")
        for minutes in [float(m) for m in args.long_minutes.split(",") if m]:
            video, audio = long_inputs(args.video, args.audio, minutes, work)
            run = end_to_end(video, audio, args.engine, work)
            print(f"{minutes:g}-minute 1080p input: {run['frames']} frames in {run['seconds']:.0f} s "
                  f"({run['frames'] / run['seconds']:.1f} fps), peak RSS {run['peak_rss_mb']:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
