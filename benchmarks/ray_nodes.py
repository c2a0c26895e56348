"""One job of N videos through the daemon: local executor, then a Ray cluster of one and of two nodes.

    .venv/bin/python benchmarks/ray_nodes.py [--videos 4] [--seconds 4] [--engine builtin]

Needs the ray extra (pip install -e '.[ray]') and root or user namespaces: the
cluster runs on loopback in a network and PID namespace of its own
(tests/support/ray_cluster.py), where every node is a process on this machine.
Times are from dropping the job (READY) to its report.json, with the engines
already loaded (actors ready); actor start-up is printed apart.  Prints a table;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.daemon.conftest import DaemonProc, drop_job, wait_for, write_config  # noqa: E402
from tests.support.ray_cluster import LocalRayCluster, in_private_namespace  # noqa: E402

ASSETS = REPO / "heygem_daemon" / "assets"


def make_media(folder: Path, seconds: float) -> tuple[Path, Path]:
    video, audio = folder / "face.mp4", folder / "voice.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(ASSETS / "sample_face.mp4"),
                    "-t", str(seconds), "-an", "-c:v", "libx264", "-preset", "veryfast", str(video)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(ASSETS / "sample_voice.m4a"), "-t", str(seconds),
                    "-ac", "1", "-ar", "16000", str(audio)], check=True)
    return video, audio


def run_job(work: Path, label: str, config: dict, files: dict[str, Path], actors: int) -> dict:
    folder = work / "".join(c if c.isalnum() else "-" for c in label)
    (folder / "inbox").mkdir(parents=True)
    (folder / "outbox").mkdir()
    cfg = write_config(folder / "daemon.toml", cache_dir=str(folder / "cache"), **config)
    d = DaemonProc(folder / "inbox", folder / "outbox", cfg, folder / "daemon.log")
    started = time.monotonic()
    d.start()
    if actors:
        wait_for(lambda: sum(e.get("event") == "ray_actor_ready" for e in d.events()) >= actors, 300, d.log)
    ready_s = time.monotonic() - started
    dropped = time.monotonic()
    drop_job(d.inbox, "bench", files, ready=True)
    out = d.wait_published("bench", timeout=900)
    job_s = time.monotonic() - dropped
    d.stop()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    frames = sum(o["frames"] for o in report["outputs"])
    where = sorted({e.get("node") for e in d.events() if e.get("event") == "ray_video_started"})
    return {"label": label, "status": report["status"], "start_s": round(ready_s, 1), "job_s": round(job_s, 1),
            "frames": frames, "fps": round(frames / job_s, 1), "nodes_used": ",".join(where) or "-"}


def inside(args: argparse.Namespace) -> None:
    work = Path(args.work)
    video, audio = make_media(work, args.seconds)
    files = {**{f"v{i}.mp4": video for i in range(1, args.videos + 1)}, "voice.wav": audio}
    engine = {"default_engine": args.engine}
    rows = []
    if not args.ray_only:
        rows += [run_job(work, "local, workers=1", {**engine, "workers": 1}, files, 0),
                 run_job(work, "local, workers=2", {**engine, "workers": 2}, files, 0)]
    for nodes in args.nodes:
        cluster = LocalRayCluster(work / f"ray{nodes}")
        try:
            cluster.start(nodes=nodes)
            config = {**engine, "executor": "ray", "ray": {"address": cluster.address, "shared_paths": args.shared}}
            rows.append(run_job(work, f"ray, {nodes} node{'s' if nodes > 1 else ''}", config, files, nodes))
        finally:
            cluster.stop()
    (work / "rows.json").write_text(json.dumps(rows), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--engine", default="builtin")
    parser.add_argument("--shared", action="store_true", help="inputs by path (ray.shared_paths) instead of bytes")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--ray-only", action="store_true", help="skip the local executor's rows")
    parser.add_argument("--keep", help="work in this folder and keep it (logs of the daemons and of Ray)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        if args.keep:
            Path(args.keep).mkdir(parents=True)
            tmp = args.keep
        argv = [__file__, "--inside", "--work", tmp, "--videos", str(args.videos), "--seconds", str(args.seconds),
                "--engine", args.engine, "--nodes", *map(str, args.nodes)] + (["--shared"] if args.shared else []) \
            + (["--ray-only"] if args.ray_only else [])
        rc = in_private_namespace(argv, timeout=3600, log=Path(tmp) / "bench.log")
        if rc != 0 or not (Path(tmp) / "rows.json").is_file():
            print((Path(tmp) / "bench.log").read_text()[-4000:])
            return 1
        rows = json.loads((Path(tmp) / "rows.json").read_text())
    print(f"{args.videos} videos × {args.seconds:g} s, engine {args.engine}, "
          f"inputs {'by path' if args.shared else 'as bytes'}; job = drop → report.json, engines loaded")
    print(f"{'executor':<18} {'status':<7} {'start s':>8} {'job s':>7} {'frames':>7} {'fps':>6}  nodes used")
    for r in rows:
        print(f"{r['label']:<18} {r['status']:<7} {r['start_s']:>8} {r['job_s']:>7} {r['frames']:>7} {r['fps']:>6}"
              f"  {r['nodes_used']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
