"""Load: 200 jobs dropped at once are all processed, memory stays flat, status.json stays right.

To fit CI's budget on 2 cores, 20 of the 200 jobs (every tenth) render a real
1.5 s face video and 180 are invalid in three different ways (no audio, a typo in job.toml, a
corrupt video: 20 of them) -- they still go through intake, settle, claim, validation,
probing and publishing, which is where a daemon leaks or stalls under load.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import psutil
import pytest

from .conftest import drop_job, job_folders, read_report, tiny_job

pytestmark = pytest.mark.slow

TOTAL, EVERY = 200, 10  # every tenth job renders a real video
MAX_RSS_GROWTH_MB = 40


class StatusReader(threading.Thread):
    """Reads status.json as often as a dashboard would and checks every copy it gets."""

    def __init__(self, outbox: Path, total: int) -> None:
        super().__init__(daemon=True)
        self.path = outbox / "status.json"
        self.total = total
        self.stop_event = threading.Event()
        self.reads = 0
        self.problems: list[str] = []

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                continue
            self.reads += 1
            try:
                data = json.loads(raw.decode("utf-8"))
            except ValueError as exc:
                self.problems.append(f"invalid JSON ({exc}): {raw[:80]!r}")
                continue
            self._check(data)
            time.sleep(0.02)

    def _check(self, data: dict) -> None:
        sections = {key: [row["job"] for row in data[key]] for key in ("waiting", "queued", "running")}
        names = [n for rows in sections.values() for n in rows]
        if len(names) != len(set(names)):
            self.problems.append(f"a job is listed twice: {sections}")
        if len(sections["running"]) > 1:
            self.problems.append(f"{len(sections['running'])} jobs running with workers = 1")
        if len(names) > self.total:
            self.problems.append(f"{len(names)} jobs listed, only {self.total} exist")
        if len(data["recent"]) > 100:
            self.problems.append("history not bounded")


def _kind(i: int) -> str:
    # a corrupt video costs an ffprobe (about 0.5 s): 20 of them, the rest fail at validation
    if i % EVERY == 0:
        return "real"
    return "corrupt" if i % EVERY == 5 else ("no-audio", "typo")[i % 2]


def test_two_hundred_jobs_at_once_are_all_processed_with_flat_memory_and_valid_status(daemon_factory, tiny_media):
    """200 jobs dropped together: 200 published, RSS growth bounded, every status.json read valid and consistent."""
    d = daemon_factory({"settle_seconds": 0.5, "poll_interval": 0.3}).start()
    process = psutil.Process(d.proc.pid)
    reader = StatusReader(d.outbox, TOTAL)
    reader.start()
    samples: list[tuple[int, float]] = []  # (jobs published, RSS MB)
    names = [f"load-{i:03d}-{_kind(i)}" for i in range(TOTAL)]
    corrupt = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
    for i, name in enumerate(names):
        files: dict = dict(tiny_job(tiny_media))
        kind = _kind(i)
        if kind == "no-audio":
            del files["voice.wav"]
        elif kind == "typo":
            files["job.toml"] = 'vidoes = ["talk.mp4"]\n'
        elif kind == "corrupt":
            files["talk.mp4"] = corrupt
        drop_job(d.inbox, name, files)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            done = sum(1 for n in names if (d.outbox / n / "report.json").exists())
            samples.append((done, process.memory_info().rss / 2**20))
            if done == len(names):
                break
            assert d.proc.poll() is None, d.log()
            time.sleep(0.25)
        time.sleep(1.0)  # a few more status writes after the last job
    finally:
        reader.stop_event.set()
        reader.join(5)
    assert [p.name for p in job_folders(d.outbox)] == names, d.log()
    for i, name in enumerate(names):
        assert read_report(d.outbox / name)["status"] == ("done" if _kind(i) == "real" else "failed"), name
    assert reader.problems == [] and reader.reads > 50
    status = json.loads((d.outbox / "status.json").read_text(encoding="utf-8"))
    assert (status["waiting"], status["queued"], status["running"]) == ([], [], [])
    assert len(status["recent"]) == 100
    for row in status["recent"]:
        assert row["state"] == read_report(d.outbox / row["job"])["status"]
    # memory: after the first 20 jobs (engine, tracker and caches loaded) it must not keep growing
    warm = [rss for done, rss in samples if 20 <= done < 60]
    late = [rss for done, rss in samples if done >= 150]
    assert warm and late
    growth = max(late) - max(warm)
    trail = {mark: max(rss for done, rss in samples if done <= mark) for mark in (20, 60, 100, 150, 200)}
    print(f"RSS after warm-up {max(warm):.0f} MB, at the end {max(late):.0f} MB, growth {growth:.1f} MB; "
          f"max RSS by jobs done: {', '.join(f'{k}: {v:.0f}' for k, v in trail.items())}")
    assert growth < MAX_RSS_GROWTH_MB
