"""The status page people read on the share."""

from __future__ import annotations

import json

from heygem_daemon.status import JobStatus, StatusBoard


def test_status_json_and_html_show_running_queued_and_newest_finished_first(tmp_path):
    """A running job shows 'video 3 of 8'; finished jobs list newest first and survive a restart."""
    board = StatusBoard(tmp_path, tmp_path / "state", "host1")
    board.finished("old", "done", "published", "old")
    board.finished("bad", "failed", "published", "bad")
    board.set_inbox({"arriving": "settling (3/10 s unchanged)"}, [JobStatus("next", "queued")], None)
    board.running_update("big", "video 3 of 8: 40%", 0.3)
    data = json.loads((tmp_path / "status.json").read_text())
    assert data["running"][0]["detail"] == "video 3 of 8: 40%"
    assert [r["job"] for r in data["recent"]] == ["bad", "old"]
    assert data["queued"][0]["job"] == "next" and data["waiting"][0]["job"] == "arriving"
    page = (tmp_path / "index.html").read_text()
    assert "video 3 of 8" in page and "<script" not in page
    again = StatusBoard(tmp_path, tmp_path / "state", "host1")
    assert [r.job for r in again.recent] == ["bad", "old"]


def test_job_names_are_escaped_in_the_page(tmp_path):
    """A job called <script> is text, not markup."""
    board = StatusBoard(tmp_path, tmp_path / "state", "h")
    board.finished("<script>alert(1)</script>", "failed", "x", None)
    assert "<script>alert" not in (tmp_path / "index.html").read_text()


def test_notices_are_listed_newest_first_bounded_and_survive_a_restart(tmp_path):
    """notice() adds to status.json's "notices" (newest first, at most MAX_NOTICES), kept across restarts."""
    from heygem_daemon.status import MAX_NOTICES

    board = StatusBoard(tmp_path, tmp_path / "state", "h")
    for i in range(MAX_NOTICES + 3):
        board.notice("retention", f"moved job-{i} to .trash")
    board.notice("notify_failed", "webhook https://example.invalid: HTTP 500")
    data = json.loads((tmp_path / "status.json").read_text())
    assert len(data["notices"]) == MAX_NOTICES
    assert data["notices"][0]["kind"] == "notify_failed" and data["notices"][1]["text"] == f"moved job-{MAX_NOTICES + 2} to .trash"
    assert {"at", "kind", "text"} == set(data["notices"][0])
    assert "webhook https://example.invalid: HTTP 500" in (tmp_path / "index.html").read_text()
    again = StatusBoard(tmp_path, tmp_path / "state", "h")
    assert again.notices == data["notices"]
