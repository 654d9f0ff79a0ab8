"""Answers to ``/churn``: one account's card, a pick list, "no match", and usage help.

The card mirrors ``bot.terminal.render_card`` (same facts, same order) so the demo in a
terminal shows what a CSM sees in Slack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.render.feedback import feedback_actions
from bot.render.parts import (
    MAX_LIST_ITEMS,
    MAX_LIST_LINE,
    banner_block,
    capped,
    context,
    header,
    list_lines,
    mrkdwn,
    name_slot,
    reason_lines,
    risk_label,
    section,
    show_button,
)
from bot.render.text import change_label, fit_mrkdwn, trend_words
from bot.render.track_record import risk_level_line
from models.track_record import RiskLevel

#: Most matches a pick list shows (the snapshot store's ``find`` returns 10 by default).
MAX_PICK = 10
#: Budgets (JSON characters) of the card's texts. With the header, the banner and the
#: feedback buttons they stay under Slack's ~13k per message whatever the data (a test
#: proves it); an absurd reason gets the largest share.
CARD_RISK_TEXT = 1000
CARD_FIELD_TEXT = 200
CARD_REASONS_TEXT = 3000
CARD_ACTION_TEXT = 1500
CARD_CONTEXT_TEXT = 500
#: Budget of the pick list's first line (it repeats the query).
PICK_QUERY_TEXT = 500


def account_card_blocks(
    card: Mapping[str, Any],
    *,
    history: Sequence[float],
    snapshot_id: str,
    banner: str | None,
    freshness: str,
    span_days: int | None = None,
    risk_level: RiskLevel | None = None,
) -> list[dict[str, Any]]:
    """The ephemeral ``/churn ACCOUNT`` answer: everything known about one account, and the
    feedback buttons.

    ``history`` is the account's risk in past snapshots, oldest first, ``span_days`` apart
    from first to last (the trend); ``risk_level`` says how often accounts at the card's band
    churned. The header may cut a long name, so the first section always carries it in full.
    A card whose data is too thin (``abstain``) says so and what is missing, instead of a
    percentage that would only echo the training medians.
    """
    blocks = [banner_block(banner)] if banner else []
    blocks.append(header(card["account_name"]))
    if card.get("abstain"):
        blocks.append(section(_abstain_text(card)))
        blocks.append({"type": "section", "fields": [mrkdwn(t) for t in _fact_fields(card)]})
        blocks.append(context(fit_mrkdwn("{}", freshness, limit=CARD_CONTEXT_TEXT)))
        return blocks
    blocks.append(section(_risk_text(card, history, span_days)))
    if risk_level is not None:
        blocks.append(context(fit_mrkdwn("{}", risk_level_line(risk_level))))
    blocks.append({"type": "section", "fields": [mrkdwn(text) for text in _fact_fields(card)]})
    blocks.append(section(_reasons_text(card)))
    action = card["action"]
    blocks.append(
        section(
            fit_mrkdwn(
                "*Recommended action*\n→ *{}* ({})\n_why: {}_",
                action["action"],
                action["owner"],
                action["why"],
                limit=CARD_ACTION_TEXT,
            )
        )
    )
    blocks.append(context(fit_mrkdwn("{}", freshness, limit=CARD_CONTEXT_TEXT)))
    blocks.append(feedback_actions(card, snapshot_id=snapshot_id, surface="card"))
    return blocks


def _risk_text(card: Mapping[str, Any], history: Sequence[float], span_days: int | None) -> str:
    return fit_mrkdwn(
        name_slot(card) + " · `{}`\n{} *{}* risk · {} band · change since last snapshot: {}\n"
        "Trend: {}",
        card["account_name"],
        card["account_id"],
        *risk_label(card),
        change_label(card.get("change")),
        trend_words(history, span_days),
        limit=CARD_RISK_TEXT,
    )


def _abstain_text(card: Mapping[str, Any]) -> str:
    """ "Not enough data to score", and what is missing (see ``models.abstain``)."""
    template, pieces = list_lines("• {}", [(item,) for item in card["abstain"]["missing"]])
    return fit_mrkdwn(
        name_slot(card)
        + " · `{}`\n*Not enough data to score* — what is missing:\n"
        + template
        + "\n_Once the account data has these, it is scored like any other._",
        card["account_name"],
        card["account_id"],
        *pieces,
        limit=CARD_RISK_TEXT + CARD_REASONS_TEXT,
    )


def _fact_fields(card: Mapping[str, Any]) -> list[str]:
    """The owner, then the card's context line as configured in features.yaml (label, text)."""
    facts = [("Owner", card["owner"]), *(tuple(pair) for pair in card.get("context") or ())]
    return [fit_mrkdwn("*{}*\n{}", name, value, limit=CARD_FIELD_TEXT) for name, value in facts]


