"""job.toml's notify list: e-mail addresses, checked like every other key; a domain the admin does
not allow is a warning in the job's log, never a failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from heygem_daemon.errors import JobValidationError
from heygem_daemon.jobs.spec import load_job, split_by_domain
from heygem_daemon.settings import Settings


def _job(tmp_path: Path, toml: str) -> Path:
    """A job folder whose media are never read (validation only lists them)."""
    folder = tmp_path / "job"
    folder.mkdir()
    for name in ("voice.wav", "a.mp4"):
        (folder / name).write_bytes(b"fake")
    (folder / "job.toml").write_text(toml, encoding="utf-8")
    return folder


def _settings(tmp_path: Path, allowed: list[str]) -> Settings:
    return Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox",
                    notify={"email": {"allowed_domains": allowed}})


def test_a_notify_item_that_is_no_address_is_a_validation_error_naming_it(tmp_path):
    """notify = ["alice@example.com", "bob at example"]: item 2 is named, with the fix."""
    folder = _job(tmp_path, 'notify = ["alice@example.com", "bob at example"]\n')
    with pytest.raises(JobValidationError) as err:
        load_job(folder, _settings(tmp_path, ["example.com"]), known_engines={"builtin"})
    assert ("job.toml: item 2 of 'notify' ('bob at example') is not an e-mail address. "
            'Write addresses in quotes, like notify = ["alice@example.com"].') == str(err.value)


def test_notify_as_a_single_string_asks_for_a_list(tmp_path):
    """notify = "alice@example.com" (no brackets): the error shows the list form."""
    folder = _job(tmp_path, 'notify = "alice@example.com"\n')
    with pytest.raises(JobValidationError) as err:
        load_job(folder, _settings(tmp_path, []), known_engines={"builtin"})
    assert str(err.value).startswith("job.toml: 'notify' must be a list of at most 50 e-mail addresses, "
                                     'like notify = ["alice@example.com"]')


def test_addresses_outside_the_allowed_domains_are_left_out_with_a_warning(tmp_path):
    """The job is valid; only the allowed address is planned; notify_domain_refused warns in its log."""
    folder = _job(tmp_path, 'notify = ["alice@Example.com", "eve@elsewhere.org"]\n')
    with capture_logs() as logs:
        plan = load_job(folder, _settings(tmp_path, ["example.com"]), known_engines={"builtin"})
    assert ("alice@Example.com",) == plan.notify
    [warning] = [e for e in logs if e["event"] == "notify_domain_refused"]
    assert (["eve@elsewhere.org"], "warning") == (warning["addresses"], warning["log_level"])


def test_domains_match_without_case_and_never_by_suffix():
    """example.com allows Alice@EXAMPLE.COM, not someone@evil-example.com nor a sub-domain."""
    allowed, refused = split_by_domain(["Alice@EXAMPLE.COM", "x@evil-example.com", "y@mail.example.com"],
                                       ["example.com"])
    assert (["Alice@EXAMPLE.COM"], ["x@evil-example.com", "y@mail.example.com"]) == (allowed, refused)
