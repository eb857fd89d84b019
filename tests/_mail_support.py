"""Real local mail servers for the email connector's tests: pymap (IMAP) and aiosmtpd (SMTP), both on loopback,
both with STARTTLS on a certificate made here and a login, as a hosted mailbox asks.

pymap runs as its own process with its in-memory backend (one user: the support mailbox); aiosmtpd runs in a
thread of the test process with a handler that records what it was given and can be told to answer 4xx or 5xx,
or to lose its answer to a message it has taken.
"""

from __future__ import annotations

import imaplib
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from _ports import free_port

ADDRESS = "support@lumio.example"
PASSWORD = "app-password-1"



@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path

    def client(self) -> ssl.SSLContext:
        """A client context that trusts only the test certificate (host name checked: 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.cert))

    def server(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make the test certificate (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    files = Tls(folder / "cert.pem", folder / "key.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(files.key),
                    "-out", str(files.cert)], check=True, capture_output=True)
    return files


@pytest.fixture(scope="session")
def imap_port(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A pymap server (in-memory mailbox of ADDRESS) on 127.0.0.1 with STARTTLS; stopped after the session."""
    pytest.importorskip("pymap", reason="the email tests need pymap (pip install pymap)")
    exe = Path(sys.executable).with_name("pymap")
    port = free_port()
    log = tmp_path_factory.mktemp("pymap") / "pymap.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "--host", "127.0.0.1", "--port", str(port), "--cert", str(tls.cert),
                                 "--key", str(tls.key), "dict", "--demo-user", ADDRESS, "--demo-password",
                                 PASSWORD], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pymap did not start: {log.read_text()}") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Mailbox:
    """The support mailbox as a mail client sees it (its own IMAP connection)."""

    def __init__(self, port: int, tls: Tls) -> None:
        self.conn = imaplib.IMAP4("127.0.0.1", port, timeout=5)
        self.conn.starttls(ssl_context=tls.client())
        self.conn.login(ADDRESS, PASSWORD)

    def folders(self) -> list[str]:
        return [line.decode().rsplit(" ", 1)[-1].strip('"') for line in self.conn.list()[1] if isinstance(line, bytes)]

    def empty(self) -> None:
        for folder in self.folders():
            self.conn.select(f'"{folder}"')
            self.conn.uid("STORE", "1:*", "+FLAGS", "(\\Deleted)")
            self.conn.expunge()

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        if folder not in self.folders():
            self.conn.create(f'"{folder}"')
        assert self.conn.append(f'"{folder}"', None, None, raw)[0] == "OK"

    def flags(self, message_id: str, folder: str = "INBOX") -> set[str]:
        self.conn.select(f'"{folder}"')
        uids = self.conn.uid("SEARCH", None, "HEADER", "Message-ID", f'"<{message_id}>"')[1][0].split()
        assert len(uids) == 1, f"{message_id} is {len(uids)} times in {folder}"
        data = self.conn.uid("FETCH", uids[0], "(FLAGS)")[1][0]
        inner = data.decode().split("FLAGS (", 1)[1].split(")", 1)[0]
        return set(inner.split()) - {"\\Recent"}

    def messages(self, folder: str) -> list[EmailMessage]:
        if folder not in self.folders():
            return []
        self.conn.select(f'"{folder}"')
        found = []
        for uid in self.conn.uid("SEARCH", None, "ALL")[1][0].split():
            for item in self.conn.uid("FETCH", uid, "(BODY.PEEK[])")[1]:
                if isinstance(item, tuple):
                    found.append(message_from_bytes(item[1], policy=policy.default))
        return found  # type: ignore[return-value]

    def close(self) -> None:
        self.conn.logout()


@dataclass
class SmtpRecorder:
    """An aiosmtpd handler: records each message it takes; ``answers`` are replies to give instead (a 4xx or
    5xx line), ``lose`` how many taken messages get no answer (the connection is cut after taking them)."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    lose: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.answers:
            return self.answers.pop(0)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if self.lose:
            self.lose -= 1
            server.transport.close()  # taken, but the client never hears so
        return "250 2.0.0 OK queued"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and auth_data.login == ADDRESS.encode() \
        and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 235 or 535


@pytest.fixture
def smtp(tls: Tls) -> Iterator[tuple[int, SmtpRecorder]]:
    """An aiosmtpd server on 127.0.0.1 that asks for STARTTLS and a login, and records what it takes."""
    controller_module = pytest.importorskip("aiosmtpd.controller", reason="the email tests need aiosmtpd")
    recorder = SmtpRecorder()
    port = free_port()
    controller = controller_module.Controller(
        recorder, hostname="127.0.0.1", port=port, tls_context=tls.server(), require_starttls=True,
        authenticator=_authenticator, auth_require_tls=True, server_hostname="localhost",
    )
    controller.start()
    try:
        yield port, recorder
    finally:
        controller.stop()
