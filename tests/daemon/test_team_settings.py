"""[[teams]]: each team is the daemon's settings with its own folders and defaults; mistakes are
refused at start-up; one fair queue across teams (priority, then the oldest arrival)."""

from __future__ import annotations

from pathlib import Path

import pytest

from heygem_daemon.errors import HeygemError
from heygem_daemon.jobs.scheduler import ReadyJob
from heygem_daemon.sdnotify import Notifier
from heygem_daemon.service import Daemon
from heygem_daemon.settings import Settings, load_settings


def _teams(tmp_path: Path, **extra: object) -> list[dict]:
    return [{"name": "hr", "inbox": tmp_path / "hr-in", "outbox": tmp_path / "hr-out", **extra},
            {"name": "sales", "inbox": tmp_path / "sales-in", "outbox": tmp_path / "sales-out"}]


def test_a_team_overrides_only_what_it_sets(tmp_path):
    """hr sets engine, crf, notify, group and mode; everything else is the daemon's."""
    settings = Settings(state_dir=tmp_path / "state", output={"preset": "fast"},
                        notify={"recipients": ["all@example.com"]}, publish={"group": "staff"},
                        teams=_teams(tmp_path, default_engine="wav2lip", output={"crf": 28},
                                     notify=["hr@example.com"], group="users", mode="0640"))
    hr, sales = (settings.team_settings(t) for t in settings.teams)
    assert ("wav2lip", 28, "fast") == (hr.default_engine, hr.output.crf, hr.output.preset)
    assert (["hr@example.com"], "users", "0640") == (hr.notify.recipients, hr.publish.group, hr.publish.mode)
    assert ("builtin", 20, ["all@example.com"], "staff") == (sales.default_engine, sales.output.crf,
                                                            sales.notify.recipients, sales.publish.group)
    assert (tmp_path / "state" / "teams" / "hr", tmp_path / "hr-out") == (hr.state_path, hr.outbox)


@pytest.mark.parametrize("change, words", [
    ({"teams": "same name"}, "each team needs its own name"),
    ({"teams": "shared outbox"}, "each team needs its own inbox and outbox"),
    ({"output": {"crf": 99}}, "team 'hr' [teams.output]: crf"),
    ({"mode": "rw-r-----"}, "mode must be octal permission bits"),
    ({"name": "../etc"}, "name"),
])
def test_team_mistakes_are_refused_when_the_settings_load(tmp_path, change, words):
    """Duplicate names or folders, a wrong output value, a mode that is not octal, a name that is a path."""
    teams = _teams(tmp_path)
    if change.get("teams") == "same name":
        teams[1]["name"] = "hr"
    elif change.get("teams") == "shared outbox":
        teams[1]["outbox"] = teams[0]["outbox"]
    else:
        teams[0].update(change)
    config = tmp_path / "daemon.toml"
    config.write_text("", encoding="utf-8")
    with pytest.raises(HeygemError) as err:
        load_settings(config, teams=teams)
    assert words in str(err.value)


def test_an_unknown_publish_group_stops_the_start(tmp_path):
    """A group that does not exist is a start-up error naming it, before any job is taken."""
    settings = Settings(cache_dir=tmp_path / "cache", teams=_teams(tmp_path, group="no-such-group-xyz"))
    daemon = Daemon(settings, handle_signals=False, notifier=Notifier.from_environ({}))
    with pytest.raises(HeygemError) as err:
        daemon.start()
    assert "The publish group 'no-such-group-xyz' does not exist on this host." in str(err.value)
    daemon.shutdown()


def _ready(daemon: Daemon, team: int, jobs: list[tuple[str, float, int]]) -> None:
    """Job folders (name, arrival time, priority) the team's watcher found ready."""
    for name, _arrived, priority in jobs:
        folder = daemon.teams[team].settings.inbox / name
        folder.mkdir(parents=True)
        (folder / "job.toml").write_text(f"priority = {priority}\n", encoding="utf-8")
    daemon.teams[team].scheduler.update([ReadyJob(name, arrived, "READY") for name, arrived, _ in jobs])


def test_one_queue_across_teams_priority_first_then_the_oldest(tmp_path):
    """Jobs are taken one at a time across teams: the highest priority wherever it is, then the
    job that arrived first, whichever team's it is."""
    settings = Settings(cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", teams=_teams(tmp_path))
    daemon = Daemon(settings, handle_signals=False, notifier=Notifier.from_environ({}))
    for team in daemon.teams:
        team.settings.inbox.mkdir(parents=True)
        team.claimer.ensure_dirs()
    _ready(daemon, 0, [("hr-old", 100.0, 0), ("hr-new", 200.0, 0)])
    _ready(daemon, 1, [("sales-older", 50.0, 0), ("sales-urgent", 300.0, 5)])

    order = []
    for _ in range(4):
        team, claim = daemon._next_claim(1000.0)
        order.append((team.name, claim.job))
        claim.folder.rename(tmp_path / f"done-{claim.job}")  # as if it ran: no longer claimed
    assert [("sales", "sales-urgent"), ("sales", "sales-older"), ("hr", "hr-old"), ("hr", "hr-new")] == order


def test_each_teams_page_uses_the_configured_time_zone_and_names_the_team(tmp_path):
    """[status] timezone reaches every status board the daemon makes, and a team's page is headed
    with the team's name (an admin reading two pages side by side knows which is which)."""
    from heygem_daemon.settings import StatusSettings

    settings = Settings(cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", teams=_teams(tmp_path),
                        status=StatusSettings(timezone="Asia/Tokyo"))
    daemon = Daemon(settings, handle_signals=False, notifier=Notifier.from_environ({}))
    snapshots = [team.board.snapshot() for team in daemon.teams]
    assert [s["timezone"] for s in snapshots] == ["Asia/Tokyo", "Asia/Tokyo"]
    assert [s["title"] for s in snapshots] == [f"heygem-daemon: {team.name}" for team in daemon.teams]
