"""The real daemon as a subprocess, run with a config file of the test's own (teams, retention,
notifications), and small real jobs to give it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.daemon_wait import wait_for
from tests.support.json_log import json_events

REPO = Path(__file__).resolve().parents[2]


@dataclass
class LiveDaemon:
    config: Path
    log_path: Path
    #: the daemon has started once this file exists
    started_marker: Path
    env: dict[str, str]
    proc: subprocess.Popen | None = None

    def __enter__(self) -> "LiveDaemon":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "LiveDaemon":
        """Start the daemon (again, after a ``kill`` or ``stop``) and wait until it is ready."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "heygem_daemon.cli", "run", "--config",
                                          str(self.config)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        wait_for(lambda: self.ready() or self.proc.poll() is not None, 90, self.log)
        assert self.proc.poll() is None, self.log()
        return self

    def ready(self) -> bool:
        """The daemon has started: ``started_marker`` exists."""
        return self.started_marker.exists()

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it; SIGKILL if it has not ended within a minute."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:] if self.log_path.exists() else ""

    def events(self) -> list[dict]:
        return json_events(self.log_path)


def small_job(inbox: Path, name: str, media_dir: Path, *, toml: str | None = None, audio: bool = True) -> Path:
    """A one-second job (a real face, a tone) built beside the inbox and renamed in, with READY."""
    build = inbox.parent / f".build-{name}"
    build.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media_dir / "face_2.mp4"), "-t", "1", "-an",
                    "-c:v", "copy", str(build / "face.mp4")], check=True, timeout=60)
    if audio:
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:d=1",
                        str(build / "voice.wav")], check=True, timeout=60)
    if toml is not None:
        (build / "job.toml").write_text(toml, encoding="utf-8")
    (build / "READY").touch()
    build.rename(inbox / name)
    return inbox / name


def status(outbox: Path) -> dict:
    try:
        return json.loads((outbox / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
