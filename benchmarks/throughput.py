"""Throughput of every stage, end to end, and the ratio to a bare ffmpeg transcode.

    .venv/bin/python benchmarks/throughput.py [--video V] [--audio A] [--sizes native,720,1080]
                                              [--engine builtin] [--scaling 8] [--long-minutes 10]
                                              [--tracker-processes 2] [--against DIR] [--repeat 3]

Prints a table; asserts nothing (targets live in the issue and the README).
Stage figures are measured in isolation on pre-decoded frames; "end to end" is
the daemon's own per-video pipeline (heygem_daemon.render.video.make_video) with
a cold face-track cache; "bare ffmpeg" decodes and encodes the same clip with
the same libx264 settings and the same audio, in the same run.

``faces`` is the tracker alone on the clip's decoded frames (in a child process,
the tracker built and warmed up first, as in a running daemon), with
``--tracker-processes`` worker processes.  ``--against DIR`` measures another
checkout (e.g. ``git worktree add /tmp/old 0305b53``) in the same run: its
tracking and its end to end, on the same clips, alternating with this one
``--repeat`` times; the table gives the medians, old and new on adjacent rows.
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
    # the faces for the render figure (the tracking figure is tracking_rate's, in a child)
    track = FaceTracker().track(iter(frames))
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
    return {"frames": n, "size": f"{size[0]}x{size[1]}", "decode": n / decode_s,
            "features_x_realtime": clip_audio.duration_s / max(features_s, 1e-9),
            "render": n / render_s, "encode": n / encode_s, "device": getattr(engine, "device", "cpu")}


def _tracker_code(processes: int) -> str:
    """A child's line building the daemon's tracker; a checkout without worker processes gets its only one."""
    return (f"import inspect\nfrom heygem_daemon.faces.tracker import FaceTracker\n"
            f"tracker = FaceTracker(processes={processes}) if 'processes' in "
            f"inspect.signature(FaceTracker).parameters else FaceTracker()\n")


def tracking_rate(repo: Path, clip: Path, processes: int, rounds: int = 3) -> float:
    """Frames/s of ``repo``'s tracker alone on the clip's frames (full size, as the render pass hands
    them over), in a child process: the best of ``rounds`` after a warm-up."""
    code = f"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, {str(repo)!r})
import numpy as np
from heygem_daemon.media.frames import FrameReader
from heygem_daemon.media.probe import probe
from heygem_daemon.settings import LimitSettings
info = probe(Path({str(clip)!r}), LimitSettings()).video
frames = np.stack(list(FrameReader(Path({str(clip)!r}), (info.width - info.width % 2, info.height - info.height % 2))))
{_tracker_code(processes)}
tracker.track(iter(frames[:40]))
rates = []
for _ in range({rounds}):
    started = time.perf_counter()
    tracker.track(iter(frames))
    rates.append(len(frames) / (time.perf_counter() - started))
getattr(tracker, "close", lambda: None)()
print(json.dumps(max(rates)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return float(out.stdout.strip().splitlines()[-1])


def end_to_end(clip: Path, audio: Path, engine_name: str, work: Path, videos: int = 1, *, repo: Path = REPO,
               processes: int = 0) -> dict:
    """The real per-video pipeline in a child process (so its peak RSS is its own), of ``repo``'s code."""
    code = f"""
import json, sys, time, shutil
from pathlib import Path
sys.path.insert(0, {str(repo)!r})
from heygem_daemon.engines.base import EngineConfig
from heygem_daemon.engines.registry import EngineRegistry
from heygem_daemon.faces.cache import FaceTrackCache
from heygem_daemon.faces.tracker import FaceTracker
from heygem_daemon.jobs.report import OutputReport
if {(repo / "heygem_daemon" / "render" / "video.py").is_file()}:  # asked of the files, as below
    from heygem_daemon.render.video import VideoTask, VideoTools, make_video
else:  # a checkout from before render/ (2026-12-04)
    from heygem_daemon.jobs.video import VideoTask, VideoTools, make_video
from heygem_daemon.media.audio import decode_audio
from heygem_daemon.settings import LimitSettings, OutputSettings
sys.path.insert(0, {str(repo / "tests")!r})
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
getattr(engine, "warm_up", lambda: None)()  # as the daemon does before it reports ready
{_tracker_code(processes)}
# the model and the tracker are loaded once per worker and stay resident: not part of a job's time
started = time.perf_counter()
clip = decode_audio(Path({str(audio)!r}), LimitSettings())
if {_analyses_voice_beside_videos(repo)}:  # as that checkout's job runner does
    import threading
    from heygem_daemon.render.plan import PendingFeatures
    features = PendingFeatures()
    threading.Thread(target=lambda: features.set(engine.prepare(clip)), daemon=True).start()
else:  # an older checkout analysed the voice before the videos started
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
getattr(tracker, "close", lambda: None)()
print(json.dumps({{"seconds": elapsed, "frames": sum(r["frames"] for r in reports), "timings": reports[0]["timings_s"],
                  "peak_rss_mb": peak_rss_mb()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _analyses_voice_beside_videos(repo: Path) -> bool:
    """Whether ``repo``'s runner starts the videos while the voice is analysed (2026-12-04).  Asked
    of the files: for a module ``repo`` lacks, this checkout's editable install would answer an import."""
    plan = repo / "heygem_daemon" / "render" / "plan.py"
    return plan.is_file() and "class PendingFeatures" in plan.read_text(encoding="utf-8")


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
    parser.add_argument("--tracker-processes", type=int, default=0,
                        help="FaceTracker(processes=N) for this checkout's tracking and end to end")
    parser.add_argument("--against", type=Path, help="another checkout measured in the same run (old figures)")
    parser.add_argument("--repeat", type=int, default=1, help="alternating rounds per size (medians printed)")
    args = parser.parse_args()
    # the process-wide switches the daemon sets at start-up (torch threads)
    configure_runtime(Settings(default_engine=args.engine))
    work = Path(tempfile.mkdtemp(prefix="heygem-bench-"))
    codes = ([("old", args.against.resolve())] if args.against else []) + [("new", REPO)]
    try:
        print(f"engine {args.engine}; video {args.video.name}; audio {args.audio.name}; "
              f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; "
              f"tracker processes {args.tracker_processes}"
              + (f"; old = {args.against}, medians of {args.repeat} alternating rounds" if args.against else ""))
        print(f"{'size':>10} {'code':>4} {'frames':>6} {'decode':>8} {'faces':>8} {'render':>8} {'encode':>8} "
              f"{'e2e':>8} {'bare':>8} {'ratio':>6} {'audio xRT':>9} {'peak RSS':>9}  e2e timings_s")
        for label in args.sizes.split(","):
            height = None if label == "native" else int(label)
            clip = scaled_clip(args.video, height, work)
            st = stage_figures(clip, args.audio, args.engine, work)
            rounds: dict[str, list[dict]] = {name: [] for name, _ in codes}
            for _ in range(args.repeat):
                for name, repo in codes:
                    processes = args.tracker_processes if name == "new" else 0
                    faces = tracking_rate(repo, clip, processes)
                    e2e = end_to_end(clip, args.audio, args.engine, work, repo=repo, processes=processes)
                    bare = bare_ffmpeg(clip, args.audio, work, e2e["frames"] / probe(clip, LIMITS).video.fps)
                    rounds[name].append({"faces": faces, "e2e": e2e["frames"] / e2e["seconds"],
                                         "bare": e2e["frames"] / bare, "ratio": e2e["seconds"] / bare,
                                         "e2e_s": e2e["seconds"], "bare_s": bare,
                                         "rss": e2e["peak_rss_mb"], "frames": e2e["frames"],
                                         "timings": e2e["timings"]})
            for name, _ in codes:
                runs = rounds[name]
                med = {key: float(np.median([r[key] for r in runs])) for key in ("faces", "e2e", "bare", "ratio", "rss")}
                timings = min(runs, key=lambda r: abs(r["ratio"] - med["ratio"]))["timings"]
                print(f"{st['size']:>10} {name:>4} {runs[0]['frames']:>6} {st['decode']:>8.1f} {med['faces']:>8.1f} "
                      f"{st['render']:>8.1f} {st['encode']:>8.1f} {med['e2e']:>8.1f} {med['bare']:>8.1f} "
                      f"{med['ratio']:>6.2f} {st['features_x_realtime']:>9.0f} {med['rss']:>7.0f}MB  "
                      + " ".join(f"{k} {v:.2f}" for k, v in timings.items()))
                if len(runs) > 1:
                    print(f"{'':>15} rounds: faces " + ", ".join(f"{r['faces']:.0f}" for r in runs)
                          + "; ratio " + ", ".join(f"{r['ratio']:.2f}" for r in runs)
                          + "; e2e s " + ", ".join(f"{r['e2e_s']:.2f}" for r in runs)
                          + "; bare s " + ", ".join(f"{r['bare_s']:.2f}" for r in runs))
        print("figures are frames/s; faces = the tracker alone (child process); e2e = the daemon's per-video pipeline "
              "with a cold cache (a new avatar) incl. audio features and tracking; ratio = e2e time / bare ffmpeg "
              "decode+encode time; decode, render, encode and audio are this checkout's")
        if args.scaling:
            clip = scaled_clip(args.video, 720, work)
            one = end_to_end(clip, args.audio, args.engine, work, videos=1, processes=args.tracker_processes)
            many = end_to_end(clip, args.audio, args.engine, work, videos=args.scaling,
                              processes=args.tracker_processes)
            print(f"job of 1 video: {one['seconds']:.1f} s; job of {args.scaling} videos: {many['seconds']:.1f} s; "
                  f"ratio {many['seconds'] / one['seconds']:.2f} (limit {args.scaling + 0.2:.1f})")
        for minutes in [float(m) for m in args.long_minutes.split(",") if m]:
            video, audio = long_inputs(args.video, args.audio, minutes, work)
            run = end_to_end(video, audio, args.engine, work, processes=args.tracker_processes)
            print(f"{minutes:g}-minute 1080p input: {run['frames']} frames in {run['seconds']:.0f} s "
                  f"({run['frames'] / run['seconds']:.1f} fps), peak RSS {run['peak_rss_mb']:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
