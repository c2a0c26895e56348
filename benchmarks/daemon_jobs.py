"""Frames per second of whole jobs through the real daemon: one video, then several together.

    python3 benchmarks/daemon_jobs.py [--engine wav2lip] [--videos 4] [--seconds 40] [--height 720]
                                      [--workers auto] [--device auto] [--video V]

Issue 23's device figures (one 720p wav2lip video at 250 frames/s or more, four
together at 600 or more, on the 16-core H200 host) are figures of the daemon as
users run it, so this starts ``heygem-daemon run`` as a subprocess, drops job
folders into its inbox and reads the times of its own log events: a video's
``seconds`` in ``video_done`` (from when a worker took it to its encoded file), a job from
``job_started`` to ``job_finished`` (the settle time before a job starts and
the model loading at start-up are not counted).  Jobs, in this order, on one face cache:

1. one video (a new avatar);
2. ``--videos`` new avatars and one voice (cold cache: every avatar tracked);
3. the same job again (warm cache: tracks from the cache);

with, where ``nvidia-smi`` exists, how busy the GPU was during each job (the
issue's complaint was a GPU idle almost all of a job's time); and, for scale,
``--videos`` bare ffmpeg transcodes (decode + libx264, the
output settings) side by side.  The avatars are ``--video`` (default
``talk_en_40s.mp4`` of the shared media, or ``.device/media/`` on the lent
device) cut to ``--seconds``, centred in a ``--height`` frame, each one flipped
or shifted a little so that every one is a new avatar to the cache; the voice
is the clip's own sound.  Wav2Lip's weights are random (the speed does not
depend on them), written in the public checkpoint layout.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = [REPO / ".device" / "media" / "talk_en_40s.mp4", REPO / ".." / "shared" / "media" / "talk_en_40s.mp4"]
#: a different look per avatar, so each has its own content hash (a new avatar to the face cache)
VARIANTS = ["null", "hflip", "crop=iw-16:ih-16,pad=iw+16:ih+16:8:8", "hflip,crop=iw-16:ih-16,pad=iw+16:ih+16:8:8",
            "eq=brightness=0.02", "hflip,eq=brightness=0.02", "eq=contrast=1.03", "hflip,eq=contrast=1.03",
            "eq=brightness=-0.02"]


def main() -> int:
    args = _parse()
    work = Path(tempfile.mkdtemp(prefix="daemon-jobs-", dir=args.workdir))
    try:
        return _run(args, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {work} (the daemon's log is daemon.log)")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=next((p for p in CANDIDATES if p.is_file()), CANDIDATES[-1]))
    parser.add_argument("--engine", default="wav2lip", choices=["wav2lip", "builtin"])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--timeout", type=float, default=400.0, help="seconds a job may take")
    parser.add_argument("--workdir", type=Path, help="keep the inputs, outputs and the daemon's log under here")
    return parser.parse_args()


def _run(args: argparse.Namespace, work: Path) -> int:
    media = work / "media"
    media.mkdir()
    width = round(args.height * 16 / 9 / 2) * 2
    # one more than the jobs of several take: the one-video job's avatar is new to them too
    made = [_avatar(args.video, media / f"avatar{i}.mp4", args.seconds, args.height, width, VARIANTS[i % len(VARIANTS)])
            for i in range(max(1, args.videos) + 1)]
    single, avatars = made[-1], made[:-1]
    voice = media / "voice.wav"
    _ffmpeg("-i", str(args.video), "-t", f"{args.seconds}", "-vn", "-ac", "1", "-ar", "16000", str(voice))
    config = _config(work, args)
    inbox, outbox = work / "inbox", work / "outbox"
    inbox.mkdir()
    outbox.mkdir()
    log_path = work / "daemon.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "heygem_daemon.cli", "run", "--config", str(config),
                                   "--inbox", str(inbox), "--outbox", str(outbox)],
                                  stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    rows = []
    try:
        _wait(lambda: (outbox / "status.json").exists() or daemon.poll() is not None, 180, log_path)
        plan = next((e for e in _events(log_path) if e.get("event") == "runtime_configured"), {})
        print("runtime:", {k: plan.get(k) for k in ("workers", "workers_rule", "cores_per_video", "torch_threads",
                                                       "tracker_processes", "opencv_threads")})
        jobs = [("one video, new avatar", "one", [single]),
                (f"{len(avatars)} videos, new avatars", "many-cold", avatars),
                (f"{len(avatars)} videos, the same again (tracks cached)", "many-warm", avatars)]
        for title, name, videos in jobs:
            rows.append((title, *_job(inbox, outbox, work, name, videos, voice, log_path, daemon, args.timeout)))
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
    bare = _bare(avatars, voice, work, args.seconds)
    frames = sum(r[1] for r in rows[-1:])
    print(f"\n{'job':<44} {'frames':>7} {'job s':>7} {'frames/s':>9}  per video (frames/s)")
    for title, count, seconds, per_video in rows:
        print(f"{title:<44} {count:>7} {seconds:>7.2f} {count / seconds:>9.1f}  "
              + ", ".join(f"{fps:.0f}" for fps in per_video))
    print(f"{f'{len(avatars)} bare ffmpeg transcodes side by side':<44} {frames:>7} {bare:>7.2f} {frames / bare:>9.1f}")
    print(f"\nengine {args.engine}, device {args.device}, {args.height}p, {args.seconds:g} s avatars and voice; "
          "job s = job_started → job_finished in the daemon's log (settling and start-up not counted)")
    return 0


def _avatar(source: Path, out: Path, seconds: float, height: int, width: int, look: str) -> Path:
    scale = f"scale=-2:{height},{look},pad={width}:{height}:(ow-iw)/2:0:color=black,setsar=1"
    _ffmpeg("-stream_loop", "-1", "-i", str(source), "-t", f"{seconds}", "-vf", scale, "-an",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", str(out))
    return out


def _config(work: Path, args: argparse.Namespace) -> Path:
    lines = [f'settle_seconds = 0.5', 'poll_interval = 0.2', f'default_engine = "{args.engine}"',
             f'device = "{args.device}"', f'cache_dir = "{work / "cache"}"', f'state_dir = "{work / "state"}"',
             'log_level = "info"']
    lines.append(f'workers = "{args.workers}"' if args.workers == "auto" else f"workers = {int(args.workers)}")
    if args.engine == "wav2lip":
        lines += ["[models]", f'wav2lip = "{_random_wav2lip(work)}"']
    path = work / "daemon.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _random_wav2lip(work: Path) -> Path:
    import torch

    sys.path.insert(0, str(REPO))
    from heygem_daemon.engines.wav2lip_net import Wav2LipNet

    path = work / "wav2lip_random.pth"
    state = {"module." + k: v for k, v in Wav2LipNet().state_dict().items()}
    torch.save({"state_dict": state, "optimizer": {}, "global_step": 0, "global_epoch": 0}, path)
    return path


def _job(inbox: Path, outbox: Path, work: Path, name: str, videos: list[Path], voice: Path, log_path: Path,
         daemon: subprocess.Popen, timeout: float) -> tuple[int, float, list[float]]:
    staging = work / "staging" / name
    staging.mkdir(parents=True)
    shutil.copy(voice, staging / voice.name)
    for video in videos:
        shutil.copy(video, staging / video.name)
    (inbox / name).parent.mkdir(exist_ok=True)
    gpu = _GpuSampler(work / f"gpu-{name}.csv")
    os.rename(staging, inbox / name)  # whole at once, as a finished copy lands
    report_path = outbox / name / "report.json"
    try:
        _wait(lambda: report_path.exists() or daemon.poll() is not None, timeout, log_path)
    finally:
        busy = gpu.stop()
    if busy is not None:
        print(f"{name}: GPU busy {busy:.0f} % of the job (nvidia-smi utilization.gpu, mean of 0.2 s samples)")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    if report["status"] != "done":
        raise SystemExit(f"job {name} ended {report['status']}: {report.get('errors')} "
                         f"{[o.get('error') for o in report['outputs']]}")
    events = [e for e in _events(log_path) if e.get("job") == name or e.get("job_id") == name]
    start = _at(next(e for e in events if e["event"] == "job_started"))
    end = _at(next(e for e in events if e["event"] == "job_finished"))
    per_video = []
    for output in report["outputs"]:
        done = [e for e in events if e["event"] == "video_done" and e.get("video") == output["video"]]
        if done and done[-1].get("seconds"):  # the video's own time, its avatar analysis included
            per_video.append(output["frames"] / float(done[-1]["seconds"]))
    return sum(o["frames"] for o in report["outputs"]), end - start, per_video


class _GpuSampler:
    """nvidia-smi's utilization.gpu every 0.2 s while a job runs (nothing without nvidia-smi)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._proc = None
        if shutil.which("nvidia-smi"):
            with open(path, "wb") as out:
                self._proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                               "-lms", "200"], stdout=out, stderr=subprocess.DEVNULL)

    def stop(self) -> float | None:
        if self._proc is None:
            return None
        self._proc.terminate()
        self._proc.wait(10)
        values = [float(v) for v in self.path.read_text().split() if v.replace(".", "", 1).isdigit()]
        return sum(values) / len(values) if values else None


def _bare(videos: list[Path], voice: Path, work: Path, seconds: float) -> float:
    started = time.perf_counter()
    procs = [subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-i", str(v), "-i", str(voice), "-map", "0:v",
                               "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
                               "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", f"{seconds}", str(work / f"bare{i}.mp4")])
             for i, v in enumerate(videos)]
    for proc in procs:
        proc.wait()
    return time.perf_counter() - started


def _events(log_path: Path) -> list[dict]:
    events = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    return events


def _at(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def _wait(condition, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout} s; the daemon's log ends:\n"
                     + log_path.read_text(encoding="utf-8", errors="replace")[-4000:])


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


if __name__ == "__main__":
    raise SystemExit(main())
