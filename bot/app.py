"""The Bolt app, built by a factory from its dependencies; nothing connects at import time.

``process_before_response=True``: listeners acknowledge inline (Bolt's default thread runner
polls for the ack every 10 ms, a floor of 10 ms per request; PITFALLS.md), and anything slow
is handed to a background executor after the ack.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot import middleware
from bot.deps import Deps
from bot.listeners import admin, churn, feedback, home
from models.errors import ConfigError

log = logging.getLogger(__name__)


def build_client(deps: Deps) -> WebClient:
    """The Web API client, aimed at ``SLACK_API_URL`` (Slack, or the local emulator)."""
    env = deps.settings.env
    token = env.slack_bot_token.get_secret_value() if env.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=env.slack_api_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


def build_app(deps: Deps, *, client: WebClient | None = None) -> App:
    env = deps.settings.env
    if env.slack_signing_secret is None:
        raise ConfigError(
            "environment: SLACK_SIGNING_SECRET is not set; the app must verify every Slack "
            "request (find it under Basic Information in your Slack app's settings)"
        )
    app = App(
        client=client or build_client(deps),
        signing_secret=env.slack_signing_secret.get_secret_value(),
        process_before_response=True,
        token_verification_enabled=False,
        logger=logging.getLogger("churnbot.bolt"),
    )
    middleware.register(app, deps)
    for surface in (churn, admin, home, feedback):
        surface.register(app, deps)

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        """One place for unexpected failures: log them, count them, answer plainly."""
        label = middleware.handler_label(body)
        deps.metrics.errors.labels(label).inc()
        log.error("unhandled error in %s", label, exc_info=error)
        return BoltResponse(
            status=200,
            body="Something went wrong on our side; please try again. The admins can see "
            "the details in the logs.",
        )

    return app
