"""The webhook: a JSON POST signed with HMAC-SHA256, never following redirects.

Signature header (Stripe's scheme, so receivers can reuse their code)::

    X-Heygem-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The timestamp is signed with the body, so a receiver can refuse old replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from .errors import NotificationError

SIGNATURE_HEADER = "X-Heygem-Signature"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, header: str, body: bytes, *, now: float, tolerance_s: float = 300.0) -> bool:
    """What a receiver does (docs/notifications.md has the same in a few lines)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def shown(url: str) -> str:
    """A webhook address fit for logs: scheme and host only (paths often hold tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # a redirected POST would be replayed as a GET elsewhere: treat it as a failure


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(url: str, payload: dict, *, secret: bytes | None, event: str, delivery_id: str, timeout_s: float) -> int:
    """POST ``payload``; the status code of a 2xx answer, else NotificationError."""
    # ASCII with \u escapes: a job name that is not valid UTF-8 (surrogate escapes) still encodes
    body = json.dumps(payload, ensure_ascii=True, sort_keys=True).encode("ascii")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "heygem-daemon",
        "X-Heygem-Event": event,
        "X-Heygem-Delivery": delivery_id,
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, int(time.time()), body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout_s) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        raise NotificationError(f"the webhook at {shown(url)} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NotificationError(f"the webhook at {shown(url)} could not be reached: {reason}") from None
