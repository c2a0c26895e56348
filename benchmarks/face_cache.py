"""An avatar is tracked once: two jobs with the same avatar, and where the second gets its faces.

    .venv/bin/python benchmarks/face_cache.py --wav2lip WEIGHTS.pth [--against DIR] [--height 720]

For each engine (builtin, wav2lip) and each case (an 8 s avatar with its own
8 s of speech; a 50 s avatar with 5 s of speech) it runs two jobs on one cold
face cache, in a child process of the checkout measured (this one, and with
``--against`` another, e.g. a worktree of the starting commit), and prints
each job's tracking time (report.json ``timings_s.faces``), its avatar-analysis
time, its wall time and which face events it logged.  The avatars are cut from
``talk_en_40s.mp4`` (looped for 50 s) at ``--height``.  Wav2Lip's weights may
be random (tests/engines/test_wav2lip_engine.py builds such a file): the
tracking and caching do not depend on them.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / ".." / "shared" / "media"

CHILD = """
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from structlog.testing import capture_logs
from heygem_daemon.engines.base import EngineConfig
from heygem_daemon.engines.registry import EngineRegistry
from heygem_daemon.faces.cache import FaceTrackCache
from heygem_daemon.faces.tracker import FaceTracker
from heygem_daemon.jobs.report import OutputReport
try:
    from heygem_daemon.render.video import VideoTask, VideoTools, make_video
except ImportError:  # a checkout from before render/
    from heygem_daemon.jobs.video import VideoTask, VideoTools, make_video
from heygem_daemon.media.audio import decode_audio
from heygem_daemon.runtime import configure_runtime
from heygem_daemon.settings import LimitSettings, OutputSettings, Settings
configure_runtime(Settings(default_engine={engine!r}))
models = {{"wav2lip": Path({weights!r})}} if {weights!r} else {{}}
engine = EngineRegistry(EngineConfig(device="cpu", models=models)).get({engine!r})
tracker = FaceTracker()
work = Path(tempfile.mkdtemp(prefix="face-cache-"))
speech = decode_audio(Path({audio!r}), LimitSettings())
features = engine.prepare(speech)
tools = VideoTools(engine, tracker, FaceTrackCache(work / "faces"), lambda: None)
for job in (1, 2):
    task = VideoTask(Path({video!r}), Path({audio!r}), speech.duration_s, work / f"out{{job}}.mp4",
                     OutputSettings(max_height=4320), LimitSettings(), work / "spool")
    report = OutputReport(video="v", audio="a")
    with capture_logs() as logs:
        started = time.perf_counter()
        make_video(task, features, tools, report)
        wall = time.perf_counter() - started
    events = [e["event"] + ("(whole)" if e.get("whole_video") else "") for e in logs
              if e["event"] in ("faces_tracked", "faces_from_cache", "avatar_from_cache")]
    print(json.dumps({{"job": job, "wall": wall, "faces": report.timings_s.faces, "avatar": report.timings_s.avatar,
                      "events": events}}))
"""


def _clip(source: Path, seconds: float, height: int, out: Path, *, audio_only: bool = False) -> Path:
    if not out.exists():
        args = ["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(source), "-t", f"{seconds:g}"]
        if audio_only:
            args += ["-vn", "-ac", "1", "-ar", "16000"]
        else:
            args += ["-vf", f"scale=-2:{height}", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-c:a", "aac"]
        subprocess.run([*args, str(out)], check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wav2lip", type=Path, required=True, help="Wav2Lip weights (random ones will do)")
    parser.add_argument("--against", type=Path, help="another checkout measured in the same run")
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="face-cache-media-"))
    talk = MEDIA / "talk_en_40s.mp4"
    cases = {
        "8 s avatar, its own 8 s of speech": (_clip(talk, 8, args.height, work / "a8.mp4"),
                                               _clip(talk, 8, 0, work / "s8.wav", audio_only=True)),
        "50 s avatar, 5 s of speech": (_clip(talk, 50, args.height, work / "a50.mp4"),
                                        _clip(MEDIA / "talk_de_20s.mp4", 5, 0, work / "s5.wav", audio_only=True)),
    }
    codes = ([("old", args.against.resolve())] if args.against else []) + [("new", REPO)]
    print(f"{'engine':>8} {'code':>4} {'case':<36} {'faces 1st':>9} {'faces 2nd':>9} {'2nd/1st':>7} "
          f"{'avatar 1st':>10} {'wall 1st':>8} {'wall 2nd':>8}  events 1st | 2nd")
    for engine in ("builtin", "wav2lip"):
        for case, (video, audio) in cases.items():
            for name, repo in codes:
                code = CHILD.format(repo=str(repo), engine=engine, video=str(video), audio=str(audio),
                                    weights=str(args.wav2lip) if engine == "wav2lip" else "")
                done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(done.stderr[-3000:])
                first, second = (json.loads(line) for line in done.stdout.splitlines() if line.startswith("{"))
                print(f"{engine:>8} {name:>4} {case:<36} {first['faces']:>9.2f} {second['faces']:>9.2f} "
                      f"{second['faces'] / max(first['faces'], 1e-9):>7.3f} {first['avatar']:>10.2f} "
                      f"{first['wall']:>8.1f} {second['wall']:>8.1f}  {','.join(first['events'])} | "
                      f"{','.join(second['events'])}", flush=True)


if __name__ == "__main__":
    main()
