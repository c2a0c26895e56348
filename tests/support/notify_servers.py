"""Real servers on 127.0.0.1 that receive what the daemon sends: a webhook receiver (http.server)
and an SMTP server that speaks STARTTLS and checks a login (aiosmtpd), with a throw-away
self-signed certificate made by the openssl command."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


class WebhookReceiver:
    """Records every POST; answers with the next status of ``answers`` (then 200)."""

    def __init__(self, answers: list[int] | None = None, delay_s: float = 0.0) -> None:
        self.requests: list[Received] = []
        self.answers = list(answers or [])
        self.delay_s = delay_s
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(dict(self.headers), body, time.monotonic()))
                time.sleep(receiver.delay_s)
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/heygem?token=not-for-logs"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """(cert, key) for 127.0.0.1 / localhost, made by openssl; skips the test without it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate (apt install openssl)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1 that requires STARTTLS before AUTH and MAIL, and one user's login."""

    folder: Path
    user: str = "heygem"
    password: str = "s3cret-smtp-password"
    offer_starttls: bool = True
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls_used: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cert, key = self_signed_cert(self.folder)
        self.port = _free_port()
        self._key = key

    def __enter__(self) -> "SmtpServer":
        aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is in the test extra")
        from aiosmtpd.smtp import AuthResult

        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):  # noqa: N802 -- aiosmtpd's name
                server.tls_used.append(session.ssl is not None)
                server.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
                return "250 OK"

        def authenticate(smtp, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == self.user and auth_data.password.decode() == self.password
            if ok:
                self.logins.append(auth_data.login.decode())
            return AuthResult(success=ok, handled=False)  # handled=True would leave the client without a reply

        kwargs: dict = {"hostname": "127.0.0.1", "port": self.port}
        if self.offer_starttls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, self._key)
            kwargs.update(tls_context=context, require_starttls=True, authenticator=authenticate,
                          auth_require_tls=True)
        self.controller = aiosmtpd.Controller(Handler(), **kwargs)
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
