"""Reading one email: its thread ids, its sender, whether a person wrote it, and the customer's own words.

Pure functions over bytes and text, no server: the email connector (``connectors.mail``) fetches and sends,
this module reads. Quoted text is cut in the languages the product supports (English, Spanish, French,
German, Portuguese, Italian): lines starting with ``>``, an "On ... wrote:" attribution and all below it,
an Outlook "-----Original Message-----" or "From: ... Sent: ..." header block and all below it, and a
signature after a "-- " line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import ClassVar


class Unreadable(ValueError):
    """A message the copilot cannot take: it stays unseen in the mailbox and the reason is logged."""


@dataclass(frozen=True)
class MailMessage:
    """What the connector needs of one inbound email. Message ids are kept without their angle brackets."""

    message_id: str
    sender: str  # the From address, lower-cased
    reply_to: str  # where an answer goes: Reply-To, else From
    subject: str
    text: str  # the customer's own words, quotes and signature cut
    references: tuple[str, ...]  # the thread before this message, oldest first
    automatic: str | None  # why no person wrote it ("auto-reply", "bounce", ...), else None

    @property
    def root(self) -> str:
        """The thread's first message: the first of References, else In-Reply-To, else this message."""
        return self.references[0] if self.references else self.message_id

    @property
    def thread(self) -> tuple[str, ...]:
        """The References an answer to this message carries: the thread so far and this message."""
        return (*self.references, self.message_id)


_ID = re.compile(r"<([^<>\s]+)>")


def message_ids(value: str | None) -> list[str]:
    """The ids in a Message-ID, In-Reply-To or References header, without brackets, in order."""
    if not value:
        return []
    found = _ID.findall(str(value))
    if not found and str(value).strip():
        found = [str(value).strip().strip("<>")]  # a bare id some clients write without brackets
    return found


def bracket(message_id: str) -> str:
    """A message id as a header writes it."""
    return f"<{message_id}>"


def read_message(raw: bytes) -> MailMessage:
    """Parse one RFC 822 message (``policy.default``); ``Unreadable`` says why it cannot be taken."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        sender = parseaddr(str(msg.get("From", "")))[1].strip().lower()
        reply_to = [a for _, a in getaddresses([str(v) for v in msg.get_all("Reply-To", [])]) if "@" in a]
        subject = " ".join(str(msg.get("Subject", "")).split())
        own = message_ids(msg.get("Message-ID"))
        references = message_ids(msg.get("References")) or message_ids(msg.get("In-Reply-To"))[:1]
        body = _body_text(msg)
        automatic = automatic_reason(msg, sender)
    except (LookupError, UnicodeError, ValueError, TypeError, AssertionError) as exc:
        raise Unreadable(f"cannot parse the message: {exc}") from exc
    if "@" not in sender:
        raise Unreadable("no sender address in From")
    # A message without an id still needs a stable one, so a second poll of it is recognised.
    message_id = own[0] if own else f"{hashlib.sha256(raw).hexdigest()[:32]}@no-message-id.invalid"
    if automatic is None and body is None:
        raise Unreadable("no text part (text/plain or text/html) to read")
    text = strip_quotes(body or "")
    if not references and subject and subject.lower() not in text.lower():
        text = f"{subject}\n\n{text}".strip()  # a new thread: the subject often says what is wrong
    if automatic is None and not text:
        raise Unreadable("the message has no text of its own (empty, or only quoted text)")
    return MailMessage(
        message_id=message_id, sender=sender, reply_to=(reply_to[0] if reply_to else sender).lower(),
        subject=subject, text=text, references=tuple(r for r in references if r != message_id),
        automatic=automatic,
    )


def automatic_reason(msg: EmailMessage, sender: str) -> str | None:
    """Why a message was not written by a person (RFC 3834 auto-replies, bulk mail, bounces), else None."""
    auto_submitted = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"auto-submitted ({auto_submitted})"
    if str(msg.get("Precedence", "")).strip().lower() in {"bulk", "auto_reply", "junk"}:
        return f"precedence {str(msg.get('Precedence')).strip().lower()}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Autoresponse"):
        if msg.get(header) is not None:
            return header.lower()
    if msg.get_content_type() == "multipart/report":
        return "bounce (delivery report)"
    local = sender.partition("@")[0]
    if local in {"mailer-daemon", "postmaster"} or str(msg.get("Return-Path", "")).strip() == "<>":
        return "bounce (null sender or mailer-daemon)"
    return None


def _body_text(msg: EmailMessage) -> str | None:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return None
    content = part.get_content()
    if not isinstance(content, str):
        return None
    return html_to_text(content) if part.get_content_subtype() == "html" else content


class _TextOfHtml(HTMLParser):
    """Text of an HTML body: block elements break lines, a blockquote's lines are quoted with '>'."""

    BLOCKS: ClassVar[frozenset[str]] = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.depth = 0  # blockquote nesting
        self.skip = 0  # inside script or style

    def _break(self) -> None:
        if self.lines[-1].strip(" >"):
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style", "head"}:
            self.skip += 1
        elif tag == "blockquote":
            self._break()
            self.depth += 1
        elif tag in self.BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style", "head"}:
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote":
            self._break()
            self.depth = max(0, self.depth - 1)
        elif tag in self.BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        words = re.sub(r"\s+", " ", data)
        if not self.lines[-1]:
            words = words.lstrip()
            if not words:
                return
            self.lines[-1] = "> " * self.depth
        elif self.lines[-1].endswith(" "):
            words = words.lstrip()
        self.lines[-1] += words


