"""Structured logging: JSON lines to stdout (journald) and to each job's log.jsonl.

This is the only module that calls ``structlog.configure``.  Job and video ids
are bound with ``structlog.contextvars.bound_contextvars``; every event that
carries a ``job`` id whose sink is open is also appended to that job's
log.jsonl, so the per-job log needs no extra calls at the log sites.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class JobLogSinks:
    """Open per-job log files, keyed by job id; a processor fans events out to them."""

    def __init__(self) -> None:
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()

    def open(self, job_id: str, path: Path) -> None:
        with self._lock:
            old = self._files.pop(job_id, None)
            if old is not None:
                old.close()
            self._files[job_id] = open(path, "a", encoding="utf-8")

    def close(self, job_id: str) -> None:
        with self._lock:
            fh = self._files.pop(job_id, None)
        if fh is not None:
            try:
                fh.close()
            except OSError:
                pass  # a full outbox disk: the journal still has every line

    def _write(self, fh: TextIO, event_dict: dict[str, Any]) -> None:
        # logging must never be what fails a job: a full disk or an odd file
        # name costs this line in log.jsonl, never the job (stdout has it)
        try:
            fh.write(json.dumps(event_dict, default=str, ensure_ascii=False) + "\n")
            fh.flush()
        except (OSError, UnicodeEncodeError, ValueError):
            pass

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        job_id = event_dict.get("job_id")
        if job_id is not None:
            with self._lock:
                fh = self._files.get(job_id)
                if fh is not None:
                    self._write(fh, event_dict)
        return event_dict


#: the one piece of logging state; opened/closed by the job runner
job_sinks = JobLogSinks()


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog once at start-up."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            job_sinks,
            structlog.processors.JSONRenderer(default=str, ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(**initial: Any) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(**initial)
