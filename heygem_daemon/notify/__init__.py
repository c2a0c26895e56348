"""Telling people a job has ended: a signed webhook and e-mail, sent off the main loop.

``event.py`` (what happened, read from the published folder), ``webhook.py`` (the
signed POST), ``mail.py`` (SMTP with STARTTLS), ``dispatcher.py`` (a bounded queue
and one worker thread that retries with backoff), ``announce.py`` (which deliveries a
finished job gets).  Only the standard library talks to the servers: one POST and one
SMTP conversation need nothing urllib and smtplib lack, and every dependency is one
more thing to keep installable on three Python versions.
"""
