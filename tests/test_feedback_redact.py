"""Personal data is removed from free text before storage; the figures CSMs write survive."""

from __future__ import annotations

import pytest

from bot.feedback.redact import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe+churn@mail.acme.co.uk today", "mail [email] today"),
        ("(jane_d@sub.example.com)", "([email])"),
        ("jane[at]acme[dot]com", "[email]"),
        ("JANE.DOE@ACME.COM", "[email]"),
        ("call +1 (415) 555-0132 ext. 12 tomorrow", "call [phone] tomorrow"),
        ("+44 20 7946 0958", "[phone]"),
        ("+33 6 12 34 56 78", "[phone]"),
        ("+49.30.1234567", "[phone]"),
        ("tel:+14155550132", "tel:[phone]"),
        ("0044 20 7946 0958", "[phone]"),
        ("(415) 555-0132", "[phone]"),
        ("415-555-0132 x204", "[phone]"),
        ("415.555.0132", "[phone]"),
        ("020 7946 0958", "[phone]"),
        ("06 12 34 56 78", "[phone]"),
        ("Call 06.12.34.56.78", "Call [phone]"),
        ("555-0132", "[phone]"),
        ("call him on 4155550132", "call him on [phone]"),
        ("mobile: 612345678", "mobile: [phone]"),
        ("phone number is 020-7946-0958.", "phone number is [phone]."),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [iban]"),
        ("iban GB82WEST12345698765432", "iban [iban]"),
        ("card 4111 1111 1111 1111 exp", "card [card] exp"),
        ("server 192.168.100.200", "server [ip]"),
        ("ask <@U0CSM00001> or <@U0ABC|maria>", "ask [user] or [user]"),
    ],
)
def test_personal_data_is_replaced_by_a_marker(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "ARR 120000",
        "$1,200,000 and 1 200 000 EUR and €1.200.000",
        "renewal 2026-11-23 or 23.11.2026 or 11/23/2026 or 2026/11/23",
        "usage down 15% and 12.5%, +15%",
        "account ACC-000123 and ACC-0001234567",
        "version 2.3.1 and v10.2",
        "Q3 2026 with 250 seats, 30 of 120",
        "call on 2026-11-23 at 10:30",
        "seats 1200 logins 34567 tickets 12, NPS 9/10",
        "order 4111 1111 1111 1112",  # 16 digits, but not a valid card number
        "score 0.812345678",
        "id 00123",
    ],
)
def test_figures_dates_ids_and_lookalikes_survive(text: str) -> None:
    assert redact(text).text == text


def test_it_counts_what_it_removed() -> None:
    found = redact("a@b.io, c@d.io, +44 20 7946 0958").found
    assert found == {"email": 2, "phone": 1}
