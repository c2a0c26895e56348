"""Loggers are made one way (logging.get_logger) and log events are named one way (snake_case)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "heygem_daemon"
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def _event_names() -> list[tuple[str, str]]:
    names = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LEVELS
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "log" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names.append((path.name, node.args[0].value))
    return names


def test_only_the_logging_module_asks_structlog_for_a_logger():
    """Every module gets its logger from heygem_daemon.logging.get_logger."""
    callers = sorted(p.name for p in PACKAGE.rglob("*.py") if "structlog.get_logger(" in p.read_text(encoding="utf-8"))
    assert ["logging.py"] == callers


def test_every_log_event_is_snake_case():
    """Event names are plain snake_case ("video_started"), never dotted ("engine.ready")."""
    names = _event_names()
    assert len(names) > 50
    assert [] == [(where, name) for where, name in names if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name)]
