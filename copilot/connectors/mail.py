"""The email connector: polls a mailbox folder over IMAP, answers by SMTP in the customer's thread.

Mail is polled, not pushed: :meth:`EmailConnector.poll` reads the folder's unseen messages without marking them
(``BODY.PEEK``), and the caller marks each one taken (``\\Seen``) with :meth:`EmailConnector.mark_taken` once
its case is stored, so a crash between the two reads the message again instead of losing it. A message that
cannot be read stays unseen and its reason is logged; our own mail, auto-replies and bounces are passed over
(left as they are). A message's conversation is ``email:<root Message-ID>``: the first id of References, else
In-Reply-To, else its own id, so a reply in the thread joins the case.

An approved reply (:meth:`EmailConnector.post`) goes by SMTP to the customer (Reply-To, else From) with
``Subject: Re: <subject>``, ``In-Reply-To`` the customer's message and ``References`` the thread, and a
``Message-ID`` made from the queue's idempotency key, so every attempt for one key is the same message. Before
each attempt the Sent folder is searched for that Message-ID; after the send a copy is filed there (unless the
provider filed one itself) and the original is marked ``\\Answered``. Exactly once, as far as SMTP allows: see
``docs/connectors/email.md``. There are no private notes in email: :meth:`post_note` does nothing (the draft
waits in the copilot's review queue).
"""

from __future__ import annotations

import hashlib
import imaplib
import ipaddress
import logging
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import TypeVar

from copilot.config import Settings
from copilot.connectors.base import PlatformEvent, WebhookRejected
from copilot.connectors.mail_parse import MailMessage, Unreadable, bracket, message_ids, read_message
from copilot.errors import ConfigError, ProviderError
from copilot.queue.publish import OutgoingMessage, PostReceipt, PublishError
from copilot.types import Inbound

log = logging.getLogger(__name__)

T = TypeVar("T")
# Where providers keep sent mail, when the server does not mark the folder with \Sent (RFC 6154).
SENT_NAMES = ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "INBOX.Sent", "[Gmail]/Sent Mail")
_REPLY_PREFIX = re.compile(r"^(?:re|aw|antw|sv|res|rif|r)\s?:", re.IGNORECASE)
_IMAP_ERRORS = (imaplib.IMAP4.error, OSError)


class _Temporary(Exception):
    """An attempt that failed before the message could have been taken: try again after a pause."""


class _Uncertain(Exception):
    """The whole message went out but the server's answer was lost: it may have been delivered."""


