"""Settings: TOML file, HEYGEM_* environment, CLI flags; env beats file, flags beat env."""

from __future__ import annotations

from pathlib import Path

import pytest

from heygem_daemon.errors import HeygemError
from heygem_daemon.settings import load_settings


def test_env_overrides_toml_and_flags_override_env(tmp_path, monkeypatch):
    """settle from env beats the file; inbox from a flag beats env."""
    cfg = tmp_path / "d.toml"
    cfg.write_text('settle_seconds = 3\ninbox = "/from/file"\n[limits]\nmax_duration_s = 60\n')
    monkeypatch.setenv("HEYGEM_SETTLE_SECONDS", "7")
    monkeypatch.setenv("HEYGEM_INBOX", "/from/env")
    monkeypatch.setenv("HEYGEM_LIMITS__MAX_FPS", "50")
    s = load_settings(cfg, inbox=Path("/from/flag"), outbox=None)
    assert s.settle_seconds == 7
    assert s.inbox == Path("/from/flag")
    assert s.limits.max_duration_s == 60 and s.limits.max_fps == 50


def test_unknown_keys_and_bad_devices_are_refused(tmp_path):
    """A typo in daemon.toml is an error at start-up, not a silent default."""
    cfg = tmp_path / "d.toml"
    cfg.write_text("setle_seconds = 3\n")
    with pytest.raises(Exception, match="setle_seconds"):
        load_settings(cfg)
    with pytest.raises(Exception, match="device"):
        load_settings(None, device="gpu0")


def test_a_missing_config_file_is_a_clear_error(tmp_path):
    """--config pointing nowhere says so."""
    with pytest.raises(HeygemError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_the_input_height_limit_keeps_its_old_name_as_an_alias(tmp_path, monkeypatch):
    """limits.max_input_height (refuses taller inputs) was limits.max_height, which read like
    output.max_height (scales down): the old name in a config file or the environment still works."""
    config = tmp_path / "daemon.toml"
    config.write_text("[limits]\nmax_height = 2160\n", encoding="utf-8")
    assert 2160 == load_settings(config).limits.max_input_height
    config.write_text("[limits]\nmax_input_height = 1440\n", encoding="utf-8")
    assert 1440 == load_settings(config).limits.max_input_height
    assert 1080 == load_settings(config).output.max_height
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("HEYGEM_LIMITS__MAX_HEIGHT", "720")
    assert 720 == load_settings(config).limits.max_input_height
