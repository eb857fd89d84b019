"""Personal data: what ``find_pii`` finds (and leaves alone), and what ``redact`` leaves behind."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.pii import PiiSpan, find_pii, iban_valid, luhn_valid, pii_kinds, redact


def kinds_and_values(text: str) -> list[tuple[str, str]]:
    return [(kind, text[start:end]) for kind, (start, end) in find_pii(text)]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Reach me at jane.doe@example.com, nobody replied", "email", "jane.doe@example.com"),
        ("mail: first.last+lumio@mail.co.uk please", "email", "first.last+lumio@mail.co.uk"),
        ("call me on 07700 900123 this is urgent", "phone", "07700 900123"),
        ("my number is +44 7700 900123", "phone", "+44 7700 900123"),
        ("US line (555) 123-4567 any time", "phone", "(555) 123-4567"),
        ("or 555.123.4567", "phone", "555.123.4567"),
        ("my card 4111 1111 1111 1111 was charged", "card", "4111 1111 1111 1111"),
        ("card no 5500-0000-0000-0004 please refund", "card", "5500-0000-0000-0004"),
        ("amex 378282246310005", "card", "378282246310005"),
        ("You billed my card ending 4421 for nothing", "card_last4", "4421"),
        ("the visa ending in 0093", "card_last4", "0093"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "iban", "GB82 WEST 1234 5698 7654 32"),
        ("SSN 123-45-6789", "national_id", "123-45-6789"),
        ("my NI number is AB 12 34 56 C", "national_id", "AB 12 34 56 C"),
        ("Refund for order 1189342 still missing", "reference", "1189342"),
        ("My order number is 5567-2231 and it's stuck", "reference", "5567-2231"),
        ("charged twice for order #LM-48213", "reference", "#LM-48213"),
        ("Order LM-50912 hasn't shipped", "reference", "LM-50912"),
        ("warranty claim (case 77812) was rejected", "reference", "77812"),
        ("tracking number 1Z999AA10123456784 is wrong", "reference", "1Z999AA10123456784"),
        ("booking ref: QX7-2231 cancelled", "reference", "QX7-2231"),
        ("they delivered to 14 Elm Street but I live at 41", "address", "14 Elm Street"),
        ("send it to 221B Baker Street, Flat 2", "address", "221B Baker Street, Flat 2"),
        ("My postcode is SW1A 1AA", "address", "SW1A 1AA"),
    ],
)
def test_finds_each_kind(text: str, kind: str, value: str) -> None:
    assert (kind, value) in kinds_and_values(text)


@pytest.mark.parametrize(
    "text",
    [
        "flight on 2024-03-05 at 10:30, it cost 1299.99",
        "I have 3 bulbs and 12000 lumens, bought in 2023",
        "it took 45 minutes, 100 percent brightness",
        "card 4111 1111 1111 1112 is not a valid number",  # fails Luhn
        "I want to order 500 bulbs for the office",  # a quantity, not a reference
        "Version 2.14.3 broke my scenes",
        "Call us on our help line, we're open 9-5",
        "My hub is on firmware 1.0.2024",
        "@Lumio #fail thanks for nothing",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert find_pii(text) == []


def test_spans_are_ordered_and_do_not_overlap() -> None:
    text = "Email a@b.io, card 4111111111111111, phone +1 555 123 4567, order 99120345"
    found = find_pii(text)
    assert [kind for kind, _ in found] == ["email", "card", "phone", "reference"]
    ends = [span for _, span in found]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ends))
    assert all(isinstance(item, PiiSpan) for item in found)


def test_a_valid_card_number_wins_over_a_phone_shape() -> None:
    assert pii_kinds("pay with 4111 1111 1111 1111") == ["card"]


def test_redact_replaces_every_piece_and_keeps_the_rest() -> None:
    text = "Hi, I'm at jane@example.com or 07700 900123; order LM-48213 went to 14 Elm Street."
    redacted = redact(text)
    assert redacted == "Hi, I'm at [email] or [phone]; order [reference] went to [address]."
    assert find_pii(redacted) == []
    assert redact(text, placeholder="<{kind}>").startswith("Hi, I'm at <email>")


def test_redact_is_identity_without_personal_data() -> None:
    text = "The hub keeps dropping off wifi 🙄 #fail"
    assert redact(text) == text


def test_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("41a1")
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB83 WEST 1234 5698 7654 32")


_local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=12).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum() and ".." not in s
)
_domain = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=10)


@settings(max_examples=60, deadline=None)
@given(local=_local, domain=_domain, tld=st.sampled_from(["com", "org", "io", "co.uk"]),
       before=st.sampled_from(["", "write to ", "Contact: ", "mail me at "]),
       after=st.sampled_from(["", " thanks", ", ok?", " 🙏"]))
def test_redacted_emails_never_survive(local: str, domain: str, tld: str, before: str, after: str) -> None:
    text = f"{before}{local}@{domain}.{tld}{after}"
    redacted = redact(text)
    assert "@" not in redacted
    assert "[email]" in redacted


@settings(max_examples=60, deadline=None)
@given(digits=st.lists(st.integers(0, 9), min_size=15, max_size=15), sep=st.sampled_from(["", " ", "-"]))
def test_luhn_valid_card_numbers_are_always_found(digits: list[int], sep: str) -> None:
    body = "4" + "".join(map(str, digits[:14]))
    check = next(d for d in range(10) if luhn_valid(body + str(d)))
    number = body + str(check)
    grouped = sep.join(number[i:i + 4] for i in range(0, 16, 4))
    assert redact(f"my card is {grouped} thanks") == "my card is [card] thanks"
