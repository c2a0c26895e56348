"""Which deliveries a published job gets: the webhook when one is set, mail when there are recipients."""

from __future__ import annotations

import uuid
from typing import Callable

from ..logging import get_logger
from ..settings import NotifySettings
from . import mail, webhook
from .dispatcher import Delivery, Dispatcher
from .event import JobEvent

log = get_logger()


class Announcer:
    """Turns a published job into deliveries on the shared dispatcher (one per team's settings)."""

    def __init__(self, settings: NotifySettings, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.dispatcher = dispatcher

    def job_published(self, event: JobEvent, job_recipients: list[str],
                      report_failure: Callable[[str, str], None]) -> list[Delivery]:
        """Queue the event's deliveries; ``job_recipients`` are the job.toml addresses already allowed."""
        deliveries = [d for d in (self._webhook(event, report_failure),
                                  self._email(event, job_recipients, report_failure)) if d is not None]
        for delivery in deliveries:
            self.dispatcher.submit(delivery)
        return deliveries

    def _webhook(self, event: JobEvent, report_failure: Callable[[str, str], None]) -> Delivery | None:
        hook = self.settings.webhook
        if hook.url is None:
            return None
        url, delivery_id = hook.url, str(uuid.uuid4())  # one id for every retry: receivers can deduplicate
        secret = hook.secret.get_secret_value().encode() if hook.secret else None

        def send() -> None:
            webhook.post(url, event.payload(delivery_id), secret=secret, event=event.kind,
                         delivery_id=delivery_id, timeout_s=hook.timeout_s)

        return Delivery("webhook", event.job, webhook.shown(url), send, hook.attempts, hook.backoff_s, report_failure)

    def _email(self, event: JobEvent, job_recipients: list[str],
               report_failure: Callable[[str, str], None]) -> Delivery | None:
        settings = self.settings.email
        recipients = list(dict.fromkeys([*self.settings.recipients, *job_recipients]))
        if not recipients:
            return None
        if settings.smtp_host is None:
            log.warning("notify_email_unconfigured", job=event.job, recipients=len(recipients))
            report_failure("notify", f"mail for job '{event.job}' was not sent: no SMTP server is configured "
                                     "(notify.email.smtp_host)")
            return None
        message = mail.compose(event, recipients, settings.from_address)
        return Delivery("email", event.job, ", ".join(recipients), lambda: mail.send(message, settings),
                        settings.attempts, settings.backoff_s, report_failure)
