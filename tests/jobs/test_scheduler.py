"""Which job runs next: priority, then arrival; the order survives a restart."""

from __future__ import annotations

from pathlib import Path

from heygem_daemon.intake.watcher import ReadyJob
from heygem_daemon.jobs.scheduler import Scheduler


def _job(inbox: Path, name: str, toml: str | None = None) -> None:
    (inbox / name).mkdir()
    if toml is not None:
        (inbox / name / "job.toml").write_text(toml)


def test_higher_priority_runs_first_then_arrival_order(tmp_path):
    """priority 5 beats earlier arrivals; equal priorities keep arrival order."""
    inbox, state = tmp_path / "in", tmp_path / "state"
    inbox.mkdir()
    _job(inbox, "first")
    _job(inbox, "second")
    _job(inbox, "urgent", "priority = 5\n")
    _job(inbox, "broken", "priority = 'high'\n")
    s = Scheduler(inbox, state, max_toml_bytes=65536)
    s.update([ReadyJob("second", 2.0, ""), ReadyJob("first", 1.0, ""), ReadyJob("urgent", 3.0, ""),
              ReadyJob("broken", 0.5, "")])
    assert [j.name for j in s.ordered()] == ["urgent", "broken", "first", "second"]


def test_arrival_order_survives_a_restart(tmp_path):
    """A new scheduler reads arrival times back from the state folder."""
    inbox, state = tmp_path / "in", tmp_path / "state"
    inbox.mkdir()
    _job(inbox, "old")
    _job(inbox, "new")
    Scheduler(inbox, state, max_toml_bytes=65536).update([ReadyJob("old", 1.0, "")])
    again = Scheduler(inbox, state, max_toml_bytes=65536)
    again.update([ReadyJob("new", 5.0, ""), ReadyJob("old", 9.0, "")])  # after restart both seen "now"
    assert [j.name for j in again.ordered()] == ["old", "new"]


def test_taken_jobs_leave_the_queue_and_the_journal(tmp_path):
    """Claimed jobs are forgotten."""
    inbox, state = tmp_path / "in", tmp_path / "state"
    inbox.mkdir()
    _job(inbox, "a")
    s = Scheduler(inbox, state, max_toml_bytes=65536)
    s.update([ReadyJob("a", 1.0, "")])
    s.taken("a")
    assert s.ordered() == [] and s.arrived("a") is None
    assert Scheduler(inbox, state, max_toml_bytes=65536).arrived("a") is None
