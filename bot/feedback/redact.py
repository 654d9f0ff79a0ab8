"""Remove personal data from free text before it is stored.

Why here and not at export time: a correction's note lives in Redis, its AOF, its replicas and
backups; the only way to keep personal data out of all of them is never to write it. So every
free-text field of a feedback event passes through :func:`redact` first.

What counts as personal data here: email addresses, phone numbers (international ``+``/``00``
forms and the usual local forms, with spaces, dots, dashes, parentheses and extensions), IBANs
(checksum-verified), payment-card numbers (Luhn-verified), IPv4 addresses and Slack user
mentions. What must survive: the figures a CSM writes about an account ("ARR 120000",
"$1,200,000", "2026-11-23", "15%", "ACC-000123"), so a number is only a phone number when its
shape says so (grouping, a leading ``+``, ``0`` or area code in parentheses) or when a word
such as "call" or "mobile" comes just before it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

#: Not glued to a word, an id ("ACC-000123") or a decimal ("v2.3").
_START = r"(?<![\w@+/.\-])"
_END = r"(?![\w@]|[.\-/]\d)"
_EXTENSION = r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,6})?"
_SEP = r"[ .\-]"

_MENTION = re.compile(r"<[@!](?:[UW][A-Z0-9]{2,}|subteam\^[A-Z0-9]+)(?:\|[^>]*)?>")
_EMAIL = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._%+\-]*"
    r"(?:@|\s*[\[(]at[\])]\s*)"
    r"[A-Za-z0-9\-]+(?:(?:\.|\s*[\[(]dot[\])]\s*)[A-Za-z0-9\-]+)*"
    r"(?:\.|\s*[\[(]dot[\])]\s*)[A-Za-z]{2,24}\b",
    re.IGNORECASE,
)
_IBAN = re.compile(_START + r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}" + _END, re.IGNORECASE)
_INTERNATIONAL = re.compile(
    r"(?<![\w+\-./])(?:\+|\b00)\d{1,3}(?:" + _SEP + r"?\(?\d{1,5}\)?){2,6}" + _EXTENSION + _END
)
_CARD = re.compile(_START + r"\d(?:[ \-]?\d){12,18}" + _END)
_IPV4 = re.compile(_START + r"(?:\d{1,3}\.){3}\d{1,3}" + _END)
_LOCAL = re.compile(
    _START
    + r"(?:"
    + r"\(\d{2,5}\)\s?\d{2,4}(?:"
    + _SEP
    + r"?\d{2,4}){1,3}"  # (415) 555-0132
    + r"|0\d{1,4}(?:"
    + _SEP
    + r"?\d{2,4}){2,5}"  # 020 7946 0958, 06 12 34 56 78
    + r"|\d{3}"
    + _SEP
    + r"\d{3}"
    + _SEP
    + r"\d{4}"  # 415-555-0132
    + r"|\d{3}[.\-]\d{4}"  # 555-0132
    + r")"
    + _EXTENSION
    + _END
)
_CONTEXT_PHONE = re.compile(
    r"\b(?:call|phone|tel|telephone|mobile|cell|cellphone|whatsapp|sms|text|ring|fax)"
    r"\b[:.]?\s*(?:(?:him|her|them|me|us|on|at|number|no\.?|nr\.?|is|[:#])\s*){0,3}"
    r"(?P<number>\d(?:" + _SEP + r"?\d){6,14}" + _EXTENSION + r")" + _END,
    re.IGNORECASE,
)
_DATE = re.compile(r"\d{4}[.\-/]\d{1,2}[.\-/]\d{1,2}|\d{1,2}[.\-/]\d{1,2}[.\-/]\d{2,4}")


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _iban_checksum(text: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    compact = text.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@dataclass(frozen=True)
class Redacted:
    """The text with personal data replaced by ``[kind]`` markers, and how many of each."""

    text: str
    found: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    accept: Callable[[re.Match[str]], bool] = lambda _match: True
    group: str | int = 0


_RULES = (
    _Rule("user", _MENTION),
    _Rule("email", _EMAIL),
    _Rule("iban", _IBAN, lambda m: _iban_checksum(m.group())),
    _Rule("phone", _INTERNATIONAL, lambda m: 7 <= len(_digits(m.group())) <= 17),
    _Rule("card", _CARD, lambda m: _luhn(_digits(m.group()))),
    _Rule("ip", _IPV4, lambda m: all(int(part) <= 255 for part in m.group().split("."))),
    _Rule("phone", _LOCAL, lambda m: not _DATE.fullmatch(m.group())),
    _Rule(
        "phone",
        _CONTEXT_PHONE,
        lambda m: not _DATE.fullmatch(m.group("number")),
        group="number",
    ),
)


def redact(text: str) -> Redacted:
    """``text`` with every piece of personal data this module knows replaced by a marker.

    Rules run in a fixed order (mentions, emails, IBANs, international phones, cards, IPs,
    local phones, phones named by a word before them), each on the output of the one before,
    so a marker is never matched again.
    """
    found: Counter[str] = Counter()
    for rule in _RULES:

        def replace(match: re.Match[str], rule: _Rule = rule) -> str:
            if not rule.accept(match):
                return match.group()
            found[rule.kind] += 1
            start, end = match.span(rule.group)
            whole = match.group()
            offset = match.start()
            return whole[: start - offset] + f"[{rule.kind}]" + whole[end - offset :]

        text = rule.pattern.sub(replace, text)
    return Redacted(text, dict(found))