def _reasons_text(card: Mapping[str, Any]) -> str:
    template, pieces = reason_lines(card)
    if not pieces:
        template, pieces = "{}", ["No single reason stands out."]
    template = "*Why it is at risk*\n" + template
    if card.get("healthy"):
        template += "\n*Going well*\n• {}"
        pieces.append(card["healthy"]["text"])
    return fit_mrkdwn(template, *pieces, limit=CARD_REASONS_TEXT)


def pick_list_blocks(
    query: str,
    matches: Sequence[Mapping[str, Any]],
    *,
    more: int = 0,
    at_least: bool = False,
    banner: str | None = None,
) -> list[dict[str, Any]]:
    """Several accounts match a ``/churn`` query: one line each (name, id, risk) with a
    "Show" button, in the order given (riskiest first), at most 10.

    ``more`` matches were left out before (``at_least``: there may be more still); with the
    ones cut here they are counted, never hidden, with how to narrow the list.
    """
    shown, cut = capped(matches, MAX_PICK)
    more += cut
    blocks = [banner_block(banner)] if banner else []
    blocks.append(
        section(
            fit_mrkdwn("Several accounts match '{}', riskiest first:", query, limit=PICK_QUERY_TEXT)
        )
    )
    for match in shown:
        emoji, risk, band = risk_label(match)
        blocks.append(
            section(
                fit_mrkdwn(
                    "*{}* · `{}` · {} {} {}",
                    match["account_name"],
                    match["account_id"],
                    emoji,
                    risk,
                    band,
                    limit=MAX_LIST_LINE,
                ),
                accessory=show_button(match),
            )
        )
    if more:
        blocks.append(
            context(
                fit_mrkdwn(
                    "… and {}{} more. To narrow the list, type more of the name, or the "
                    "account id: `/churn ACCOUNT`",
                    "at least " if at_least else "",
                    more,
                )
            )
        )
    return blocks


def no_match_blocks(query: str, suggestions: Sequence[str]) -> list[dict[str, Any]]:
    """No account matches: say so, offer the closest names, and how to search."""
    shown, more = capped(suggestions, MAX_LIST_ITEMS)
    template = "No account matches '{}'."
    pieces: list[object] = [query, *shown]
    if shown:
        template += " Did you mean: " + ", ".join(["*{}*"] * len(shown))
        if more:
            template += " (and {} more)?"
            pieces.append(more)
        else:
            template += "?"
    text = fit_mrkdwn(template, *pieces)
    return [
        section(text),
        context("Search by part of the account name or by its exact id: `/churn ACCOUNT`"),
    ]


def help_blocks() -> list[dict[str, Any]]:
    """Usage, for an empty ``/churn``."""
    usage = (
        "*How to use /churn*\n"
        "• `/churn ACCOUNT` — risk, reasons and the recommended action for one account "
        "(part of its name, or its id)\n"
        "• `/churn mine` — your accounts at risk, riskiest first\n"
        "• `/churn alerts off` / `/churn alerts on` — mute (or unmute) direct messages when one "
        "of your accounts jumps in risk\n"
        "• `/churn optout` / `/churn optin` — store your feedback without (or again with) your name"
    )
    return [section(usage)]
