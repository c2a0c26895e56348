"""Fixtures for daemon tests: the real daemon as a subprocess, real folders, real media."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from tests.support.json_log import json_events

REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, **extra: object) -> Path:
    """A daemon.toml using the test paint engine and fast settle/poll times."""
    values = {"settle_seconds": 1.0, "poll_interval": 0.3, "default_engine": "paint", "retry_seconds": 1.0,
              "cache_dir": str(path.parent / "cache")}
    values.update(extra)
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items() if not isinstance(v, dict)]
    lines += ["[engines]", 'paint = "tests.support.paint_engine:PaintEngine"']
    for table, content in ((k, v) for k, v in values.items() if isinstance(v, dict)):
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in content.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class DaemonProc:
    inbox: Path
    outbox: Path
    config: Path
    log_path: Path
    env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def start(self) -> "DaemonProc":
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **self.env}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "heygem_daemon.cli", "run", "--config", str(self.config),
             "--inbox", str(self.inbox), "--outbox", str(self.outbox)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )
        log.close()
        wait_for(lambda: (self.outbox / "status.json").exists() or self.proc.poll() is not None, 60)
        assert self.proc.poll() is None, self.log()
        return self

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]

    def events(self) -> list[dict]:
        return json_events(self.log_path)

    def kill(self) -> None:
        """SIGKILL the daemon (and, as systemd's KillMode would, leave ffmpeg orphans be)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def wait_published(self, name: str, timeout: float = 120) -> Path:
        path = self.outbox / name
        wait_for(lambda: (path / "report.json").exists() or (self.proc and self.proc.poll() is not None), timeout,
                 lambda: self.log())
        assert (path / "report.json").exists(), self.log()
        return path


def wait_for(condition, timeout: float, explain=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s\n{explain()}")


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    outbox.mkdir()
    return inbox, outbox


@pytest.fixture
def daemon_factory(tmp_path: Path, folders):
    """Start real daemons on the test folders; all are stopped (or killed) afterwards."""
    made: list[DaemonProc] = []

    def make(config: dict | None = None, env: dict | None = None, name: str = "daemon") -> DaemonProc:
        inbox, outbox = folders
        cfg = write_config(tmp_path / f"{name}.toml", **(config or {}))
        d = DaemonProc(inbox, outbox, cfg, tmp_path / f"{name}.log", env or {})
        made.append(d)
        return d

    yield make
    for d in made:
        if d.proc and d.proc.poll() is None:
            d.proc.terminate()
            try:
                d.proc.wait(30)
            except subprocess.TimeoutExpired:
                d.proc.kill()
    _reap_orphan_ffmpeg(tmp_path)


def _reap_orphan_ffmpeg(tmp_path: Path) -> None:
    """ffmpeg children of a SIGKILLed daemon finish on their own; don't let them outlive the test."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if proc.info["name"] in ("ffmpeg", "ffprobe") and str(tmp_path) in " ".join(proc.info["cmdline"] or []):
                proc.kill()
        except psutil.Error:
            continue


def drop_job(inbox: Path, name: str, files: dict[str, Path | bytes | str], *, ready: bool = False) -> Path:
    """Build a job folder beside the inbox and move it in with one rename, like a careful NAS script."""
    build = inbox.parent / f".build-{name}"
    build.mkdir()
    for fname, content in files.items():
        target = build / fname
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    if ready:
        (build / "READY").touch()
    os.rename(build, inbox / name)
    return inbox / name


def probe_duration(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,codec_type,duration,r_frame_rate",
         "-of", "json", str(path)], capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)
