"""The `/churn` answer for an account that the served snapshot's export no longer lists.

Such an account was not scored (``models.listing``): answering "no match" would read as if it
never existed, so the answer names it, says which export left it out and when it was last
listed, and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.render.parts import banner_block, capped, section
from bot.render.text import escape_mrkdwn, fit_mrkdwn

if TYPE_CHECKING:
    from bot.state.snapshots import UnlistedRow

#: Most accounts one answer names.
MAX_NAMED = 5
_WHAT_TO_DO = "If it is still a customer, check the export; if it left, nothing to do."
_WHAT_TO_DO_MANY = "If they are still customers, check the export; if they left, nothing to do."


def unlisted_answer(
    query: str,
    accounts: Sequence[UnlistedRow],
    newest: str,
    *,
    banner: str | None,
    at_least: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """The notification text and blocks: ``accounts`` (at least one) are not in the export
    dated ``newest`` that the served scores come from (``banner``: they are not the live
    ones, so it is not called the newest)."""
    export = "the export these scores come from" if banner else "the newest export"
    blocks = [banner_block(banner)] if banner else []
    if len(accounts) == 1:
        account = accounts[0]
        text = fit_mrkdwn(
            "*{}*" + _id_slot(account) + " is not in " + export + " (dated {}; last listed {}), "
            "so it has no score. " + _WHAT_TO_DO,
            *_named(account),
            newest,
            account.last_listed,
        )
        note = f"{escape_mrkdwn(account.account_name or account.account_id)} is not in {export}"
        return note, [*blocks, section(text)]
    shown, more = capped(list(accounts), MAX_NAMED)
    count = f"At least {len(accounts)}" if at_least else str(len(accounts))
    listed = ", ".join(
        ("*{}* ({}, last listed {})" if _id_slot(account) else "*{}* (last listed {})")
        for account in shown
    )
    pieces: list[object] = [query, newest]
    for account in shown:
        pieces += [*_named(account), account.last_listed]
    tail = (", and at least {} more" if at_least else ", and {} more") if more else ""
    if more:
        pieces.append(more)
    text = fit_mrkdwn(
        count + " accounts matching '{}' are not in " + export + " (dated {}), so they have no "
        "score: " + listed + tail + ". " + _WHAT_TO_DO_MANY,
        *pieces,
    )
    return f"{count} matching accounts are not in {export}", [*blocks, section(text)]


def _id_slot(account: UnlistedRow) -> str:
    """ " ({id})" after the name, unless the name is the id (or there is no name)."""
    return " ({})" if account.account_name and account.account_name != account.account_id else ""


def _named(account: UnlistedRow) -> list[str]:
    """The pieces :func:`_id_slot`'s template takes: the name, and the id when it shows."""
    if _id_slot(account):
        return [account.account_name, account.account_id]
    return [account.account_name or account.account_id]
