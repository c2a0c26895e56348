"""index.html as written, before any browser: times, reasons, links, structure."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup

from heygem_daemon.settings import Settings
from heygem_daemon.status import PageView, render_main
from heygem_daemon.status.published import first_lines
from heygem_daemon.status.times import clock_time, relative, time_left

from .scenes import every_state

NOW = datetime(2026, 11, 29, 13, 10, tzinfo=timezone.utc)
BERLIN = ZoneInfo("Europe/Berlin")


def _data(**rows) -> dict:
    return {"updated_at": "2026-11-29T13:10:00+00:00", "host": "h", "problem": None, "waiting": [], "queued": [],
            "running": [], "recent": [], "notices": [], **rows}


def test_times_are_local_to_the_configured_zone_with_a_relative_form():
    """13:05 UTC is 14:05 in Berlin in November; five minutes before 13:10 is "5 min ago"."""
    row = {"job": "j", "state": "done", "detail": "published", "since": "2026-11-29T13:05:00+00:00",
           "outbox_name": "j", "outputs": []}
    soup = BeautifulSoup(render_main(_data(recent=[row]), PageView(BERLIN, NOW)), "html.parser")
    cell = soup.select_one("#finished tbody tr td:nth-of-type(2)")
    assert "14:05 CET" == cell.time.get_text()
    assert "2026-11-29T13:05:00+00:00" == cell.time["datetime"]
    assert "5 min ago" == cell.select_one(".ago").get_text()
    assert "times in Europe/Berlin" in soup.header.get_text()


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2026-11-29T13:05:00+00:00", "14:05 CET"),
    ("2026-11-27T09:00:00+00:00", "Fri 27 Nov, 10:00 CET"),
    ("2026-07-01T09:00:00+00:00", "Wed 01 Jul, 11:00 CEST"),
    ("2025-12-31T12:00:00+00:00", "31 Dec 2025, 13:00 CET"),
    ("2025-12-31T23:30:00+00:00", "Thu 01 Jan, 00:30 CET"),  # the year in Berlin, not in UTC
])
def test_clock_time_says_no_more_than_needed(stamp, expected):
    """Today: the time; this year: the day too; earlier: the year too. Summer time is shown as such."""
    assert expected == clock_time(datetime.fromisoformat(stamp), BERLIN, NOW)


@pytest.mark.parametrize(("seconds", "expected"), [
    (-30, "just now"), (3, "just now"), (40, "40 s ago"), (300, "5 min ago"), (3 * 3600 + 5, "3 h ago"),
    (86400 + 1, "yesterday"), (4 * 86400, "4 days ago"),
])
def test_relative_times(seconds, expected):
    assert expected == relative(datetime.fromtimestamp(NOW.timestamp() - seconds, timezone.utc), NOW)


@pytest.mark.parametrize(("seconds", "expected"), [
    (12, "about 10 s left"), (2, "about 5 s left"), (210, "about 4 min left"), (4800, "about 1 h 20 min left"),
])
def test_time_left_in_words(seconds, expected):
    assert expected == time_left(seconds)


def test_an_unknown_time_zone_is_refused_at_start_up():
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Berlln'"):
        Settings(status={"timezone": "Europe/Berlln"})


def test_the_reason_is_the_problem_part_of_error_txt_cut_short():
    """Heading and advice are dropped; more than six lines are cut with an ellipsis."""
    text = ("Job 'x' failed.\n\n- job.toml: unknown key 'vidoes'. Did you mean 'videos'?\n\n"
            "0 of 0 videos were made.\nYour original files are in the 'source' folder next to this file.\n")
    assert "- job.toml: unknown key 'vidoes'. Did you mean 'videos'?" == first_lines(text)
    many = "Job 'x' failed.\n\n" + "".join(f"- problem {i}\n" for i in range(9)) + "\nadvice\n"
    assert first_lines(many).endswith("- problem 5 …")
    assert first_lines("") is None


def test_without_script_the_page_refreshes_itself_and_with_script_it_does_not(tmp_path):
    """The meta refresh lies inside <noscript>; nothing else reloads the page."""
    page = every_state(tmp_path).page.read_text(encoding="utf-8")
    soup = BeautifulSoup(page, "html.parser")
    refreshes = soup.find_all("meta", attrs={"http-equiv": "refresh"})
    assert 1 == len(refreshes) and "noscript" == refreshes[0].parent.name


def test_nothing_is_fetched_from_outside_the_outbox(tmp_path):
    """Every src and href is relative (no scheme, no //host), and the style and script are inline."""
    soup = BeautifulSoup(every_state(tmp_path).page.read_text(encoding="utf-8"), "html.parser")
    links = [t.get(a) for a in ("src", "href", "poster") for t in soup.find_all(attrs={a: True})]
    assert links and [] == [link for link in links if re.match(r"^([a-z][a-z0-9+.-]*:|//)", link, re.I)]
    assert [] == soup.find_all("link") and [] == soup.find_all("script", src=True)
    assert soup.find("style").get_text() and soup.find("script").get_text()


def test_tables_have_captions_and_scoped_headers(tmp_path):
    """Every table: a caption, column headers scoped to columns, one row header per row."""
    soup = BeautifulSoup(every_state(tmp_path).page.read_text(encoding="utf-8"), "html.parser")
    tables = soup.find_all("table")
    assert 5 == len(tables)
    for table in tables:
        assert table.caption.get_text().strip()
        assert all("col" == th["scope"] for th in table.thead.find_all("th"))
        for row in table.tbody.find_all("tr"):
            assert ["row"] == [th["scope"] for th in row.find_all("th")]


def test_job_names_are_text_not_markup(tmp_path):
    """A job called <script>… shows as those characters."""
    scene = every_state(tmp_path)
    scene.board.finished("<script>alert(1)</script>", "failed", "x", None)
    page = scene.page.read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_without_script_the_page_is_whole(tmp_path):
    """index.html as written is the page a browser without script shows: the same jobs, the bar,
    the reason and the players.  (Headless Chromium cannot dump a DOM with script off.)"""
    soup = BeautifulSoup(every_state(tmp_path).page.read_text(encoding="utf-8"), "html.parser")
    assert "30" == soup.select_one("#running progress")["value"]
    assert "No face was found" in soup.select_one("#finished .reason").get_text()
    assert 3 == len(soup.select("#finished video"))
