"""The one error a delivery raises; its words go to the log and the status page."""

from __future__ import annotations

from ..errors import HeygemError


class NotificationError(HeygemError):
    """A webhook or e-mail could not be delivered (this try)."""

    kind = "notify"
