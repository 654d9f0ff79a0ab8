"""App Home: on `app_home_opened`, publish the user's accounts at risk (and, for admins, the
system status). Publishing happens after the ack, on the background executor."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.deps import Deps
from bot.listeners.churn import owner_of
from bot.render import AdminStatus, home_view
from bot.serving import current
from models.errors import ChurnbotError

log = logging.getLogger(__name__)


def build_home(deps: Deps, client: WebClient, user_id: str) -> dict[str, Any]:
    serving = current(deps.store, deps.switch, deps.settings.spec, deps.clock())
    cards: list[dict[str, Any]] = []
    owner = owner_of(deps, client, user_id)
    if serving.meta is not None and owner is not None:
        cards = deps.store.top(
            deps.settings.slack.digest_size, owner=owner, snapshot_id=serving.meta.snapshot_id
        )
    status = None
    if deps.settings.slack.is_admin(user_id):
        latest = deps.store.latest()
        status = AdminStatus(
            champion_model=serving.meta.model_version if serving.meta else None,
            last_run=latest,
            kill_switch=serving.switch,
            next_digests=deps.next_digests(),
        )
    return home_view(
        user_cards=cards,
        status=status,
        banner=serving.banner or serving.unavailable,
        owner=owner,
        scores=serving.meta is not None,
    )


def publish_home(deps: Deps, client: WebClient, user_id: str) -> None:
    try:
        client.views_publish(user_id=user_id, view=build_home(deps, client, user_id))
    except (SlackApiError, ChurnbotError) as exc:
        log.error("could not publish App Home for %s: %s", user_id, exc)


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        deps.background.submit(publish_home, deps, client, event["user"])
