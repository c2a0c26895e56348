"""Fixtures for notification tests: a published job folder to announce, and a dispatcher that is always closed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heygem_daemon.notify.dispatcher import Dispatcher


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A failed job's outbox folder as the runner leaves it: report.json and ERROR.txt."""
    folder = tmp_path / "outbox" / "Quarterly update"
    folder.mkdir(parents=True)
    report = {"job": "Quarterly update", "status": "partial", "finished_at": "2026-11-29T18:00:00+00:00",
              "outputs": [{"file": "alice_voice.mp4", "status": "done"}, {"file": None, "status": "failed"}]}
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    (folder / "ERROR.txt").write_text("Job 'Quarterly update' finished only in part.\n\n"
                                      "- bob.mov with voice.wav: no face was found in any frame\n", encoding="utf-8")
    return folder


@pytest.fixture
def dispatcher():
    made = Dispatcher(capacity=10)
    made.start()
    yield made
    made.close(timeout_s=5)


class Notices:
    """Stands where a StatusBoard takes notices: (kind, text) in order."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def __call__(self, kind: str, text: str) -> None:
        self.rows.append((kind, text))


@pytest.fixture
def notices() -> Notices:
    return Notices()
