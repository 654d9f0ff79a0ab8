"""`/churn-admin`: admin commands, answered ephemerally; state changes are told to admins."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import admin
from bot.deps import Deps
from models.errors import ChurnbotError

log = logging.getLogger(__name__)


def notify_admins(deps: Deps, client: WebClient, text: str, *, skip: str | None = None) -> None:
    """Post to the admin channel, or DM each admin; a failure is logged, never raised."""
    config = deps.settings.slack
    targets = (
        [config.admin_channel]
        if config.admin_channel
        else [user for user in config.admins if user != skip]
    )
    for target in targets:
        try:
            client.chat_postMessage(channel=target, text=text)
        except SlackApiError as exc:
            log.error("could not tell admin %s: %s", target, exc.response.get("error"))


def register(app: App, deps: Deps) -> None:
    @app.command("/churn-admin")
    def churn_admin(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        user = command["user_id"]
        try:
            reply = admin.handle(deps, user, command.get("text", ""))
        except ChurnbotError as exc:
            log.warning("/churn-admin failed: %s", exc)
            reply = admin.AdminReply(
                ":warning: churnbot cannot reach its data store right now; nothing changed."
            )
        ack(response_type="ephemeral", text=reply.text)
        if reply.notify_admins:  # after the ack: Slack API calls must not delay the answer
            deps.background.submit(notify_admins, deps, client, reply.notify_admins, skip=user)
