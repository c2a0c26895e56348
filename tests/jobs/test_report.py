"""ERROR.txt: plain words, one bullet per problem, nested lines kept under their bullet."""

from __future__ import annotations

from heygem_daemon.jobs.report import JobReport, OutputReport, error_text


def test_an_error_listing_several_problems_stays_under_one_bullet():
    """A validation error naming three problems reads as one bullet with its lines indented."""
    report = JobReport(job="j", errors=["job.toml has 2 problems:\n'videos' must be a list\n'crf' is too high"])
    report.settle_status()
    text = error_text(report)
    assert "- job.toml has 2 problems:\n  'videos' must be a list\n  'crf' is too high\n" in text


def test_a_done_job_has_no_error_text():
    """Nothing went wrong: no ERROR.txt at all."""
    report = JobReport(job="j", outputs=[OutputReport(video="a.mp4", audio="v.wav", status="done", file="a_v.mp4")])
    report.settle_status()
    assert error_text(report) is None
