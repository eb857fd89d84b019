"""Personal data in free text: find it, and redact it before it leaves the machine or lands in a public reply.

``find_pii`` returns ``(kind, (start, end))`` pairs, sorted and non-overlapping. Kinds:

- ``email``: an e-mail address.
- ``card``: a payment card number (13 to 19 digits, spaces or dashes allowed, Luhn-valid).
- ``card_last4``: the last four digits of a card ("card ending 4421").
- ``iban``: an IBAN whose check digits verify (mod 97).
- ``national_id``: a US social security number (123-45-6789) or a UK National Insurance number.
- ``phone``: a phone number (9 to 15 digits, with the usual separators and an optional ``+``).
- ``reference``: an order, account, case, ticket, invoice, booking or tracking number.
- ``address``: a street address ("14 Elm Street") or a UK postcode.

The patterns favour recall on the shapes customers actually type; the drafting stage redacts with
``redact`` before any remote model call and checks replies with ``find_pii``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

PII_KINDS: tuple[str, ...] = (
    "email", "card", "card_last4", "iban", "national_id", "phone", "reference", "address",
)

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_CARD_LAST4 = re.compile(
    r"\b(?:card|visa|mastercard|amex|debit card|credit card|account)\s+"
    r"(?:number\s+)?(?:ending|ending\s+in|ends\s+in|ending\s+with|last\s+(?:4|four)(?:\s+digits)?)"
    r"\s*(?:in|of|is|are)?\s*[:#]?\s*(\d{4})\b",
    re.IGNORECASE,
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_PHONE = re.compile(r"(?<![\w+#/(-])(?:\+|00)?\(?\d[\d ().-]{7,20}\d(?![\w/-])")
_DATE_LIKE = re.compile(r"^\d{1,4}[-./]\d{1,2}[-./]\d{1,4}$")
_REF_KEYWORDS = (
    r"order|orders|order\s+(?:number|no\.?|id|ref)|account\s+(?:number|no\.?|id)|acct|case|case\s+(?:number|no\.?)"
    r"|ticket|ticket\s+(?:number|no\.?)|ref|reference|reference\s+(?:number|no\.?)|invoice|invoice\s+(?:number|no\.?)"
    r"|tracking|tracking\s+(?:number|no\.?|code|id)|booking|booking\s+(?:number|no\.?|ref(?:erence)?)"
    r"|confirmation(?:\s+(?:number|code))?|reservation|membership(?:\s+number)?|customer\s+(?:number|id|no\.?)"
    r"|policy(?:\s+number)?|claim(?:\s+number)?|serial(?:\s+number)?|parcel|shipment|rma|return"
)
_REFERENCE_AFTER_KEYWORD = re.compile(
    rf"\b(?:{_REF_KEYWORDS})\s*(?:is|was|number|no\.?|id|:|=)?\s*:?\s*"
    r"(#?(?=[A-Za-z0-9-]*\d)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)",
    re.IGNORECASE,
)
_REFERENCE_SHAPES = re.compile(
    r"(?<![\w#])#\d{4,}\b"                        # #12345
    r"|\b[A-Z]{2,4}-\d{4,}(?:-\d+)?\b"            # LM-48213
    r"|\b1Z[0-9A-Z]{16}\b"                       # UPS tracking
)
_STREET_TYPES = (
    r"Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Close|Way|Court|Ct|Place|Pl|Crescent|Cres|Boulevard|Blvd"
    r"|Terrace|Gardens|Square|Sq|Grove|Hill|Row|Mews|Parade|Highway|Hwy|Walk|Park"
)
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][a-z]+\s+){{1,3}}(?:{_STREET_TYPES})\b"
    r"(?:,?\s+(?:Apt|Apartment|Flat|Unit|Suite)\.?\s*\d+[A-Za-z]?)?"
)
_POSTCODE = re.compile(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}\b")


class PiiSpan(NamedTuple):
    """One piece of personal data: its kind and its ``(start, end)`` character span."""

    kind: str
    span: tuple[int, int]


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum (payment card numbers)."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """Whether an IBAN's check digits verify (ISO 13616, mod 97)."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _candidates(text: str) -> list[PiiSpan]:
    found: list[PiiSpan] = []
    for m in _EMAIL.finditer(text):
        found.append(PiiSpan("email", m.span()))
    for m in _CARD.finditer(text):
        digits = _digits(m.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and len(set(digits)) > 1:
            found.append(PiiSpan("card", m.span()))
    for m in _CARD_LAST4.finditer(text):
        found.append(PiiSpan("card_last4", m.span(1)))
    for m in _IBAN.finditer(text):
        if iban_valid(m.group()):
            found.append(PiiSpan("iban", m.span()))
    for m in _SSN.finditer(text):
        found.append(PiiSpan("national_id", m.span()))
    for m in _NINO.finditer(text):
        found.append(PiiSpan("national_id", m.span()))
    for m in _REFERENCE_AFTER_KEYWORD.finditer(text):
        value = m.group(1)
        digits = sum(ch.isdigit() for ch in value)
        # "order 500 bulbs" is a quantity; "case 77812" and "LM-481" are references.
        if digits >= 4 or (digits >= 3 and any(ch.isalpha() for ch in value)):
            found.append(PiiSpan("reference", m.span(1)))
    for m in _REFERENCE_SHAPES.finditer(text):
        found.append(PiiSpan("reference", m.span()))
    for m in _PHONE.finditer(text):
        raw = m.group().strip()
        digits = _digits(raw)
        if not 9 <= len(digits) <= 15 or _DATE_LIKE.match(raw):
            continue
        # A bare run of digits is a phone number only if it looks like one: a leading + or 0,
        # or separators grouping the digits (plain long numbers are usually ids or amounts).
        grouped = any(sep in raw for sep in " -.()")
        if raw.startswith(("+", "0", "(")) or grouped:
            found.append(PiiSpan("phone", m.span()))
    for m in _ADDRESS.finditer(text):
        found.append(PiiSpan("address", m.span()))
    for m in _POSTCODE.finditer(text):
        found.append(PiiSpan("address", m.span()))
    return found


# When two matches overlap, the more specific kind wins (a Luhn-valid card beats a phone-shaped run).
_PRECEDENCE = {kind: rank for rank, kind in enumerate(PII_KINDS)}


def find_pii(text: str) -> list[PiiSpan]:
    """Personal data in ``text`` as ``(kind, (start, end))`` pairs, in order and non-overlapping."""
    chosen: list[PiiSpan] = []
    candidates = sorted(
        _candidates(text),
        key=lambda c: (_PRECEDENCE[c.kind], -(c.span[1] - c.span[0]), c.span[0]),
    )
    for cand in candidates:
        start, end = cand.span
        if any(start < e and s < end for _, (s, e) in chosen):
            continue
        chosen.append(cand)
    return sorted(chosen, key=lambda c: c.span[0])


def pii_kinds(text: str) -> list[str]:
    """The distinct kinds of personal data in ``text``, in order of first appearance."""
    kinds: list[str] = []
    for kind, _ in find_pii(text):
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def redact(text: str, placeholder: str = "[{kind}]") -> str:
    """``text`` with every piece of personal data replaced by ``placeholder`` (``{kind}`` is filled in)."""
    out: list[str] = []
    last = 0
    for kind, (start, end) in find_pii(text):
        out.append(text[last:start])
        out.append(placeholder.format(kind=kind))
        last = end
    out.append(text[last:])
    return "".join(out)
