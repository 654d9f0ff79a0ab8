"""`/churn-admin`: admin commands, answered ephemerally; state changes are told to admins.

`digest now` posts after the acknowledgement (a digest may take seconds: several parts, one
per second per channel) and reports the outcome through the command's response_url; a preview
shows its first part in the acknowledgement itself and the rest through the response_url.
`stats` answers in the acknowledgement and draws and uploads its charts after it.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.deps import Deps
from bot.notify import notify_admins
from models.errors import ChurnbotError

if TYPE_CHECKING:
    from bot.digest.poster import DigestPoster, Outcome
    from bot.render import Message

log = logging.getLogger(__name__)

#: Slack accepts five posts to one response_url.
RESPONSE_URL_USES = 5


def register(app: App, deps: Deps) -> None:
    # The admin commands, the digest poster and the charts are imported with the first
    # /churn-admin, and the poster built with the first `digest now` (it reads the snapshot
    # store: numpy): a web worker loads none of it before it can answer its users.
    @cache
    def poster() -> DigestPoster:
        from bot.digest.poster import build_poster
        from bot.digest.sender import DigestSender, build_client

        return build_poster(deps, DigestSender(build_client(deps.settings.env)))

    @app.command("/churn-admin")
    def churn_admin(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        from bot import admin
        from bot.feedback import feedback_store
        from bot.feedback.report_charts import send_stats_charts

        user = command["user_id"]
        try:
            reply = admin.handle(deps, user, command.get("text", ""))
        except ChurnbotError as exc:
            log.warning("/churn-admin failed: %s", exc)
            reply = admin.AdminReply(
                ":warning: churnbot cannot reach its data store right now; nothing changed."
            )
        first = reply.preview[0].blocks if reply.preview else None
        ack(response_type="ephemeral", text=reply.text, blocks=first)
        # After the ack: Slack API calls must not delay the answer.
        if reply.notify_admins:
            deps.background.submit(notify_admins, deps, client, reply.notify_admins, skip=user)
        if len(reply.preview) > 1:
            deps.background.submit(show_rest, respond, reply.preview[1:])
        if reply.charts_to:
            deps.background.submit(
                send_stats_charts, deps, client, feedback_store(deps), reply.charts_to
            )
        if reply.post_digest:
            deps.background.submit(post_now, deps, poster(), respond, reply.post_digest, user)


def show_rest(respond: Respond, parts: tuple[Message, ...]) -> None:
    """The preview's later parts, as far as the response_url's uses allow (said, not hidden)."""
    shown = parts[:RESPONSE_URL_USES]
    for number, part in enumerate(shown, start=2):
        text = part.text
        if number == len(shown) + 1 and len(parts) > len(shown):
            text += f" (and {len(parts) - len(shown)} more part(s) not shown in the preview)"
        respond(response_type="ephemeral", replace_original=False, text=text, blocks=part.blocks)


def post_now(deps: Deps, poster: DigestPoster, respond: Respond, name: str, user: str) -> None:
    """Post the digest and tell the admin how it went."""
    digest = deps.settings.channels.by_name(name)
    assert digest is not None  # admin.handle found it in the same settings
    try:
        outcome = poster.run_now(digest, who=user)
        text = outcome_text(outcome)
    except ChurnbotError as exc:
        log.error("digest now %s failed: %s", name, exc)
        text = f":warning: The digest {name} was not posted: {exc}"
    respond(response_type="ephemeral", replace_original=False, text=text)


def outcome_text(outcome: Outcome) -> str:
    slot = outcome.slot
    if outcome.status == "posted":
        return (
            f"✅ Posted the digest {slot.digest} to <#{slot.channel}> ({len(outcome.ts)} part(s))."
        )
    if outcome.status in ("already_done", "busy"):
        return f"The digest {slot.digest} was already being posted this minute; nothing doubled."
    return f":warning: The digest {slot.digest} was not posted: {outcome.reason}"
