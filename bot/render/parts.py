"""Small Block Kit builders every surface shares (sections, banner, compact account lines).

Plain dicts in Block Kit's JSON shape. The renderers fit every text to its limit themselves
(``fit_mrkdwn``, ``header_text``) and the tests check every output with the emulator's
Block Kit rules, so the SDK model classes' validation at ``to_dict()`` would only repeat that:
it cost more than half of a ``/churn`` answer (bench/churn_command.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from bot.render.text import (
    MAX_SECTION_TEXT,
    WARNING,
    band_emoji,
    change_label,
    escape_mrkdwn,
    fit_mrkdwn,
    header_text,
)

#: Most reasons one account shows; more are counted, not listed (a config allows at most 5).
MAX_REASONS = 5
#: Most items any bulleted list shows before saying how many were left out.
MAX_LIST_ITEMS = 10
#: Budget (JSON characters) of one row of an account list (pick list, ``/churn mine``): ten
#: rows with their buttons stay well under a message's ~13k whatever the names.
MAX_LIST_LINE = 700
#: Longest account id a button or block_id can carry (the same bound as snapshot ids): an id
#: is a key, so it is refused rather than shortened.
MAX_ACCOUNT_ID = 128

#: Longest CRM link an account name carries. A link cannot be shortened (it would lead
#: elsewhere), so a longer one is left out and the name shows without it.
MAX_URL = 500
_URL = re.compile(r"https?://[^\s<>\x00-\x1f\x7f]+", re.IGNORECASE)
#: Characters a Slack link cannot carry as such ("|" ends the address; braces would be read as
#: template slots), percent-encoded as a browser would.
_URL_ENCODE = str.maketrans({"|": "%7C", "{": "%7B", "}": "%7D"})
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")

T = TypeVar("T")


def capped(items: Sequence[T], limit: int) -> tuple[Sequence[T], int]:
    """The first ``limit`` items and how many were left out (to be said, never hidden)."""
    return items[:limit], max(0, len(items) - limit)


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(header_text(text))}


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def section(text: str, **kwargs: Any) -> dict[str, Any]:
    """A mrkdwn section; ``text`` must come from :func:`~bot.render.text.fit_mrkdwn`."""
    return {"type": "section", "text": mrkdwn(text), **kwargs}


def context(text: str) -> dict[str, Any]:
    """A one-element mrkdwn context line; ``text`` must come from ``fit_mrkdwn``."""
    return {"type": "context", "elements": [mrkdwn(text)]}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def banner_block(banner: str) -> dict[str, Any]:
    """The fallback banner, shown word for word: plain text is never parsed for pings or
    links, so it needs no escaping (and :func:`fallback_banner` keeps it under the limit)."""
    return {"type": "section", "text": plain(WARNING + banner)}


def account_id_of(card: Mapping[str, Any]) -> str:
    """The card's account id, checked to fit a button value and a block_id."""
    account_id = card["account_id"]
    if not isinstance(account_id, str) or not 0 < len(account_id) <= MAX_ACCOUNT_ID:
        raise ValueError(
            f"An account id must be a string of 1 to {MAX_ACCOUNT_ID} characters to fit Slack "
            f"buttons. Got {str(account_id)[:200]!r} instead."
        )
    return account_id


def button(label: str, action_id: str, value: str) -> dict[str, Any]:
    return {"type": "button", "text": plain(label), "action_id": action_id, "value": value}


def show_button(card: Mapping[str, Any]) -> dict[str, Any]:
    """The "Show" button of a list row: the ``show_account`` listener answers with the card."""
    return button("Show", "show_account", account_id_of(card))


#: What lists show instead of a risk for an account whose data is too thin to score.
NOT_SCORED = ("⚪", "not enough data", "to score")


def risk_label(card: Mapping[str, Any]) -> tuple[str, str, str]:
    """(band emoji, risk %, band) of a card, e.g. ("🔴", "82%", "high"); for an account not
    scored for lack of data (``abstain``), words that say so instead of a percentage."""
    if card.get("abstain"):
        return NOT_SCORED
    return band_emoji(card["band"]), f"{card['risk']:.0%}", card["band"]


