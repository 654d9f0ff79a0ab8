"""App Home: on `app_home_opened`, publish the user's accounts at risk (and, for admins, the
system status). Publishing happens after the ack, on the background executor."""

from __future__ import annotations

import logging
from typing import Any

import redis
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.deps import Deps
from bot.listeners.churn import owner_of
from bot.render import AdminStatus, home_view
from bot.render.parts import section
from bot.serving import current
from bot.state.deadline import deadline
from models.errors import ChurnbotError

log = logging.getLogger(__name__)
#: Redis time for one Home tab (published after the ack, but a user is waiting to see it).
HOME_REDIS_BUDGET_S = 2.0
OUTAGE = (
    "⚠️ churnbot cannot reach its data right now, so your accounts cannot be shown. "
    "Open this tab again in a minute."
)


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
    """Publish the Home tab; with Redis out of reach (within a budget: someone is looking at
    the tab), publish a one-line notice saying so rather than leave the tab blank."""
    try:
        with deadline(HOME_REDIS_BUDGET_S):
            view = build_home(deps, client, user_id)
    except (ChurnbotError, redis.RedisError) as exc:
        log.warning("App Home for %s shows an outage notice: %s", user_id, exc)
        view = {"type": "home", "blocks": [section(OUTAGE)]}
    try:
        client.views_publish(user_id=user_id, view=view)
    except SlackClientError as exc:
        log.error("could not publish App Home for %s: %s", user_id, exc)


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        deps.background.submit(publish_home, deps, client, event["user"])
