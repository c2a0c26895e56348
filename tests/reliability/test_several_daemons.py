"""Several daemons on one inbox: claim by rename gives each job to exactly one of them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from heygem_daemon.intake.claim import Claim, LeaseData, host_name

from .conftest import drop_job, job_folders, read_report, tiny_job, wait_for

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, name: str, **extra) -> dict:
    # own state and cache per daemon, as separate installs would have; inbox and outbox shared
    return {"settle_seconds": 0.3, "poll_interval": 0.2, "state_dir": str(tmp_path / f"state-{name}"),
            "cache_dir": str(tmp_path / f"cache-{name}"), **extra}


def _events(daemons, kind: str) -> list[dict]:
    return [e for d in daemons for e in d.events() if e.get("event") == kind]


def test_three_daemons_share_twenty_jobs_each_done_exactly_once(daemon_factory, tiny_media, tmp_path):
    """3 live daemons on one host, 20 jobs: every job claimed once, published once, none adopted from a live peer."""
    daemons = [daemon_factory(_config(tmp_path, n), name=n).start() for n in ("a", "b", "c")]
    jobs = [f"job-{i:02d}" for i in range(20)]
    for job in jobs:
        drop_job(daemons[0].inbox, job, tiny_job(tiny_media))
    outbox = daemons[0].outbox
    wait_for(lambda: all((outbox / j / "report.json").exists() for j in jobs), 240,
             lambda: "\n".join(d.log() for d in daemons))
    time.sleep(1.0)  # let any (wrong) second publication land before counting
    assert [p.name for p in job_folders(outbox)] == jobs
    assert all(read_report(outbox / j)["status"] == "done" for j in jobs)
    claimed = sorted(e["job"] for e in _events(daemons, "job_claimed"))
    assert claimed == jobs
    # a live peer's running claim is never taken over (same host, other pid)
    assert _events(daemons, "job_adopted") == []
    assert sum(1 for d in daemons if any(e.get("event") == "job_published" for e in d.events())) >= 2
    assert list((outbox / ".staging").iterdir()) == []


def _fake_claim(inbox: Path, job: str, files: dict[str, Path], host: str, pid: int) -> Claim:
    """A job claimed by another daemon, exactly as its Claimer leaves it on the share."""
    root = inbox / ".heygem" / "claimed"
    root.mkdir(parents=True, exist_ok=True)
    claim = Claim(root, job, host, pid)
    claim.folder.mkdir()
    for name, src in files.items():
        (claim.folder / name).write_bytes(src.read_bytes())
    now = time.time()
    claim.write_lease(LeaseData(job, host, pid, now, now, staging_id=f"{claim.name}.{int(now * 1000)}"))
    return claim


def test_another_hosts_claim_is_reclaimed_only_after_its_lease_expires(daemon_factory, tiny_media, tmp_path):
    """A claim by host 'nas-node-2' that stops heartbeating is taken over after lease_seconds, not before."""
    d = daemon_factory(_config(tmp_path, "a", lease_seconds=5.0)).start()
    claim = _fake_claim(d.inbox, "orphan", tiny_job(tiny_media), "nas-node-2", 4242)
    written = claim.lease_path.stat().st_mtime
    out = d.wait_published("orphan", timeout=60)
    adopted = next(e for e in d.events() if e.get("event") == "job_adopted")
    assert adopted["previous"] == "orphan.nas-node-2.4242"
    assert read_report(out)["status"] == "done"
    assert (out / "report.json").stat().st_mtime >= written + 5.0
    assert not claim.folder.exists() and not claim.lease_path.exists()


def test_a_heartbeating_claim_of_another_host_is_left_alone(daemon_factory, tiny_media, tmp_path):
    """While the other host keeps touching its lease, its job is not taken, however long it runs."""
    d = daemon_factory(_config(tmp_path, "a", lease_seconds=5.0)).start()
    claim = _fake_claim(d.inbox, "busy", tiny_job(tiny_media), "nas-node-2", 4243)
    for _ in range(16):  # 8 s > lease_seconds
        claim.heartbeat()
        time.sleep(0.5)
    assert claim.folder.is_dir()
    assert not any(e.get("event") == "job_adopted" for e in d.events())
    assert not (d.outbox / "busy").exists()


def test_a_killed_daemons_job_is_finished_by_its_surviving_peer(daemon_factory, media_dir, tmp_path):
    """Two daemons, SIGKILL the one running the job: the live peer sees the dead pid and finishes it (long lease)."""
    daemons = [daemon_factory(_config(tmp_path, n, lease_seconds=600.0), name=n).start() for n in ("a", "b")]
    drop_job(daemons[0].inbox, "long", {"talk.mp4": media_dir / "face_5.mp4", "voice.wav": media_dir / "audio_2.wav"})
    wait_for(lambda: any(e.get("event") == "video_started" for d in daemons for e in d.events()), 60,
             lambda: daemons[0].log() + daemons[1].log())
    victim = next(d for d in daemons if any(e.get("event") == "video_started" for e in d.events()))
    survivor = next(d for d in daemons if d is not victim)
    victim.kill()
    dead_claim = f"long.{host_name()}.{victim.proc.pid}"
    assert (victim.inbox / ".heygem" / "claimed" / dead_claim).is_dir()
    out = survivor.wait_published("long", timeout=120)
    assert read_report(out)["status"] == "done"
    adopted = next(e for e in survivor.events() if e.get("event") == "job_adopted")
    assert adopted["previous"] == dead_claim
    assert sorted(p.name for p in (out / "source").iterdir()) == ["talk.mp4", "voice.wav"]
