"""E-mail through SMTP, always over STARTTLS with the server's certificate checked."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import replace
from email.message import EmailMessage

from ..settings import EmailSettings
from .errors import NotificationError
from .event import JobEvent

_SUBJECTS = {
    "done": "Your video is ready: {job}",
    "partial": "Your job {job} finished, but not every video could be made",
    "failed": "Your job {job} failed",
}


def _plain(text: str) -> str:
    """A job name as mail may carry it: no line breaks (header injection), no undecodable bytes."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else " " for c in text)


def compose(event: JobEvent, recipients: list[str], sender: str, *, delivery_id: str | None = None) -> EmailMessage:
    """A plain-text message in the words people use: where the result is, and what went wrong.

    ``delivery_id`` (the spool's, the same on every try and after a restart) becomes the
    X-Heygem-Delivery header and the Message-ID, on which mail systems drop duplicates."""
    event = replace(event, job=_plain(event.job), folder=_plain(event.folder),
                    outputs=tuple(map(_plain, event.outputs)), errors=tuple(map(_plain, event.errors)))
    msg = EmailMessage()
    msg["Subject"] = _SUBJECTS.get(event.status, "Job {job}: " + event.status).format(job=event.job)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    if delivery_id:
        msg["Message-ID"] = f"<{delivery_id}@heygem-daemon>"
        msg["X-Heygem-Delivery"] = delivery_id
    lines = [f"The job '{event.job}' has ended: {event.status}.", ""]
    lines.append(f"Its results are in the folder '{event.folder}' in the outbox ({event.outbox}).")
    if event.outputs:
        lines += ["", "Videos:"] + [f"  {name}" for name in event.outputs]
    if event.errors:
        lines += ["", "What went wrong (from ERROR.txt):"] + [f"  {line}" for line in event.errors]
    lines += ["", f"-- heygem-daemon on {event.host}" + (f", team {event.team}" if event.team else "")]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def send(msg: EmailMessage, settings: EmailSettings) -> None:
    """Deliver ``msg``; NotificationError when the server is unreachable, refuses, or lacks STARTTLS."""
    if settings.smtp_host is None:
        raise NotificationError("no SMTP server is configured (notify.email.smtp_host)")
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise NotificationError(f"the SMTP server {where} does not offer STARTTLS; mail is never sent in clear")
            smtp.starttls(context=context)
            smtp.ehlo()
            if settings.smtp_user:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_user, password)
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
        raise NotificationError(f"the SMTP server {where} did not take the mail: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {text}"
    return str(exc) or type(exc).__name__