def _quoted(value: str) -> str:
    """An IMAP quoted string (mailbox names, search values)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class EmailConnector:
    """One support mailbox: IMAP for the mail in and the Sent folder, SMTP for the replies out."""

    name = "email"

    def __init__(
        self, *, imap_host: str, imap_user: str, imap_password: str, address: str, smtp_host: str,
        imap_port: int = 993, imap_ssl: bool = True, folder: str = "INBOX", smtp_port: int = 587,
        smtp_user: str | None = None, smtp_password: str | None = None, smtp_starttls: bool = True,
        display_name: str | None = None, sent_folder: str | None = None, timeout_s: float = 10.0,
        retries: int = 3, backoff_s: float = 0.5, batch: int = 50, ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.imap_host, self.imap_port, self.imap_ssl = imap_host, imap_port, imap_ssl
        self._imap_login = (imap_user, imap_password)
        self.folder = folder
        self.address = address.strip().lower()
        self.domain = self.address.rpartition("@")[2] or "localhost"
        self.display_name = display_name
        self.smtp_host, self.smtp_port, self.smtp_starttls = smtp_host, smtp_port, smtp_starttls
        self._smtp_login = (smtp_user if smtp_user is not None else imap_user,
                            smtp_password if smtp_password is not None else imap_password)
        self.sent_folder = sent_folder
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.batch = batch
        self._tls = ssl_context or ssl.create_default_context()
        self._sleep = sleep
        self._conn: imaplib.IMAP4 | None = None
        self._lock = threading.RLock()  # one IMAP connection, shared by a poller thread and the publisher
        self._selected: tuple[str, str] | None = None  # (folder, UIDVALIDITY) of the open connection
        self._pending: dict[str, list[tuple[str, str]]] = {}  # delivery id -> [(UIDVALIDITY, UID)] of the last poll
        self._passed: set[tuple[str, str]] = set()  # (UIDVALIDITY, UID) passed over: not read again here

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailConnector:
        """The connector of the ``COPILOT_IMAP_*``, ``COPILOT_SMTP_*`` and ``COPILOT_EMAIL_ADDRESS`` settings."""
        needed = {"imap_host": settings.imap_host, "imap_user": settings.imap_user,
                  "imap_password": settings.imap_password, "smtp_host": settings.smtp_host,
                  "email_address": settings.email_address}
        missing = [f"COPILOT_{key.upper()}" for key, value in needed.items() if not value]
        if missing:
            raise ConfigError(f"the email connector needs {', '.join(missing)} (see docs/connectors/email.md)")
        assert settings.imap_host and settings.imap_user and settings.imap_password and settings.smtp_host
        assert settings.email_address
        return cls(
            imap_host=settings.imap_host, imap_port=settings.imap_port, imap_user=settings.imap_user,
            imap_password=settings.imap_password, imap_ssl=settings.imap_ssl, folder=settings.imap_folder,
            smtp_host=settings.smtp_host, smtp_port=settings.smtp_port, smtp_user=settings.smtp_user,
            smtp_password=settings.smtp_password, smtp_starttls=settings.smtp_starttls,
            address=settings.email_address, display_name=settings.brand_name,
            timeout_s=settings.connector_timeout_s, retries=settings.connector_retries,
            backoff_s=settings.connector_backoff_s,
        )

    # --- the mail in -------------------------------------------------------------------------------------

    def poll(self) -> list[PlatformEvent]:
        """The folder's unseen messages from people, as events; none is marked seen here (see ``mark_taken``)."""
        with self._lock:
            return self._imap(self._poll, f"cannot read the mailbox {self.folder}")

    def mark_taken(self, event: PlatformEvent) -> None:
        """Mark a polled message ``\\Seen``: call it once the message's case is stored."""
        with self._lock:
            targets = self._pending.pop(event.delivery_id, [])
            self._imap(lambda conn: self._mark(conn, targets, event.delivery_id), "cannot mark a message seen")

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[PlatformEvent]:
        """Email has no webhook: it is read by polling the mailbox, so a webhook request is refused."""
        raise WebhookRejected(404, "email arrives by polling the mailbox (Intake.poll), not by webhook; "
                                   "see docs/connectors/email.md")

    def post_note(self, inbound: Inbound, text: str) -> None:
        """Email has no private notes: the draft waits in the review queue, not in the mailbox (a draft in the
        Drafts folder could be sent from a mail client past the review, and then again by the copilot)."""

    def _poll(self, conn: imaplib.IMAP4) -> list[PlatformEvent]:
        self._selected = None  # select again: a server may show mail that came since only to a new SELECT
        validity = self._select(conn, self.folder)
        self._pending.clear()
        fresh = [uid for uid in self._search(conn, "UNSEEN") if (validity, uid) not in self._passed]
        found: list[tuple[str, MailMessage]] = []
        for uid in fresh[: self.batch]:
            raw = self._fetch(conn, uid)
            try:
                mail = read_message(raw) if raw is not None else None
            except Unreadable as exc:
                log.warning("email: left unseen message UID %s in %s: %s", uid, self.folder, exc)
                self._passed.add((validity, uid))
                continue
            if mail is None:
                continue  # expunged since the search
            reason = "our own mail" if mail.sender == self.address else mail.automatic
            if reason:
                log.info("email: passed over message %s from %s: %s", mail.message_id, mail.sender, reason)
                self._passed.add((validity, uid))
                continue
            found.append((uid, mail))
        events: list[PlatformEvent] = []
        for uid, mail in found:
            inbound = Inbound(text=mail.text, channel="email", author=mail.sender, id=mail.message_id,
                              conversation=f"email:{self._root(conn, mail)}")
            self._pending.setdefault(mail.message_id, []).append((validity, uid))
            events.append(PlatformEvent(inbound=inbound, delivery_id=mail.message_id))
        return events

    def _root(self, conn: imaplib.IMAP4, mail: MailMessage) -> str:
        """The thread's root; a reply whose client named only our answer is traced through our Sent copy."""
        root = mail.root
        if not self._is_ours(root):
            return root
        try:
            self._select(conn, self._sent(conn))
            uids = self._search(conn, "HEADER", "Message-ID", _quoted(bracket(root)))
            raw = self._fetch(conn, uids[0], "BODY.PEEK[HEADER.FIELDS (REFERENCES)]") if uids else None
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:  # no Sent folder to read: the thread starts at our answer
            log.info("email: cannot trace %s through the Sent folder: %s", root, exc)
            return root
        refs = message_ids(raw.decode("utf-8", "replace").partition(":")[2]) if raw else []
        return refs[0] if refs else root

    def _mark(self, conn: imaplib.IMAP4, targets: list[tuple[str, str]], message_id: str) -> None:
        validity = self._select(conn, self.folder)
        uids = [uid for seen_validity, uid in targets if seen_validity == validity]
        if not uids and not message_id.endswith(".invalid"):  # polled by another run: find it again
            uids = self._search(conn, "UNSEEN", "HEADER", "Message-ID", _quoted(bracket(message_id)))
        for uid in uids:
            self._ok(conn.uid("STORE", uid, "+FLAGS", "(\\Seen)"), "STORE")

    # --- the reply out -----------------------------------------------------------------------------------

    def message_id_for(self, key: str) -> str:
        """The Message-ID (without brackets) of the reply with this idempotency key: the same on every attempt."""
        local = key if re.fullmatch(r"[A-Za-z0-9._-]{1,100}", key) else _digest(key)
        return f"{local if local.startswith('copilot-') else 'copilot-' + local}@{self.domain}"

    def post(self, message: OutgoingMessage) -> PostReceipt:
        """Send the approved reply once per idempotency key; 4xx, timeouts and lost connections are retried with
        backoff, a 5xx refusal raises ``PublishError`` at once."""
        if not message.in_reply_to:
            raise PublishError(f"item {message.item_id} has no customer message to answer (in_reply_to)")
        own_id = self.message_id_for(message.idempotency_key)
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                with self._lock:
                    return self._post_once(message, own_id)
            except _Temporary as exc:
                last = str(exc)
                log.info("email: attempt %d for item %s failed: %s", attempt + 1, message.item_id, last)
        raise PublishError(f"email reply for item {message.item_id} failed after {self.retries + 1} attempts: "
                           f"{last}")

    def _post_once(self, message: OutgoingMessage, own_id: str) -> PostReceipt:
        assert message.in_reply_to
        try:
            conn = self._connection()
            sent = self._sent(conn)
            if self._find(conn, sent, own_id):  # sent before: a retry after a lost answer, or a crash
                self._answered(message.in_reply_to)
                return PostReceipt(external_id=own_id, duplicate=True)
            original = self._original(conn, message.in_reply_to)
        except _IMAP_ERRORS as exc:
            self._drop()
            raise _Temporary(f"IMAP {self.imap_host}: {exc}") from exc
        except ConfigError as exc:
            raise PublishError(str(exc)) from exc
        reply = self._reply(message, own_id, original)
        uncertain = False
        try:
            self._send(reply.as_bytes(policy=policy.SMTP), reply["To"])
        except _Uncertain as exc:
            # Sending again could answer the customer twice; it is taken as sent and its copy flagged.
            log.warning("email: item %s: %s; not sent again (its Sent copy is flagged for a person to check)",
                        message.item_id, exc)
            uncertain = True
        self._file_sent(reply, own_id, flagged=uncertain)
        self._answered(message.in_reply_to)
        return PostReceipt(external_id=own_id)

    def _original(self, conn: imaplib.IMAP4, message_id: str) -> MailMessage | None:
        """The customer's message, read back from the folder by its Message-ID (None if it was moved away)."""
        self._select(conn, self.folder)
        uids = self._search(conn, "HEADER", "Message-ID", _quoted(bracket(message_id)))
        raw = self._fetch(conn, uids[-1]) if uids else None
        try:
            return read_message(raw) if raw else None
        except Unreadable:
            return None

    def _reply(self, message: OutgoingMessage, own_id: str, original: MailMessage | None) -> EmailMessage:
        assert message.in_reply_to
        if original is not None:
            to, subject, thread = original.reply_to, original.subject, list(original.thread)
        elif message.author and "@" in message.author:
            log.warning("email: item %s answers %s, which is no longer in %s; the subject is not known",
                        message.item_id, message.in_reply_to, self.folder)
            root = (message.conversation or "").partition(":")[2]
            to, subject = message.author, "your message"
            thread = [i for i in dict.fromkeys([root, message.in_reply_to]) if i]
        else:
            raise _Temporary(f"the customer's message {message.in_reply_to} is not in {self.folder} and the item "
                             f"names no address to answer")
        if len(thread) > 10:  # keep the root and the latest: enough for every client to thread it
            thread = thread[:1] + thread[-9:]
        reply = EmailMessage(policy=policy.SMTP)
        reply["From"] = formataddr((self.display_name, self.address)) if self.display_name else self.address
        reply["To"] = to
        reply["Subject"] = subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}".strip()
        reply["Date"] = formatdate(localtime=True)
        reply["Message-ID"] = bracket(own_id)
        reply["In-Reply-To"] = bracket(message.in_reply_to)
        reply["References"] = " ".join(bracket(i) for i in thread)
        reply.set_content(message.text)
        return reply

    def _send(self, raw: bytes, to: str) -> None:
        """One SMTP transaction. Raises ``_Temporary`` (4xx, connection), ``PublishError`` (5xx) or
        ``_Uncertain`` (the message went out whole but the answer to it was lost)."""
        transmitted = False
        try:
            smtp = self._smtp()
            try:
                self._reply_ok(*smtp.mail(self.address), "MAIL FROM")
                self._reply_ok(*smtp.rcpt(to), "RCPT TO")
                self._reply_ok(*smtp.docmd("DATA"), "DATA", expect=354)
                body = re.sub(rb"(?m)^\.", b"..", raw)
                smtp.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
                transmitted = True
                self._reply_ok(*smtp.getreply(), "the message")
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except smtplib.SMTPResponseException as exc:  # from connecting, EHLO, STARTTLS or AUTH
            self._reply_ok(exc.smtp_code, exc.smtp_error, "the SMTP session")
            raise _Temporary(f"SMTP {self.smtp_host}: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            if transmitted:
                raise _Uncertain(f"SMTP {self.smtp_host}: the answer to the message was lost ({exc})") from exc
            raise _Temporary(f"SMTP {self.smtp_host}: {exc or type(exc).__name__}") from exc

    def _smtp(self) -> smtplib.SMTP:
        if self.smtp_port == 465:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.smtp_host, self.smtp_port, timeout=self.timeout_s,
                                                  context=self._tls)
        else:
            smtp = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_s)
        smtp.ehlo(self.domain)
        if self.smtp_port != 465 and self.smtp_starttls:
            if not smtp.has_extn("starttls"):
                smtp.close()
                raise PublishError(f"the SMTP server {self.smtp_host} offers no STARTTLS (COPILOT_SMTP_STARTTLS)")
            smtp.starttls(context=self._tls)
            smtp.ehlo(self.domain)
        elif self.smtp_port != 465 and not _is_loopback(self.smtp_host):
            smtp.close()
            raise PublishError(f"refusing to send the password to {self.smtp_host} unencrypted: set "
                               f"COPILOT_SMTP_STARTTLS=true or COPILOT_SMTP_PORT=465")
        user, password = self._smtp_login
        if user and smtp.has_extn("auth"):
            # One mechanism, not smtplib's cascade: a refused PLAIN then LOGIN can hang some servers.
            offered = (smtp.esmtp_features.get("auth") or "").upper().split()
            smtp.user, smtp.password = user, password or ""
            if "PLAIN" in offered:
                smtp.auth("PLAIN", smtp.auth_plain)
            elif "LOGIN" in offered:
                smtp.auth("LOGIN", smtp.auth_login)
            else:
                smtp.login(user, password or "")
        return smtp

    @staticmethod
    def _reply_ok(code: int, text: bytes | str, step: str, *, expect: int | None = None) -> None:
        if (code == expect) if expect is not None else 200 <= code < 300:
            return
        said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        if 400 <= code < 500 or code == -1:
            raise _Temporary(f"SMTP {step}: {code} {said}")
        raise PublishError(f"the SMTP server refused {step}: {code} {said}")

    def _file_sent(self, reply: EmailMessage, own_id: str, *, flagged: bool) -> None:
        """A copy in the Sent folder (the record a retry looks for), unless the provider filed one itself.
        The message is out: a failure here is logged, never retried (a retry would send it again)."""
        try:
            conn = self._connection()
            sent = self._sent(conn)
            if self._find(conn, sent, own_id):
                return
            flags = "(\\Seen \\Flagged)" if flagged else "(\\Seen)"
            self._ok(conn.append(_quoted(sent), flags, imaplib.Time2Internaldate(time.time()),
                                 reply.as_bytes(policy=policy.SMTP)), "APPEND")
        except _IMAP_ERRORS as exc:
            self._drop()
            log.error("email: sent %s but could not file it in the Sent folder: %s", own_id, exc)

    def _answered(self, message_id: str) -> None:
        try:
            conn = self._connection()
            self._select(conn, self.folder)
            for uid in self._search(conn, "HEADER", "Message-ID", _quoted(bracket(message_id))):
                self._ok(conn.uid("STORE", uid, "+FLAGS", "(\\Answered)"), "STORE")
        except _IMAP_ERRORS as exc:
            self._drop()
            log.error("email: could not mark %s answered: %s", message_id, exc)

    def _is_ours(self, message_id: str) -> bool:
        local, _, domain = message_id.rpartition("@")
        return local.startswith("copilot-") and domain.lower() == self.domain

    # --- IMAP plumbing -----------------------------------------------------------------------------------

    def _imap(self, action: Callable[[imaplib.IMAP4], T], what: str) -> T:
        """Run ``action`` on the connection; a dropped connection is opened again once."""
        for attempt in (1, 2):
            try:
                return action(self._connection())
            except (imaplib.IMAP4.abort, OSError) as exc:
                self._drop()
                if attempt == 2:
                    raise ProviderError(f"{what}: IMAP {self.imap_host}: {exc}") from exc
            except imaplib.IMAP4.error as exc:
                self._drop()
                raise ProviderError(f"{what}: IMAP {self.imap_host}: {exc}") from exc
        raise AssertionError("unreachable")

    def _connection(self) -> imaplib.IMAP4:
        if self._conn is not None:
            return self._conn
        if self.imap_ssl:
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(self.imap_host, self.imap_port, ssl_context=self._tls,
                                                    timeout=self.timeout_s)
        else:
            conn = imaplib.IMAP4(self.imap_host, self.imap_port, timeout=self.timeout_s)
            if "STARTTLS" in conn.capabilities:
                conn.starttls(ssl_context=self._tls)
            elif not _is_loopback(self.imap_host):
                conn.shutdown()
                raise ConfigError(f"the IMAP server {self.imap_host} offers no STARTTLS; refusing to send the "
                                  f"password unencrypted (set COPILOT_IMAP_SSL=true and the port of IMAPS, 993)")
        conn.login(*self._imap_login)
        self._conn, self._selected = conn, None
        return conn

    def _select(self, conn: imaplib.IMAP4, folder: str) -> str:
        """Select ``folder`` (once per connection) and return its UIDVALIDITY."""
        if self._selected is not None and self._selected[0] == folder:
            return self._selected[1]
        self._ok(conn.select(_quoted(folder)), f"SELECT {folder}")
        validity = conn.response("UIDVALIDITY")[1]
        value = validity[0].decode() if validity and validity[0] else ""
        self._selected = (folder, value)
        return value

    def _search(self, conn: imaplib.IMAP4, *criteria: str) -> list[str]:
        data = self._ok(conn.uid("SEARCH", *criteria), "SEARCH")
        return [uid.decode() for chunk in data if isinstance(chunk, bytes) for uid in chunk.split()]

    def _fetch(self, conn: imaplib.IMAP4, uid: str, part: str = "BODY.PEEK[]") -> bytes | None:
        data = self._ok(conn.uid("FETCH", uid, f"({part})"), "FETCH")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return item[1]
        return None

    def _find(self, conn: imaplib.IMAP4, folder: str, message_id: str) -> bool:
        self._select(conn, folder)
        return bool(self._search(conn, "HEADER", "Message-ID", _quoted(bracket(message_id))))

    def _sent(self, conn: imaplib.IMAP4) -> str:
        """The Sent folder: the one marked ``\\Sent``, else one of the usual names, else a new "Sent"."""
        if self.sent_folder:
            return self.sent_folder
        names: dict[str, str] = {}
        for line in self._ok(conn.list(), "LIST"):
            if not isinstance(line, bytes):
                continue
            match = re.match(rb'\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$', line)
            if not match:
                continue
            name = match["name"].decode("utf-8", "replace").strip()
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\") if name.startswith('"') else name
            if b"\\sent" in match["flags"].lower():
                self.sent_folder = name
                return name
            names[name.lower()] = name
        known = next((names[n.lower()] for n in SENT_NAMES if n.lower() in names), None)
        if known is None:
            self._ok(conn.create(_quoted("Sent")), "CREATE Sent")
            known = "Sent"
        self.sent_folder = known
        return known

    @staticmethod
    def _ok(answer: tuple[str, Sequence[object]], command: str) -> Sequence[object]:
        status, data = answer
        if status != "OK":
            raise imaplib.IMAP4.error(f"{command} answered {status}: {data!r}")
        return data

    def _drop(self) -> None:
        conn, self._conn, self._selected = self._conn, None, None
        if conn is not None:
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError):
                conn.shutdown()

    def close(self) -> None:
        """Log out of IMAP (SMTP connections last one reply each)."""
        with self._lock:
            self._drop()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:40]
