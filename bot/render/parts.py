"""Small Block Kit builders every surface shares (sections, banner, compact account lines).

Plain dicts in Block Kit's JSON shape. The renderers fit every text to its limit themselves
(``fit_mrkdwn``, ``header_text``) and the tests check every output with the emulator's
Block Kit rules, so the SDK model classes' validation at ``to_dict()`` would only repeat that:
it cost more than half of a ``/churn`` answer (bench/churn_command.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from bot.render.text import (
    MAX_SECTION_TEXT,
    WARNING,
    band_emoji,
    change_label,
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


def risk_label(card: Mapping[str, Any]) -> tuple[str, str, str]:
    """(band emoji, risk %, band) of a card, e.g. ("🔴", "82%", "high")."""
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


def account_summary(
    card: Mapping[str, Any], *, marks: str = "", reasons: int, limit: int = MAX_SECTION_TEXT
) -> str:
    """The compact mrkdwn of one account (digest, App Home, ``/churn mine``), mirroring the
    terminal card's title line: name, risk, band, change; then ``reasons`` top reasons and
    → the action; at most ``limit`` characters of JSON."""
    reason_template, reason_texts = reason_lines(card, reasons)
    action = card["action"]
    template = "{}*{}*  {} {} {} ({})"
    if reason_template:
        template += "\n" + reason_template
    template += "\n→ *{}* ({})"
    return fit_mrkdwn(
        template,
        marks,
        card["account_name"],
        *risk_label(card),
        change_label(card.get("change")),
        *reason_texts,
        action["action"],
        action["owner"],
        limit=limit,
    )
