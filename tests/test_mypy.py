"""The typed core stays typed: mypy --strict passes on jobs/, render/, executors/, media/, engines/base.py and types.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_core_passes_mypy_strict():
    """`mypy --strict` with pyproject's [tool.mypy] (its `files` are the core) reports nothing."""
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert 0 == done.returncode, done.stdout + done.stderr
