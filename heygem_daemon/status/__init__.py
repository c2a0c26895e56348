"""The status page people open on the share: outbox/status.json, status.js and index.html.

``board`` holds what the page shows and writes it; ``page`` renders the HTML (with
``page.css`` and ``page.js`` inlined); ``published`` reads a finished job's outputs
and reason from its outbox folder; ``times`` and ``progress`` put times and the
estimate left into words.
"""

from .board import MAX_NOTICES, MAX_RECENT, JobStatus, StatusBoard
from .page import PageView, render_main, render_page

__all__ = ["MAX_NOTICES", "MAX_RECENT", "JobStatus", "PageView", "StatusBoard", "render_main", "render_page"]