def list_lines(
    line: str, rows: Sequence[Sequence[object]], limit: int = MAX_LIST_ITEMS
) -> tuple[str, list[object]]:
    """A ``fit_mrkdwn`` template of one ``line`` per row (at most ``limit``) and its pieces,
    with a counted "… and N more" line when rows are left out."""
    shown, more = capped(rows, limit)
    lines = [line] * len(shown)
    pieces = [piece for row in shown for piece in row]
    if more:
        lines.append("_… and {} more_")
        pieces.append(more)
    return "\n".join(lines), pieces


def reason_lines(card: Mapping[str, Any], limit: int = MAX_REASONS) -> tuple[str, list[object]]:
    """Bullets for the card's first ``limit`` reasons (see :func:`list_lines`)."""
    return list_lines("• {}", [(reason["text"],) for reason in card["reasons"]], limit)


def crm_url(card: Mapping[str, Any]) -> str | None:
    """The card's ``url`` (its CRM record) as a Slack link address, or None when the card has
    none or it is not a plain http(s) address of at most :data:`MAX_URL` characters."""
    url = card.get("url")
    if not isinstance(url, str) or len(url) > MAX_URL or not _URL.fullmatch(url):
        return None
    return escape_mrkdwn(url.translate(_URL_ENCODE))


def name_slot(card: Mapping[str, Any]) -> str:
    """A ``fit_mrkdwn`` template fragment for the account's name in bold, linked to its CRM
    record when the card has a usable ``url``.

    The address goes into the template itself, already escaped, so shortening a long text
    never cuts it: only the name (the ``{}`` slot) can be shortened.
    """
    url = crm_url(card)
    return f"*<{url}|{{}}>*" if url else "*{}*"


def person_slot(who: str) -> str:
    """A ``fit_mrkdwn`` fragment for who did something: a mention when ``who`` is a Slack user
    id, else the name as stored (``health-check``)."""
    return "<@{}>" if _SLACK_USER.fullmatch(who) else "{}"


def owner_slot(owner: str, owner_users: Mapping[str, str]) -> tuple[str, list[object]]:
    """The owner as a mention (``<@U…>``) when they map to a Slack user, else as written in
    the data: a ``fit_mrkdwn`` fragment and its piece."""
    user = owner_users.get(owner)
    if user is not None and _SLACK_USER.fullmatch(user):
        return "<@{}>", [user]
    return "{}", [owner]


def account_summary(
    card: Mapping[str, Any],
    *,
    marks: str = "",
    reasons: int,
    limit: int = MAX_SECTION_TEXT,
    why: bool = False,
    owner: tuple[str, list[object]] | None = None,
) -> str:
    """The compact mrkdwn of one account (digest, App Home, ``/churn mine``), mirroring the
    terminal card's title line: name (linked to the CRM record when known), risk, band,
    change, and the owner when given (an :func:`owner_slot`); then ``reasons`` top reasons,
    → the action and, with ``why``, the playbook's reason for it; at most ``limit``
    characters of JSON."""
    abstain = card.get("abstain")
    if abstain:
        reason_template, reason_texts = list_lines(
            "• missing: {}", [(item,) for item in abstain["missing"]], reasons
        )
    else:
        reason_template, reason_texts = reason_lines(card, reasons)
    action = card["action"]
    template = "{}" + name_slot(card) + "  {} {} {}"
    pieces: list[object] = [marks, card["account_name"], *risk_label(card)]
    if not abstain:
        template += " ({})"
        pieces.append(change_label(card.get("change")))
    if owner is not None:
        template += " · " + owner[0]
        pieces += owner[1]
    if abstain:
        return fit_mrkdwn(template + "\n" + reason_template, *pieces, *reason_texts, limit=limit)
    if reason_template:
        template += "\n" + reason_template
        pieces += reason_texts
    template += "\n→ *{}* ({})"
    pieces += [action["action"], action["owner"]]
    if why and action.get("why"):
        template += "\n_why: {}_"
        pieces.append(action["why"])
    return fit_mrkdwn(template, *pieces, limit=limit)
