"""Times as people read them: local clock time in the configured zone, "5 min ago", "about 3 min left".

The page's script computes the relative form again as the page stays open
(``page.js`` ``relative``, the same steps); this is the form a page without script
shows, true at the moment it was written.
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo


def page_zone(name: str | None) -> tzinfo:
    """The zone the page shows times in: ``[status] timezone``, else the host's own."""
    if name:
        return ZoneInfo(name)
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else timezone.utc


def zone_label(zone: tzinfo, now: datetime) -> str:
    """``Europe/Berlin`` for a named zone, else its abbreviation (``CET``, ``UTC``)."""
    return getattr(zone, "key", None) or now.astimezone(zone).tzname() or "UTC"


def parse(iso: str | None) -> datetime | None:
    if not iso:
        return None
    try:
        stamp = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def clock_time(stamp: datetime, zone: tzinfo, now: datetime) -> str:
    """``14:05`` today, ``Mon 28 Nov, 14:05`` within the year, with the year before that; zone abbreviation last."""
    local, today = stamp.astimezone(zone), now.astimezone(zone)
    if local.date() == today.date():
        text = local.strftime("%H:%M")
    elif local.year == today.year:
        text = local.strftime("%a %d %b, %H:%M")
    else:
        text = local.strftime("%d %b %Y, %H:%M")
    return f"{text} {local.tzname()}"


def relative(stamp: datetime, now: datetime) -> str:
    """``just now``, ``40 s ago``, ``5 min ago``, ``3 h ago``, ``yesterday``, ``4 days ago``."""
    seconds = (now - stamp).total_seconds()
    if seconds < 10:
        return "just now"  # also a little in the future: clocks of two hosts differ
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return "yesterday" if days == 1 else f"{days} days ago"


def time_left(seconds: float) -> str:
    """``about 40 s left``, ``about 3 min left``, ``about 1 h 20 min left``."""
    if seconds < 60:
        return f"about {max(5, int(round(seconds / 5.0)) * 5)} s left"
    minutes = int(round(seconds / 60.0))
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60} min left"
