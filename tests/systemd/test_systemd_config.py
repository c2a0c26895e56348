"""The example daemon.toml and the sysusers/tmpfiles snippets shipped beside the unit."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from heygem_daemon.settings import Settings, load_settings

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "systemd"
EXAMPLE_CONFIG = SYSTEMD_DIR / "daemon.toml.example"
SYSUSERS = SYSTEMD_DIR / "heygem-daemon.sysusers.conf"
TMPFILES = SYSTEMD_DIR / "heygem-daemon.tmpfiles.conf"

#: keys the example sets to a site value on purpose; every other key shows its default
SITE_KEYS = {"inbox", "outbox", "state_dir", "cache_dir"}


@pytest.fixture(autouse=True)
def _no_heygem_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """HEYGEM_* variables of whoever runs the tests must not mask the file."""
    for name in list(os.environ):
        if name.startswith("HEYGEM_"):
            monkeypatch.delenv(name)


def _fields(model: type[BaseModel], prefix: str = "") -> dict[str, object]:
    """Dotted field name -> default, descending into nested tables."""
    out: dict[str, object] = {}
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            out.update(_fields(type(default), f"{prefix}{name}."))
        else:
            out[prefix + name] = default
    return out


def _flatten(table: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in table.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _require_root_and(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (package: systemd)")
    if os.geteuid() != 0:
        pytest.skip(f"{tool} --root needs root to set owners")
    return path


def test_example_config_loads_through_load_settings() -> None:
    """daemon.toml.example is accepted by the daemon's own settings loader."""
    settings = load_settings(config=EXAMPLE_CONFIG)
    assert Path("/srv/heygem/inbox") == settings.inbox
    assert Path("/var/lib/heygem") == settings.state_path


def test_example_config_names_every_setting() -> None:
    """Every Settings field appears in the example, so the file never drifts."""
    text = EXAMPLE_CONFIG.read_text()
    written = _flatten(tomllib.loads(text))
    for dotted, default in _fields(Settings).items():
        key = dotted.rsplit(".", 1)[-1]
        if default is None and dotted not in SITE_KEYS:
            # TOML has no null: unset-by-default keys are shown commented out.
            assert f"# {key} = " in text, f"{dotted} is not documented in {EXAMPLE_CONFIG.name}"
        else:
            assert dotted in written, f"{dotted} is missing from {EXAMPLE_CONFIG.name}"


def test_example_config_shows_the_real_defaults() -> None:
    """Apart from the site paths, each value in the example is the built-in default."""
    written = _flatten(tomllib.loads(EXAMPLE_CONFIG.read_text()))
    defaults = _fields(Settings)
    wrong = {
        key: (value, defaults[key])
        for key, value in written.items()
        # an empty table such as [models] (all keys commented) is no setting
        if key not in SITE_KEYS and value != defaults.get(key, value)
    }
    assert {} == wrong


def test_sysusers_creates_the_heygem_user(tmp_path: Path) -> None:
    """systemd-sysusers --root creates user and group heygem with home /var/lib/heygem."""
    tool = _require_root_and("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    result = subprocess.run([tool, f"--root={tmp_path}", str(SYSUSERS)], capture_output=True, text=True, timeout=60)
    assert 0 == result.returncode, result.stderr
    passwd = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc/passwd").read_text().splitlines()}
    groups = {line.split(":")[0] for line in (tmp_path / "etc/group").read_text().splitlines()}
    assert "/var/lib/heygem" == passwd["heygem"][5]
    assert {"heygem", "video", "render"} <= groups


def test_tmpfiles_makes_setgid_share_folders(tmp_path: Path) -> None:
    """systemd-tmpfiles --create makes inbox/outbox 2775 owned by heygem."""
    sysusers = _require_root_and("systemd-sysusers")
    tmpfiles = _require_root_and("systemd-tmpfiles")
    (tmp_path / "etc").mkdir()
    subprocess.run([sysusers, f"--root={tmp_path}", str(SYSUSERS)], check=True, capture_output=True, timeout=60)
    result = subprocess.run(
        [tmpfiles, f"--root={tmp_path}", "--create", str(TMPFILES)], capture_output=True, text=True, timeout=60
    )
    assert (0, "") == (result.returncode, result.stderr)
    uid = int(next(l for l in (tmp_path / "etc/passwd").read_text().splitlines() if l.startswith("heygem:")).split(":")[2])
    for name in ("inbox", "outbox"):
        stat = (tmp_path / "srv/heygem" / name).stat()
        assert (0o2775, uid) == (stat.st_mode & 0o7777, stat.st_uid)
    assert 0o755 == (tmp_path / "etc/heygem").stat().st_mode & 0o7777
