"""Loopback stand-ins for what the alert service talks to: a real SMTP server (aiosmtpd, STARTTLS
with a trustme certificate, AUTH required) and an HTTP server in place of Slack's webhook."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# aiosmtpd logs a deprecation line per AUTH (its own Session.login_data use).
logging.getLogger("mail.log").setLevel(logging.ERROR)

SMTP_USER = "alerts"
SMTP_PASSWORD = "s3cret-smtp-password"


@dataclass
class Received:
    """Messages as they arrived, with their arrival time (time.time())."""

    items: list[tuple[float, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Any) -> None:
        with self.lock:
            self.items.append((time.time(), item))

    def snapshot(self) -> list[tuple[float, Any]]:
        with self.lock:
            return list(self.items)


class _Mailbox:
    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_DATA(self, _server: SMTP, session: Session, envelope: Envelope) -> str:
        assert session.authenticated, "AUTH was required"
        assert session.ssl is not None, "the message did not travel over TLS"
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.add((list(envelope.rcpt_tos), message))
        return "250 OK"


def _authenticate(
    _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: object
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == SMTP_USER.encode()
        and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok)


class SmtpServer:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS before AUTH, and AUTH before mail."""

    def __init__(self, port: int, ca_dir: Path) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.ca_file = ca_dir / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.port = port
        self.received = Received()
        self._controller = Controller(
            _Mailbox(self.received), hostname="127.0.0.1", port=port, tls_context=context,
            require_starttls=True, auth_required=True, auth_require_tls=True,
            authenticator=_authenticate,
        )  # fmt: skip

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[EmailMessage]:
        return [message for _, (_, message) in self.received.snapshot()]


class WebhookServer:
    """Slack's incoming webhook on loopback: records JSON bodies; ``status`` decides the answer."""

    def __init__(self, port: int, status: Callable[[dict[str, Any]], int] = lambda _: 200) -> None:
        self.received = Received()
        self.status = status
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests += 1
                code = outer.status(body)
                if code == 200:
                    outer.received.add(body)
                reply = b"ok" if code == 200 else b"internal_error"
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{port}/services/T000/B000/XXXX"

    def start(self) -> WebhookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, body in self.received.snapshot()]


def wait_until(check: Callable[[], bool], timeout_s: float = 60, what: str = "condition") -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
