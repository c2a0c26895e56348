"""The shipped unit: valid for systemd, hardened, and consistent with its companions."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEMD_DIR = REPO / "systemd"
UNIT = SYSTEMD_DIR / "heygem-daemon.service"
TMPFILES = SYSTEMD_DIR / "heygem-daemon.tmpfiles.conf"
EXAMPLE_CONFIG = SYSTEMD_DIR / "daemon.toml.example"


def parse_unit(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment; keys may repeat, as in systemd."""
    entries: list[tuple[str, str, str]] = []
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def unit_values(key: str, section: str = "Service") -> list[str]:
    """Every value assigned to ``key`` in ``section`` of the shipped unit."""
    return [v for s, k, v in parse_unit(UNIT) if s == section and k == key]


def require_tool(name: str) -> str:
    """The tool's path, or skip: these checks need systemd's offline tools."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (package: systemd)")
    return path


def require_offline_security() -> str:
    """systemd-analyze with `security --offline` (systemd >= 250), or skip."""
    analyze = require_tool("systemd-analyze")
    first = subprocess.run([analyze, "--version"], capture_output=True, text=True, timeout=30).stdout
    version = re.match(r"systemd (\d+)", first)
    if version is None or int(version.group(1)) < 250:
        pytest.skip(f"`systemd-analyze security --offline` needs systemd >= 250, found: {first[:40]!r}")
    return analyze


MAX_EXPOSURE = 4.0  # systemd-analyze's "OK" band ends here


def _verifiable_copy(tmp_path: Path) -> Path:
    # `verify` refuses an ExecStart binary that does not exist here, and
    # `--root` needs a whole unit tree; so point only the binary at /bin/true
    # and keep every other line (and the arguments) as shipped.
    text = UNIT.read_text()
    assert "ExecStart=/opt/heygem/venv/bin/heygem-daemon " in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace("ExecStart=/opt/heygem/venv/bin/heygem-daemon ", "ExecStart=/bin/true "))
    return copy


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a single warning."""
    analyze = require_tool("systemd-analyze")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(_verifiable_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 even for unknown keys or unparsable values, which it only
    # prints; any output at all is therefore a failure.
    assert (0, "", "") == (result.returncode, result.stdout, result.stderr)


def test_security_exposure_is_ok_with_gpu_allowed() -> None:
    """Offline `systemd-analyze security` scores the unit at most 4.0 (OK)."""
    analyze = require_offline_security()
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == result.returncode, result.stderr
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", result.stdout)
    assert match, result.stdout
    score = float(match.group(1))
    print(f"systemd exposure: {score} {match.group(2)}")
    assert score <= MAX_EXPOSURE
    assert re.search(r"DeviceAllow=.*char-nvidia-uvm:rw", result.stdout), "GPU access must stay allowed"


def test_security_score_script_prints_the_score() -> None:
    """scripts/security_score.sh prints one 'exposure N LABEL' line and succeeds."""
    require_offline_security()
    result = subprocess.run(
        [str(REPO / "scripts" / "security_score.sh")], capture_output=True, text=True, timeout=60
    )
    assert 0 == result.returncode, result.stderr
    assert re.search(r"^exposure [0-9.]+ [A-Z]+ \(systemd \d+\)$", result.stdout, re.MULTILINE)


def test_unit_is_a_notify_service_with_watchdog() -> None:
    """Readiness and liveness come from sd_notify, only from the main process."""
    assert ["notify"] == unit_values("Type")
    assert ["main"] == unit_values("NotifyAccess")
    assert ["60"] == unit_values("WatchdogSec")
    assert ["on-failure"] == unit_values("Restart")
    assert ["mixed"] == unit_values("KillMode")
    assert [
        "/opt/heygem/venv/bin/heygem-daemon run --config /etc/heygem/daemon.toml"
    ] == unit_values("ExecStart")


def test_unit_allows_nvidia_devices_and_nothing_else() -> None:
    """DevicePolicy=closed with the NVIDIA device groups, and devices not made private."""
    assert ["closed"] == unit_values("DevicePolicy")
    allowed = unit_values("DeviceAllow")
    assert {"char-nvidia rw", "char-nvidia-frontend rw", "char-nvidia-uvm rw"} <= set(allowed)
    assert all(entry.startswith("char-nvidia") for entry in allowed)
    assert [] == unit_values("PrivateDevices")
    # libcuda reads /proc/driver/nvidia/params, which ProcSubset=pid hides.
    assert [] == unit_values("ProcSubset")


def test_share_paths_agree_across_unit_tmpfiles_and_example_config() -> None:
    """The inbox and outbox are the same paths in every file an admin edits."""
    config = tomllib.loads(EXAMPLE_CONFIG.read_text())
    share = {config["inbox"], config["outbox"]}
    mounts = set(" ".join(unit_values("RequiresMountsFor", "Unit")).split())
    writable = set(" ".join(unit_values("ReadWritePaths")).split())
    tmpfiles = {line.split()[1] for line in TMPFILES.read_text().splitlines() if line.startswith("d ")}
    assert share == mounts
    assert share == writable
    assert share <= tmpfiles
    assert config["state_dir"] == "/var/lib/" + unit_values("StateDirectory")[0]
    assert config["cache_dir"] == "/var/cache/" + unit_values("CacheDirectory")[0]


def test_stop_timeout_leaves_room_for_the_checkpoint() -> None:
    """systemd waits longer than the daemon spends finishing the current video."""
    config = tomllib.loads(EXAMPLE_CONFIG.read_text())
    assert float(unit_values("TimeoutStopSec")[0]) > config["stop_timeout_s"]


@pytest.mark.parametrize(
    "key",
    [
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "NoNewPrivileges",
        "PrivateNetwork",
        "RestrictAddressFamilies",
        "CapabilityBoundingSet",
        "SystemCallFilter",
        "MemoryDenyWriteExecute",
    ],
)
def test_every_explained_hardening_key_is_set(key: str) -> None:
    """Each hardening line docs/systemd.md explains is present in the unit."""
    assert unit_values(key), f"{key} missing from {UNIT.name}"


def test_documented_share_dropin_verifies_cleanly(tmp_path: Path) -> None:
    """The `systemctl edit` drop-in shown in docs/systemd.md is valid systemd syntax."""
    analyze = require_tool("systemd-analyze")
    docs = (REPO / "docs" / "systemd.md").read_text()
    match = re.search(r"```ini\n# systemctl edit heygem-daemon\n(.*?)```", docs, re.DOTALL)
    assert match, "docs/systemd.md lost its drop-in example"
    unit = _verifiable_copy(tmp_path)
    dropin_dir = tmp_path / f"{unit.name}.d"
    dropin_dir.mkdir()
    (dropin_dir / "override.conf").write_text(match.group(1))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert (0, "", "") == (result.returncode, result.stdout, result.stderr)
