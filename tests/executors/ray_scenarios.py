"""Runs inside the test's own network and PID namespace (tests/support/ray_cluster.py):
starts a two-node Ray cluster on loopback, runs the real daemon against it, and
writes what happened into ``OUT/results.json`` for tests/executors/test_ray_cluster.py.

    python -m tests.executors.ray_scenarios SPEC.json

Scenarios, in one cluster to keep the suite short:
  doctor     ``heygem-daemon doctor`` with executor = "ray"
  same       one job through executor "local", then "ray" (inputs shipped as bytes)
  faceless   a job through "ray" with one video that has no face
  daemon_kill a job through "ray" whose daemon is SIGKILLed after one video, then restarted
  node_death a job through "ray" (inputs by shared path) whose second node is killed mid-job
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from tests.daemon.conftest import REPO, DaemonProc, drop_job, wait_for, write_config
from tests.support.ray_cluster import LocalRayCluster, write_json


def main(spec_path: Path) -> int:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    out = Path(spec["out"])
    results: dict = {"errors": []}
    cluster = LocalRayCluster(out / "ray")
    try:
        started = time.monotonic()
        cluster.start(nodes=2)
        results["cluster_start_s"] = round(time.monotonic() - started, 1)
        for name in spec["scenarios"]:
            started = time.monotonic()
            try:
                results[name] = SCENARIOS[name](spec, cluster, out / name)
            except Exception:  # recorded for the test to show; the next scenario still runs
                results["errors"].append(f"{name}: {traceback.format_exc()}")
            results[f"{name}_s"] = round(time.monotonic() - started, 1)
    finally:
        cluster.stop()
        write_json(out / "results.json", results)
    return 0


def _daemon(folder: Path, config: dict) -> DaemonProc:
    inbox, outbox = folder / "inbox", folder / "outbox"
    inbox.mkdir(parents=True)
    outbox.mkdir()
    cfg = write_config(folder / "daemon.toml", **config)
    return DaemonProc(inbox, outbox, cfg, folder / "daemon.log", {"RAY_USAGE_STATS_ENABLED": "0"})


def _ray_config(cluster: LocalRayCluster, folder: Path, engine: str, **ray: object) -> dict:
    return {"executor": "ray", "default_engine": engine, "cache_dir": str(folder / "cache"),
            "ray": {"address": cluster.address, **ray}}


def doctor(spec: dict, cluster: LocalRayCluster, folder: Path) -> dict:
    folder.mkdir(parents=True)
    (folder / "inbox").mkdir()
    (folder / "outbox").mkdir()
    cfg = write_config(folder / "daemon.toml", **_ray_config(cluster, folder, "paint"))
    done = subprocess.run([sys.executable, "-m", "heygem_daemon.cli", "doctor", "--config", str(cfg),
                           "--inbox", str(folder / "inbox"), "--outbox", str(folder / "outbox")],
                          capture_output=True, text=True, cwd=REPO, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-3000:]}


def same(spec: dict, cluster: LocalRayCluster, folder: Path) -> dict:
    """The same job through both executors; the test compares the videos frame by frame."""
    result = {}
    for executor in ("local", "ray"):
        where = folder / executor
        config = {"default_engine": "builtin", "cache_dir": str(where / "cache"), "executor": "local"}
        if executor == "ray":
            config = _ray_config(cluster, where, "builtin", shared_paths=False)
        d = _daemon(where, config).start()
        drop_job(d.inbox, "same", {k: Path(v) for k, v in spec["same_files"].items()}, ready=True)
        titles: list[str] = []
        progress: list[str] = []
        if executor == "ray":
            wait_for(lambda: any(e.get("event") == "ray_video_started" for e in d.events()), 120, d.log)
            time.sleep(1.0)
            titles = _process_titles()
            wait_for(lambda: _running_details(d, progress), 240, d.log)
        published = d.wait_published("same", timeout=240)
        d.stop()
        result[executor] = {"outbox": str(published), "titles": titles, "events": d.events(),
                            "progress": progress}
    return result


def faceless(spec: dict, cluster: LocalRayCluster, folder: Path) -> dict:
    """A job with one good video and one without a face: the faceless one fails once, alone."""
    d = _daemon(folder, _ray_config(cluster, folder, "paint")).start()
    drop_job(d.inbox, "mixed", {k: Path(v) for k, v in spec["faceless_files"].items()}, ready=True)
    published = d.wait_published("mixed", timeout=240)
    d.stop()
    return {"outbox": str(published), "events": d.events()}


def daemon_kill(spec: dict, cluster: LocalRayCluster, folder: Path) -> dict:
    """SIGKILL the daemon after its first video; a new daemon resumes without redoing it."""
    d = _daemon(folder, _ray_config(cluster, folder, "paint", shared_paths=True)).start()
    drop_job(d.inbox, "resumed", {k: Path(v) for k, v in spec["many_files"].items()}, ready=True)
    wait_for(lambda: any(e.get("event") == "video_done" for e in d.events()), 180, d.log)
    d.kill()
    first = d.events()
    # Ray ends the actors with the driver that owns them
    wait_for(lambda: not _process_titles(), 60, lambda: "\n".join(_process_titles()))
    d.log_path = folder / "daemon2.log"
    d.start()
    published = d.wait_published("resumed", timeout=240)
    d.stop()
    return {"outbox": str(published), "first": first, "second": d.events(),
            "outbox_entries": sorted(p.name for p in d.outbox.iterdir())}


def node_death(spec: dict, cluster: LocalRayCluster, folder: Path) -> dict:
    """Kill the second node's processes while it renders a video; the job must end once, complete."""
    d = _daemon(folder, _ray_config(cluster, folder, "paint", shared_paths=True)).start()
    drop_job(d.inbox, "many", {k: Path(v) for k, v in spec["many_files"].items()}, ready=True)

    def on_node2() -> bool:
        return any(e.get("event") == "ray_video_started" and e.get("node") == "node2" for e in d.events())

    wait_for(on_node2, 180, d.log)
    time.sleep(0.3)  # inside the render: inputs read, frames flowing
    killed = cluster.kill_node2()
    published = d.wait_published("many", timeout=240)
    time.sleep(1.0)  # anything the daemon would still (wrongly) publish shows up now
    d.stop()
    return {"outbox": str(published), "killed_pids": killed, "events": d.events(),
            "outbox_entries": sorted(p.name for p in d.outbox.iterdir()),
            "staging_entries": sorted(p.name for p in (d.outbox / ".staging").iterdir())}


def _running_details(d: DaemonProc, seen: list[str]) -> bool:
    """Collect the status page's running lines; True once the job is published."""
    try:
        status = json.loads((d.outbox / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    seen += [r.get("detail", "") for r in status.get("running", []) if r.get("detail") not in seen]
    return (d.outbox / "same" / "report.json").exists()


def _process_titles() -> list[str]:
    done = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if "HeygemRenderer" in line]


SCENARIOS = {"doctor": doctor, "same": same, "faceless": faceless, "daemon_kill": daemon_kill,
             "node_death": node_death}

if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
