"""Claiming by rename: exactly one winner, leases, resume and reclaim."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from heygem_daemon.intake.claim import Claim, Claimer


def _job(inbox: Path, name: str = "job") -> Path:
    folder = inbox / name
    folder.mkdir(parents=True)
    (folder / "a.mp4").write_bytes(b"v")
    return folder


def test_only_one_of_many_racing_claimers_wins(tmp_path):
    """Ten claimers (other hosts) racing for one folder: one claim, nine Nones."""
    _job(tmp_path)
    claimers = [Claimer(tmp_path, host=f"host{i}", pid=100 + i) for i in range(10)]
    for c in claimers:
        c.ensure_dirs()
    barrier = threading.Barrier(10)
    results = []

    def go(c):
        barrier.wait()
        results.append(c.claim("job"))

    threads = [threading.Thread(target=go, args=(c,)) for c in claimers]
    [t.start() for t in threads]
    [t.join() for t in threads]
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].folder.is_dir() and winners[0].lease_path.is_file()
    assert not (tmp_path / "job").exists()


def test_a_claim_name_parses_back_with_dots_in_the_job_name(tmp_path):
    """'q3.v2' claimed by host 'a' pid 7 is folder 'q3.v2.a.7'."""
    claim = Claim.parse(tmp_path, "q3.v2.a.7")
    assert (claim.job, claim.host, claim.pid) == ("q3.v2", "a", 7)
    assert Claim.parse(tmp_path, "nodots") is None


def test_this_hosts_old_claims_are_resumed_and_other_hosts_only_after_their_lease(tmp_path):
    """A restart adopts its own host's claims at once; another host's only once its lease is stale."""
    _job(tmp_path, "mine")
    _job(tmp_path, "theirs")
    old_me = Claimer(tmp_path, host="me", pid=_dead_pid())
    other = Claimer(tmp_path, host="other", pid=2)
    old_me.ensure_dirs()
    old_me.claim("mine")
    other.claim("theirs")
    me = Claimer(tmp_path, host="me", pid=3)
    now = time.time()
    assert [c.job for c in me.adoptable(lease_seconds=60, now=now)] == ["mine"]
    assert sorted(c.job for c in me.adoptable(lease_seconds=60, now=now + 61)) == ["mine", "theirs"]
    adopted = me.adopt(me.adoptable(60, now)[0])
    assert adopted.name == "mine.me.3" and adopted.folder.is_dir()
    lease = adopted.read_lease()
    assert (lease.host, lease.pid) == ("me", 3) and lease.staging_id.startswith(f"mine.me.{old_me.pid}.")


def test_a_live_sibling_daemon_on_this_host_keeps_its_claim_until_its_lease_expires(tmp_path):
    """Two daemons on one host: a running pid's claim is not adopted while its lease is fresh."""
    _job(tmp_path, "busy")
    sibling = Claimer(tmp_path, host="me", pid=os.getpid())
    sibling.ensure_dirs()
    sibling.claim("busy")
    me = Claimer(tmp_path, host="me", pid=_dead_pid())
    assert me.adoptable(lease_seconds=60, now=time.time()) == []
    assert [c.job for c in me.adoptable(lease_seconds=60, now=time.time() + 61)] == ["busy"]


def _dead_pid() -> int:
    """A pid no process has right now."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_heartbeat_keeps_a_lease_fresh(tmp_path):
    """The lease age is the time since the last heartbeat."""
    _job(tmp_path)
    c = Claimer(tmp_path, host="h", pid=5)
    c.ensure_dirs()
    claim = c.claim("job")
    past = time.time() - 500
    os.utime(claim.lease_path, (past, past))
    assert claim.lease_age(time.time()) > 400
    claim.heartbeat()
    assert claim.lease_age(time.time()) < 5


def test_a_second_job_of_the_same_name_waits_while_the_first_is_claimed(tmp_path):
    """Same name, same process: the claim is deferred, not merged into the first."""
    _job(tmp_path)
    c = Claimer(tmp_path, host="h", pid=5)
    c.ensure_dirs()
    assert c.claim("job") is not None
    _job(tmp_path)
    assert c.claim("job") is None
    assert (tmp_path / "job").is_dir()
