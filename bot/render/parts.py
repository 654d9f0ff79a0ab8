"""Small Block Kit builders every surface shares (sections, banner, compact account lines).

Built with ``slack_sdk.models.blocks`` so the SDK's own limit checks run at ``to_dict()``;
the renderers return plain dicts, ready for ``chat.postMessage`` or ``views.publish``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from slack_sdk.models.blocks import (
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

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
    return HeaderBlock(text=PlainTextObject(text=header_text(text), emoji=True)).to_dict()


def section(text: str, **kwargs: Any) -> dict[str, Any]:
    """A mrkdwn section; ``text`` must come from :func:`~bot.render.text.fit_mrkdwn`."""
    return SectionBlock(text=MarkdownTextObject(text=text), **kwargs).to_dict()


def context(text: str) -> dict[str, Any]:
    """A one-element mrkdwn context line; ``text`` must come from ``fit_mrkdwn``."""
    return ContextBlock(elements=[MarkdownTextObject(text=text)]).to_dict()


def divider() -> dict[str, Any]:
    return DividerBlock().to_dict()


def banner_block(banner: str) -> dict[str, Any]:
    """The fallback banner, shown word for word: plain text is never parsed for pings or
    links, so it needs no escaping (and :func:`fallback_banner` keeps it under the limit)."""
    return SectionBlock(text=PlainTextObject(text=WARNING + banner, emoji=True)).to_dict()


def account_id_of(card: Mapping[str, Any]) -> str:
    """The card's account id, checked to fit a button value and a block_id."""
    account_id = card["account_id"]
    if not isinstance(account_id, str) or not 0 < len(account_id) <= MAX_ACCOUNT_ID:
        raise ValueError(
            f"An account id must be a string of 1 to {MAX_ACCOUNT_ID} characters to fit Slack "
            f"buttons. Got {str(account_id)[:200]!r} instead."
        )
    return account_id


def show_button(card: Mapping[str, Any]) -> ButtonElement:
    """The "Show" button of a list row: the ``show_account`` listener answers with the card."""
    return ButtonElement(text="Show", action_id="show_account", value=account_id_of(card))


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