def html_to_text(html: str) -> str:
    """Plain text of an HTML email body (no tags, scripts or styles; quoted blocks marked with '>')."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    return "\n".join(line.rstrip() for line in parser.lines).strip()


# "On <date>, <name> wrote:" in each supported language, as the common mail clients write it.
_ATTRIBUTION = [re.compile(p, re.IGNORECASE) for p in (
    r"^on\b.{3,300}\bwrote\s?:$",  # English (Gmail, Apple Mail, Thunderbird)
    r"^el\b.{3,300}\bescribi[óo]\s?:$",  # Spanish
    r"^le\b.{3,300}\ba [ée]crit\s?:$",  # French
    r"^am\b.{3,300}\bschrieb\b.{0,200}:$",  # German: "Am 3. Juni 2024 um 10:00 schrieb Jane <j@x.de>:"
    r"^(?:em|no dia)\b.{3,300}\bescreveu\s?:$",  # Portuguese (Brazil, Portugal)
    r"^il (?:giorno )?.{3,300}\bha scritto\s?:$",  # Italian
)]
# "Jane Doe wrote:" with no date: taken as an attribution only when quoted lines follow.
_LOOSE_ATTRIBUTION = re.compile(r"^.{1,200}\b(?:wrote|escribi[óo]|a [ée]crit|schrieb|escreveu|ha scritto)\s?:$",
                                re.IGNORECASE)
_ORIGINAL_MESSAGE = re.compile(
    r"^-{2,}\s*(?:original message|mensaje original|message d'origine|message original|urspr[üu]ngliche "
    r"nachricht|originalnachricht|mensagem original|messaggio originale)\s*-{2,}$", re.IGNORECASE)
# Outlook's header block of the quoted message: "From:" then, within a few lines, "Sent:"/"Date:" and "To:".
_FROM = re.compile(r"^\*?(?:from|de|von|da)\s?:\*?\s", re.IGNORECASE)
_SENT = re.compile(r"^\*?(?:sent|date|enviado|fecha|envoy[ée]|date d'envoi|gesendet|datum|data|inviato)\s?:\*?\s",
                   re.IGNORECASE)
_TO = re.compile(r"^\*?(?:to|para|[àa]|an|a)\s?:\*?\s", re.IGNORECASE)


def strip_quotes(text: str) -> str:
    """The customer's own words: quoted lines, the quoted message below an attribution or an Outlook header
    block, and the signature after "-- " are cut; blank runs are collapsed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = _quote_start(lines)
    kept = [line.rstrip() for line in lines[:cut] if not line.lstrip().startswith(">")]
    out: list[str] = []
    for line in kept:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _quote_start(lines: list[str]) -> int:
    """The index of the first line of the quoted message or the signature (len(lines) if none)."""
    for i, raw in enumerate(lines):
        line = raw.strip()
        if raw.rstrip("\n") in {"-- ", "--"}:
            return i
        if not line or line.startswith(">"):
            continue
        # An attribution a client wrapped onto two lines ("On Mon, ... Jane <" / "jane@x.com> wrote:").
        joined = f"{line} {lines[i + 1].strip()}" if i + 1 < len(lines) else line
        if any(p.match(line) or p.match(joined) for p in _ATTRIBUTION):
            return i
        if _LOOSE_ATTRIBUTION.match(line) and _next_is_quoted(lines, i + 1):
            return i
        if _ORIGINAL_MESSAGE.match(line):
            return i
        if re.fullmatch(r"_{10,}", line) and i + 1 < len(lines) and _FROM.match(lines[i + 1].strip()):
            return i
        if _FROM.match(line) and _outlook_block(lines, i):
            return i
    return len(lines)


def _next_is_quoted(lines: list[str], start: int) -> bool:
    for line in lines[start:start + 3]:
        if line.strip():
            return line.lstrip().startswith(">")
    return False


def _outlook_block(lines: list[str], start: int) -> bool:
    """Whether a "From:" line opens a quoted header block: a date line and a "To:" line follow it."""
    window = [line.strip() for line in lines[start + 1:start + 6]]
    return any(_SENT.match(line) for line in window) and any(_TO.match(line) for line in window)
