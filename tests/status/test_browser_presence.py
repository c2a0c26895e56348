"""Where Chromium is missing, the browser tests skip with the reason, and fail under CI=true."""

from __future__ import annotations

import pytest

from tests.support.browser import require_chromium


def test_a_missing_browser_skips_with_the_reason(monkeypatch):
    monkeypatch.setenv("HEYGEM_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Debian package 'chromium'"):
        require_chromium()


def test_a_missing_browser_fails_under_ci(monkeypatch):
    monkeypatch.setenv("HEYGEM_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_chromium()

