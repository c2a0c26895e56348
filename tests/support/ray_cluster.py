"""A real two-node Ray cluster on 127.0.0.1, for tests and benchmarks.

Everything runs inside a namespace of its own (``in_private_namespace``): a network
namespace with only loopback, where Ray advertises 127.0.0.1 (outside one it
advertises the machine's interface address even when told 127.0.0.1), and a PID
namespace, so ``ray stop --force`` sees only this cluster's processes and the kernel
ends whatever is left when the namespace's first process exits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
PORT = 6399


def ray_installed() -> bool:
    return shutil.which("ray", path=str(Path(sys.executable).parent)) is not None


def namespaces_available() -> tuple[bool, str]:
    """Whether this machine lets us make the private namespace (root, or user namespaces)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False, "unshare or ip (util-linux, iproute2) is not installed"
    probe = subprocess.run(_UNSHARE + ["true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return False, f"cannot create a network namespace here: {probe.stderr.strip()}"
    return True, ""


_UNSHARE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]
NAMESPACE_ENV = {
    "PYTHONPATH": str(REPO),
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray 2.60 turns on token authentication by itself when ~/.ray/auth_token exists
    # (a local ray.init() writes one); a throw-away loopback cluster needs none
    "RAY_AUTH_MODE": "disabled",
}


def in_private_namespace(argv: list[str], *, timeout: float, log: Path) -> int:
    """Run ``argv`` (a Python script's arguments) in a fresh net+PID namespace with loopback up."""
    script = "ip link set lo up && exec " + " ".join(_quote(a) for a in [sys.executable, *argv])
    with open(log, "ab") as out:
        proc = subprocess.run(_UNSHARE + ["sh", "-c", script], stdout=out, stderr=subprocess.STDOUT,
                              cwd=REPO, env={**os.environ, **NAMESPACE_ENV}, timeout=timeout)
    return proc.returncode


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


class LocalRayCluster:
    """A head (``ray start --head``) and a second node (``ray start --address``), each with 1 CPU.

    The second node runs in the foreground (``--block``) as our child, so its raylet
    and workers are our descendants and can be killed by pid to play a dead host.
    """

    def __init__(self, temp_dir: Path, *, object_store_mb: int = 150) -> None:
        self.temp_dir = temp_dir
        self.object_store = str(object_store_mb * 1024 * 1024)
        self.node2: subprocess.Popen | None = None
        self.ray = str(Path(sys.executable).parent / "ray")
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0",
                    # a dead node is noticed within ~2 s instead of ~30 s
                    "RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
                    "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "0"}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{PORT}"

    def start(self, nodes: int = 2) -> "LocalRayCluster":
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
                  f"--object-store-memory={self.object_store}"]
        self._run([self.ray, "start", "--head", f"--port={PORT}", "--include-dashboard=false",
                   f"--temp-dir={self.temp_dir}", "--node-name=head", '--resources={"head": 1}', *common])
        if nodes >= 2:
            with open(self.temp_dir.parent / "node2.log", "ab") as log:
                self.node2 = subprocess.Popen(
                    [self.ray, "start", f"--address={self.address}", "--block", "--node-name=node2",
                     '--resources={"node2": 1}', *common],
                    env=self.env, stdout=log, stderr=subprocess.STDOUT)
            self._wait_nodes(2)
        return self

    def kill_node2(self) -> list[int]:
        """SIGKILL the second node's raylet, workers and its ``ray start``: a host that died."""
        assert self.node2 is not None
        root = psutil.Process(self.node2.pid)
        victims = root.children(recursive=True) + [root]
        for proc in victims:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                continue
        self.node2.wait(10)
        return [p.pid for p in victims]

    def stop(self) -> None:
        # inside our PID namespace, so --force reaches this cluster's processes only
        subprocess.run([self.ray, "stop", "--force"], env=self.env, capture_output=True, timeout=60)
        if self.node2 is not None and self.node2.poll() is None:
            self.node2.kill()
            self.node2.wait(10)

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])} failed: {done.stderr[-2000:]}")

    def _wait_nodes(self, count: int, timeout: float = 90) -> None:
        """Until ``count`` nodes are alive, asked through a driver of our own (ray.nodes())."""
        probe = (f"import ray, sys, time; ray.init(address='{self.address}', log_to_driver=False)\n"
                 f"deadline = time.monotonic() + {timeout}\n"
                 f"while sum(n['Alive'] for n in ray.nodes()) < {count} and time.monotonic() < deadline:\n"
                 "    time.sleep(0.3)\n"
                 f"sys.exit(sum(n['Alive'] for n in ray.nodes()) < {count})\n")
        done = subprocess.run([sys.executable, "-c", probe], env=self.env, capture_output=True, text=True,
                              timeout=timeout + 60)
        if done.returncode != 0:
            alive = "node2 exited" if self.node2 is not None and self.node2.poll() is not None else "node2 running"
            raise RuntimeError(f"the cluster did not reach {count} nodes ({alive}): {done.stderr[-2000:]}")

def write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
