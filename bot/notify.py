"""Telling the admins: a post in the admin channel, or a DM to each admin.

Shared by `/churn-admin` (state changes), the digest worker (a channel it cannot post to),
`churnbot score` (the kill switch tripped by a health check) and the feedback summaries, so
admins hear about every problem in the same place.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.deps import Deps

log = logging.getLogger(__name__)


def notify_admins(deps: Deps, client: WebClient, text: str, *, skip: str | None = None) -> None:
    """Post to the admin channel, or DM each admin but ``skip``; a failure is logged, never
    raised (telling the admins must not break what they are being told about)."""
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
        except OSError as exc:
            log.error("could not tell admin %s: %s", target, exc)
