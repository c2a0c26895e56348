"""Which deliveries a published job gets (the webhook when one is set, mail when there are
recipients), spooled before the job is published and sent from the spool."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping

from ..logging import get_logger
from ..settings import NotifySettings
from . import mail, webhook
from .dispatcher import Delivery, Dispatcher
from .event import JobEvent, event_fields, event_from_fields, read_event
from .spool import Spool, SpoolRecord, delivery_id

log = get_logger()

ReportFailure = Callable[[str, str], None]


def _ignore(kind: str, text: str) -> None:
    pass


class Announcer:
    """One team's notifications on the shared dispatcher and spool."""

    def __init__(self, settings: NotifySettings, dispatcher: Dispatcher, spool: Spool | None = None, *,
                 team: str = "", report_failure: ReportFailure = _ignore) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.spool = spool
        self.team = team
        #: the team's status page notices (failed deliveries, mail nobody may send)
        self.report_failure = report_failure

    # -- before the publish rename (the job thread) ---------------------------------------------
    def spool_job(self, staging: Path, outbox_name: str, *, host: str, status: str,
                  job_recipients: list[str]) -> list[SpoolRecord]:
        """Write the deliveries of the job staged at ``staging`` that is about to become
        ``outbox/<outbox_name>``; durable (fsynced) when this returns.  Called again with another
        name when that one was taken meanwhile: the same ids, so the files are replaced."""
        assert self.spool is not None
        event = read_event(staging, team=self.team, host=host, status=status)
        event = replace(event, folder=outbox_name, outbox=staging.parent.parent)
        records = self._records(event, job_recipients, self.report_failure, staging_id=staging.name,
                                staging=str(staging))
        for record in records:
            self.spool.write(record)
        if records:
            log.info("notify_spooled", deliveries=[r.id for r in records], channels=[r.channel for r in records])
        return records

    def _records(self, event: JobEvent, job_recipients: list[str], report: ReportFailure, *, staging_id: str,
                 staging: str) -> list[SpoolRecord]:
        channels: list[tuple[str, list[str]]] = []
        if self.settings.webhook.url is not None:
            channels.append(("webhook", []))
        recipients = self._recipients(job_recipients)
        if recipients and self.settings.email.smtp_host is None:
            log.warning("notify_email_unconfigured", job=event.job, recipients=len(recipients))
            report("notify", f"mail for job '{event.job}' was not sent: no SMTP server is configured "
                                          "(notify.email.smtp_host)")
        elif recipients:
            channels.append(("email", job_recipients))
        fields = event_fields(event)
        return [SpoolRecord(id=delivery_id(staging_id, channel), channel=channel, team=self.team,  # type: ignore[arg-type]
                            event=fields, job_recipients=extra, staging=staging, created_at=time.time())
                for channel, extra in channels]

    def _recipients(self, job_recipients: list[str]) -> list[str]:
        return list(dict.fromkeys([*self.settings.recipients, *job_recipients]))

    # -- after it (the main loop; the worker thread) -------------------------------------------
    def delivery(self, record: SpoolRecord, report_failure: ReportFailure | None = None) -> Delivery | None:
        """The sendable delivery for ``record`` with today's settings (the URL, server and secret
        may have changed across a restart); None when its channel is no longer configured."""
        event = event_from_fields(record.event)
        report = report_failure or self.report_failure
        made = self._webhook(record, event, report) if record.channel == "webhook" else self._email(record, event,
                                                                                                     report)
        if made is not None:
            made.tried, made.last_error, made.id = record.tries, record.last_error, record.id
            if self.spool is not None:
                made.settled = self._forget(record.id)
                made.retrying = self._remember(record)
        return made

    def _forget(self, record_id: str) -> Callable[[], None]:
        spool = self.spool
        assert spool is not None
        return lambda: spool.remove(record_id)

    def _remember(self, record: SpoolRecord) -> Callable[[int, str], None]:
        spool = self.spool
        assert spool is not None

        def tried(tries: int, error: str) -> None:
            spool.write(record.model_copy(update={"tries": tries, "last_error": error}))
        return tried

    def _webhook(self, record: SpoolRecord, event: JobEvent, report: ReportFailure) -> Delivery | None:
        hook = self.settings.webhook
        if hook.url is None:
            return None
        url, secret = hook.url, hook.secret.get_secret_value().encode() if hook.secret else None

        def send() -> None:
            webhook.post(url, event.payload(record.id), secret=secret, event=event.kind,
                         delivery_id=record.id, timeout_s=hook.timeout_s)

        return Delivery("webhook", event.job, webhook.shown(url), send, hook.attempts, hook.backoff_s, report)

    def _email(self, record: SpoolRecord, event: JobEvent, report: ReportFailure) -> Delivery | None:
        settings = self.settings.email
        recipients = self._recipients(record.job_recipients)
        if settings.smtp_host is None or not recipients:
            return None
        message = mail.compose(event, recipients, settings.from_address, delivery_id=record.id)
        return Delivery("email", event.job, ", ".join(recipients), lambda: mail.send(message, settings),
                        settings.attempts, settings.backoff_s, report)

    # -- without a spool (tests, and callers that announce an already published folder) ----------
    def job_published(self, event: JobEvent, job_recipients: list[str],
                      report_failure: ReportFailure) -> list[Delivery]:
        """Queue the event's deliveries at once, in memory only."""
        records = self._records(event, job_recipients, report_failure,
                                staging_id=f"{event.outbox}/{event.folder}/{time.time()}", staging="")
        deliveries = [d for d in (self.delivery(r, report_failure) for r in records) if d is not None]
        for made in deliveries:
            made.settled = made.retrying = None
            self.dispatcher.submit(made)
        return deliveries


def send_spooled(spool: Spool, dispatcher: Dispatcher, announcers: Mapping[str, Announcer]) -> int:
    """Queue every spooled delivery whose job is published and that is not queued yet: at start
    (what a killed daemon left) and after each publish.  Returns how many were looked at."""
    pending = [r for r in spool.records() if r.published()]
    for record in pending:
        announcer = announcers.get(record.team)
        made = announcer.delivery(record) if announcer is not None else None
        if made is None:
            # the team or the channel was removed from the settings since: nobody to send it to
            log.warning("notify_unconfigured_dropped", channel=record.channel, team=record.team,
                        job=record.event.get("job"), delivery=record.id)
            spool.remove(record.id)
            continue
        dispatcher.submit(made)
    return len(pending)
