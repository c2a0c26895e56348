"""Claiming by rename: exactly one winner, leases, resume and reclaim."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from heygem_daemon.intake.claim import Claim, Claimer
from tests.support.processes import dead_pid


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
    old_me = Claimer(tmp_path, host="me", pid=dead_pid())
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
    me = Claimer(tmp_path, host="me", pid=dead_pid())
    assert me.adoptable(lease_seconds=60, now=time.time()) == []
    assert [c.job for c in me.adoptable(lease_seconds=60, now=time.time() + 61)] == ["busy"]



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


# -- crash litter ---------------------------------------------------------------------


def _temp_of(claim: Claim, pid: int) -> Path:
    """The temp file write_atomic makes beside a lease (as a SIGKILL mid-write leaves it)."""
    path = claim.root / f".{claim.lease_path.name}.{pid}.139918808390528.tmp"
    path.write_text("{", encoding="utf-8")
    return path


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_lease_temp_file_of_a_dead_process_on_this_host_is_swept(tmp_path):
    """A kill inside write_atomic leaves '.<claim>.lease.<pid>.<tid>.tmp': removed once that pid is gone."""
    _job(tmp_path)
    dead = dead_pid()
    old = Claimer(tmp_path, host="me", pid=dead)
    old.ensure_dirs()
    claim = old.claim("job")
    litter = _temp_of(claim, dead)
    me = Claimer(tmp_path, host="me", pid=os.getpid())
    assert [litter.name] == me.sweep(lease_seconds=60)
    assert not litter.exists()
    assert claim.folder.is_dir() and claim.lease_path.is_file(), "the claim itself is the job: kept"


def test_a_temp_file_of_a_live_writer_is_kept(tmp_path):
    """A temp file whose writer still runs (here: this test's own pid) may be mid-write: kept."""
    _job(tmp_path)
    owner = Claimer(tmp_path, host="me", pid=os.getpid())
    owner.ensure_dirs()
    writing = _temp_of(owner.claim("job"), os.getpid())
    assert [] == Claimer(tmp_path, host="me", pid=dead_pid()).sweep(lease_seconds=60)
    assert writing.exists()


def test_another_hosts_litter_is_swept_only_after_the_lease_time(tmp_path):
    """Another host's pid cannot be checked from here: its litter goes once older than lease_seconds."""
    _job(tmp_path)
    other = Claimer(tmp_path, host="other", pid=77)
    other.ensure_dirs()
    claim = other.claim("job")
    litter = _temp_of(claim, 77)
    me = Claimer(tmp_path, host="me", pid=os.getpid())
    assert [] == me.sweep(lease_seconds=60)
    _age(litter, 61)
    assert [litter.name] == me.sweep(lease_seconds=60)
    assert claim.lease_path.is_file()


def test_a_lease_left_without_its_folder_is_swept(tmp_path):
    """A kill between removing a finished job's folder and its lease leaves the lease alone: swept."""
    _job(tmp_path, "mine")
    _job(tmp_path, "theirs")
    dead = Claimer(tmp_path, host="me", pid=dead_pid())
    dead.ensure_dirs()
    other = Claimer(tmp_path, host="other", pid=77)
    mine, theirs = dead.claim("mine"), other.claim("theirs")
    for claim in (mine, theirs):
        os.rename(claim.folder, tmp_path / f"published-{claim.job}")
    me = Claimer(tmp_path, host="me", pid=os.getpid())
    assert [mine.lease_path.name] == me.sweep(lease_seconds=60)
    assert theirs.lease_path.exists(), "another host's fresh lease may be an adoption in progress"
    assert [theirs.lease_path.name] == me.sweep(lease_seconds=60, now=time.time() + 61)


def test_the_lease_of_a_live_claim_and_foreign_files_are_never_swept(tmp_path):
    """A claimed job's lease (even an old one) and files that are not ours stay where they are."""
    _job(tmp_path)
    dead = Claimer(tmp_path, host="me", pid=dead_pid())
    dead.ensure_dirs()
    claim = dead.claim("job")
    _age(claim.lease_path, 1000)
    stranger = claim.root / "notes.txt"
    stranger.write_text("x", encoding="utf-8")
    _age(stranger, 1000)
    assert [] == Claimer(tmp_path, host="me", pid=os.getpid()).sweep(lease_seconds=60)
    assert claim.lease_path.exists() and stranger.exists()


def test_adopting_moves_folder_and_lease_together(tmp_path):
    """After adopt only our folder and our lease remain, and the lease keeps the old staging id."""
    _job(tmp_path)
    old = Claimer(tmp_path, host="me", pid=dead_pid())
    old.ensure_dirs()
    old_claim = old.claim("job")
    staging_id = old_claim.read_lease().staging_id
    new = Claimer(tmp_path, host="me", pid=os.getpid()).adopt(old_claim)
    assert staging_id == new.read_lease().staging_id
    assert sorted([new.name, new.lease_path.name]) == sorted(p.name for p in old.root.iterdir())


def test_a_kill_inside_adopt_leaves_only_sweepable_litter(tmp_path):
    """adopt writes the adopter's lease before moving the folder: a kill in between leaves a lease
    without a folder, which a restart sweeps, while the old claim stays whole and adoptable."""
    _job(tmp_path)
    other = Claimer(tmp_path, host="other", pid=77)
    other.ensure_dirs()
    old_claim = other.claim("job")
    killed_adopter = Claim(other.root, "job", "me", dead_pid())
    killed_adopter.write_lease(old_claim.read_lease())
    me = Claimer(tmp_path, host="me", pid=os.getpid())
    assert [killed_adopter.lease_path.name] == me.sweep(lease_seconds=60)
    assert old_claim.folder.is_dir() and old_claim.read_lease() is not None
