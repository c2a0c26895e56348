"""Headless Chromium (Debian's ``chromium`` package) for tests of the status page.

A page is loaded from disk like a person opening it from the share, its scripts run
(``--virtual-time-budget`` lets timers fire without waiting for them in real time),
and the DOM they leave behind, or a screenshot, comes back.

Where Chromium is missing the calling test is skipped with the reason, except under
``CI=true``, where it fails: scripts/setup.sh installs Chromium, so there a missing
browser is a broken set-up, not a choice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
#: the flags of a browser that phones nobody and keeps no state between runs
QUIET_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               "--mute-audio")
TIMEOUT_S = 90


def find_chromium() -> str | None:
    """HEYGEM_CHROMIUM when set (a browser outside PATH), else the first of CANDIDATES on PATH."""
    chosen = os.environ.get("HEYGEM_CHROMIUM")
    if chosen:
        return chosen if shutil.which(chosen) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The browser's path; skips the test (fails it under CI=true) when there is none."""
    found = find_chromium()
    if found is not None:
        return found
    reason = "headless Chromium not found (Debian package 'chromium'; scripts/setup.sh installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}, and CI=true: the browser tests must run here")
    pytest.skip(reason)


@dataclass
class Browser:
    executable: str

    def _run(self, page: Path | str, *extra: str, budget_ms: int) -> str:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            args = [self.executable, *QUIET_FLAGS, f"--user-data-dir={profile}",
                    f"--virtual-time-budget={budget_ms}", *extra, _url(page)]
            done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=profile)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def dom(self, page: Path | str, *, budget_ms: int = 3000) -> str:
        """The DOM after the page's scripts ran for ``budget_ms`` of virtual time, as HTML
        (``page``: a file, opened as file://, or a URL).
        (Chromium serialises it with script: headless, a page cannot be dumped with script off.)"""
        return self._run(page, "--dump-dom", budget_ms=budget_ms)

    def screenshot(self, page: Path, dest: Path, *, size: tuple[int, int] = (1280, 900),
                   budget_ms: int = 3000) -> Path:
        """A PNG of the page as a browser window of ``size`` shows it."""
        self._run(page, f"--screenshot={dest.resolve()}", f"--window-size={size[0]},{size[1]}",
                  budget_ms=budget_ms)
        assert dest.is_file() and dest.stat().st_size > 0
        return dest


def _url(page: Path | str) -> str:
    return page if isinstance(page, str) else page.resolve().as_uri()


@pytest.fixture
def browser() -> Browser:
    """Headless Chromium; see require_chromium for when it skips or fails."""
    return Browser(require_chromium())
