"""The one error a delivery raises; its words go to the log and the status page."""

from __future__ import annotations

from ..errors import HeygemError, OutboxUnavailableError


class NotificationError(HeygemError):
    """A webhook or e-mail could not be delivered (this try)."""

    kind = "notify"


class NotifySpoolError(OutboxUnavailableError):
    """The notification spool cannot be written: the job is not published without its
    notifications on disk, so it stays claimed and is retried, like a full outbox."""

    kind = "notify_spool"
