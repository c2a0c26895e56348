"""The ``executor`` setting: local by default without Ray, a clear refusal when the cluster is
not there, and ``auto`` falling back to this host."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon.conftest import REPO, daemon_factory, drop_job, folders, write_config  # noqa: F401 -- fixtures
from tests.support.ray_cluster import NAMESPACE_ENV, ray_installed

ASSETS = REPO / "heygem_daemon" / "assets"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_default_executor_is_local_and_never_imports_ray(tmp_path):
    """A daemon with default settings renders on its own threads and never imports Ray."""
    script = (
        "import sys\n"
        "from heygem_daemon.service import Daemon\n"
        "from heygem_daemon.settings import Settings\n"
        f"d = Daemon(Settings(inbox={str(tmp_path / 'in')!r}, outbox={str(tmp_path / 'out')!r}), handle_signals=False)\n"
        "print(d.runner.executor.name, sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "local []" == done.stdout.strip().splitlines()[-1]


def test_executor_ray_refuses_to_start_when_no_cluster_answers(tmp_path):
    """executor = "ray" with nothing at ray.address: start-up fails at once, saying how to fix it."""
    if not ray_installed():
        if os.environ.get("CI") == "true":
            pytest.fail("CI installs the ray extra (.ci/run)")
        pytest.skip("the ray extra is not installed (pip install -e '.[ray]')")
    config = write_config(tmp_path / "daemon.toml", executor="ray", ray={"address": f"127.0.0.1:{_closed_port()}"})
    done = subprocess.run([sys.executable, "-m", "heygem_daemon.cli", "run", "--config", str(config),
                           "--inbox", str(tmp_path / "in"), "--outbox", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, **NAMESPACE_ENV})
    assert 2 == done.returncode
    assert "Cannot join the Ray cluster at '127.0.0.1:" in done.stdout + done.stderr
    assert "ray start --head" in done.stdout + done.stderr


def test_auto_renders_on_this_host_when_no_cluster_answers(daemon_factory):
    """executor = "auto" without a reachable cluster (or without Ray) runs the job on local threads."""
    d = daemon_factory({"executor": "auto", "ray": {"address": f"127.0.0.1:{_closed_port()}"}},
                       env={"RAY_AUTH_MODE": "disabled"}).start()
    drop_job(d.inbox, "fallback", {"a.mp4": ASSETS / "sample_face.mp4", "voice.m4a": ASSETS / "sample_voice.m4a"},
             ready=True)
    report = json.loads((d.wait_published("fallback") / "report.json").read_text(encoding="utf-8"))
    assert "done" == report["status"]
    assert "cpu" == report["device"]
    chosen = [e for e in d.events() if e.get("event") == "executor_chosen"]
    assert ["local"] == [e["executor"] for e in chosen]
    assert "Cannot join the Ray cluster" in chosen[0]["reason"] or "not installed" in chosen[0]["reason"]
