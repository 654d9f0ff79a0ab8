"""`/churn` for everyone: an account's card, your own book, or help.

The answer goes back in the acknowledgement itself (an ephemeral response), so the user sees
it in one round trip; an account's card costs one Redis call (bot/lookup.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.deps import Deps
from bot.digest.alerts import AlertMutes
from bot.feedback.preferences import set_preference
from bot.feedback.track_record import card_risk_level
from bot.lookup import resolve
from bot.render import (
    NOT_MAPPED,
    account_card_blocks,
    escape_mrkdwn,
    help_blocks,
    mine_blocks,
    no_match_blocks,
    pick_list_blocks,
)
from bot.render.text import plural
from bot.render.unlisted import unlisted_answer
from bot.serving import Serving, current, serving_of
from bot.state.killswitch import state_from
from models.errors import ChurnbotError

if TYPE_CHECKING:  # the snapshot store needs numpy, loaded with the first card read
    from bot.state import SnapshotMeta

log = logging.getLogger(__name__)
Answer = tuple[str, list[dict[str, Any]]]


def text_answer(text: str) -> Answer:
    """A one-section answer; ``text`` may carry user- or admin-written words, so escape it."""
    safe = escape_mrkdwn(text)
    return safe, [{"type": "section", "text": {"type": "mrkdwn", "text": safe}}]


def trend(
    deps: Deps,
    account_id: str,
    serving: Serving,
    history: list[tuple[SnapshotMeta, float]] | None = None,
) -> list[tuple[SnapshotMeta, float]]:
    """(snapshot, risk) over the trusted snapshots up to the one being served, oldest first,
    from ``history`` when the caller read it along with the card, else read now."""
    assert serving.meta is not None
    cutoff = serving.meta.created_at
    if history is None:
        history = deps.store.history(account_id)
    return [(meta, risk) for meta, risk in history if meta.healthy and meta.created_at <= cutoff]


def card_answer(
    deps: Deps,
    card: dict[str, Any],
    serving: Serving,
    history: list[tuple[SnapshotMeta, float]] | None = None,
) -> Answer:
    assert serving.meta is not None
    points = trend(deps, card["account_id"], serving, history)
    span = (
        (dt.date.fromisoformat(points[-1][0].as_of) - dt.date.fromisoformat(points[0][0].as_of))
        if points
        else None
    )
    blocks = account_card_blocks(
        card,
        history=[risk for _, risk in points],
        snapshot_id=serving.meta.snapshot_id,
        banner=serving.banner,
        freshness=serving.freshness,
        span_days=span.days if span else None,
        risk_level=card_risk_level(deps, card, serving.meta.snapshot_id),
    )
    name = escape_mrkdwn(card["account_name"])
    if card.get("abstain"):
        return notification(f"{name}: not enough data to score", serving), blocks
    return notification(f"{name}: {card['risk']:.0%} churn risk ({card['band']})", serving), blocks


def notification(text: str, serving: Serving) -> str:
    """An answer's notification text (mrkdwn, escaped), with the banner when scores are not
    the live ones: a notification alone must not pass old scores off as today's."""
    if serving.banner is None:
        return text
    return f"{text} — ⚠️ {escape_mrkdwn(serving.banner)}"


def owner_of(deps: Deps, client: WebClient, user_id: str) -> str | None:
    """The owner CSM a Slack user is: from config/slack.yaml, else their profile email."""
    mapped = deps.settings.slack.owners.get(user_id)
    if mapped:
        return mapped
    try:
        profile = client.users_info(user=user_id)["user"].get("profile", {})
    except SlackApiError as exc:
        log.warning("users.info failed for %s: %s", user_id, exc.response.get("error"))
        return None
    return profile.get("email")


def answer(deps: Deps, client: WebClient, text: str, user_id: str) -> Answer:
    query = " ".join(text.split())
    if not query or query.lower() == "help":
        return "How to use /churn", help_blocks()
    if query.lower() in ("optout", "optin"):
        return text_answer(set_preference(deps, user_id, opted_out=query.lower() == "optout"))
    if query.lower() in ("alerts off", "alerts on"):
        mutes = AlertMutes(deps.redis, prefix=deps.prefix)
        return text_answer(mutes.choose(user_id, muted=query.lower() == "alerts off"))
    if query.lower() == "mine":
        serving = current(deps.store, deps.switch, deps.settings.spec, deps.clock())
        if serving.meta is None:
            return text_answer(f"⚠️ {serving.unavailable}")
        owner = owner_of(deps, client, user_id)
        if owner is None:
            return text_answer(NOT_MAPPED)
        sid = serving.meta.snapshot_id
        cards = deps.store.top(deps.settings.slack.digest_size, owner=owner, snapshot_id=sid)
        return notification(
            f"Your {plural(len(cards), 'account')} most at risk", serving
        ), mine_blocks(owner, cards, banner=serving.banner, freshness=serving.freshness)
    # One Redis call: the kill switch, the snapshot it points to, the lookup and the trend.
    found = resolve(deps.store, query, switch_key=deps.switch.key)
    if found.kind == "too_long":
        return text_answer("That is a very long account name: try a shorter part of it.")
    serving = serving_of(found.meta, state_from(found.switch), deps.settings.spec, deps.clock())
    if serving.meta is None:
        return text_answer(f"⚠️ {serving.unavailable}")
    if found.kind == "card" and found.card is not None:
        return card_answer(deps, found.card, serving, found.history)
    if found.kind == "pick":
        return notification("Several accounts match, riskiest first", serving), pick_list_blocks(
            found.query,
            found.matches,
            more=found.more,
            at_least=found.at_least,
            banner=serving.banner,
        )
    if found.kind == "unlisted":
        # An account the served snapshot's export no longer lists: why it has no score.
        text, blocks = unlisted_answer(
            found.query,
            found.unlisted,
            found.export_newest or serving.meta.as_of,
            banner=serving.banner,
            at_least=found.at_least,
        )
        return notification(text, serving), blocks
    return "No account matches", no_match_blocks(found.query, found.suggestions)


def register(app: App, deps: Deps) -> None:
    @app.command("/churn")
    def churn(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        try:
            text, blocks = answer(deps, client, command.get("text", ""), command["user_id"])
        except ChurnbotError as exc:
            log.warning("/churn could not answer: %s", exc)
            text, blocks = text_answer(
                "⚠️ churnbot cannot reach its data right now; please try again in a "
                "minute. The admins can see the details in the logs."
            )
        ack(response_type="ephemeral", text=text, blocks=blocks)

    @app.action("show_account")
    def show_account(ack: Ack, body: dict[str, Any], respond: Any) -> None:
        """The "Show" button of a pick list: replace the list with that account's card."""
        ack()
        account_id = body["actions"][0]["value"]
        # One Redis call: the switch, the snapshot it points to, the card and its trend.
        store, switch_key = deps.store, deps.switch.key
        found = store.lookup(account_id, limit=1, switch_key=switch_key, id_variants=False)
        serving = serving_of(found.meta, state_from(found.switch), deps.settings.spec, deps.clock())
        if found.by_id is None or serving.meta is None:
            text, blocks = text_answer("That account is no longer in the current scores.")
        else:
            history = found.history if found.history_of == account_id else None
            text, blocks = card_answer(deps, found.by_id.card(), serving, history)
        respond(replace_original=True, response_type="ephemeral", text=text, blocks=blocks)
