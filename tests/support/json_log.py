"""Reading the daemon's JSON log (stdout or log.jsonl) the way tests need it."""

from __future__ import annotations

import json
from pathlib import Path


def json_events(path: Path) -> list[dict]:
    """Every JSON line of the log as a dict; other lines (a library's plain print) are skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows
