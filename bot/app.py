"""The Bolt app, built by a factory from its dependencies; nothing connects at import time.

``process_before_response=True``: listeners acknowledge inline (Bolt's default thread runner
polls for the ack every 10 ms, a floor of 10 ms per request), and anything slow is handed to a
background executor after the ack.

Over HTTP, ``bot.web`` checks each request before Bolt sees it (its signature too, which Bolt
then does not check again). In Socket Mode Slack's requests come over an authenticated socket:
there is no signature to check, so no signing secret is needed, and the payload check runs as
the first middleware instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from slack_bolt import App, BoltResponse
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from bot import middleware
from bot.deps import Deps
from bot.listeners import admin, churn, feedback, home
from bot.settings import require_signing_secret
from bot.state import StoreError
from bot.state.replay import settle_pending

log = logging.getLogger(__name__)
BOLT_LOGGER = "churnbot.bolt"
#: Bolt names its listeners' loggers after the app. Without a name it takes the file that built
#: the App from ``inspect.stack()``, which reads the source of every frame and walks every loaded
#: module (tens of milliseconds in a worker's start); this is the name it found, so the loggers
#: keep their names.
BOLT_APP_NAME = "app.py"

UNREACHABLE = (
    "⚠️ churnbot cannot reach its data right now; please try again in a minute. "
    "The admins can see the details in the logs."
)
SOMETHING_WRONG = (
    "Something went wrong on our side; please try again. The admins can see the details in "
    "the logs."
)


class _QuietBolt(logging.Filter):
    """Drops a Bolt log line that misleads: "As you gave `client` as well, `token` will be
    unused". Bolt reads SLACK_BOT_TOKEN from the environment by itself and warns at every start
    that the client churnbot built from that same token wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_QUIET_BOLT = _QuietBolt()


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


def build_app(deps: Deps, *, client: WebClient | None = None, socket_mode: bool = False) -> App:
    env = deps.settings.env
    if not socket_mode:
        require_signing_secret(env)
    bolt_logger = logging.getLogger(BOLT_LOGGER)
    bolt_logger.addFilter(_QUIET_BOLT)  # before App(): Bolt's own loggers copy its filters
    app = App(
        name=BOLT_APP_NAME,
        client=client or build_client(deps),
        signing_secret=env.slack_signing_secret.get_secret_value()
        if env.slack_signing_secret
        else "",
        process_before_response=True,
        token_verification_enabled=False,
        # The web door (bot.door) verified this request's signature over the same bytes just
        # before; Bolt's own check would hash the body a second time (a digest click's body
        # carries the whole message: about 4% of a click's instructions). Socket Mode has no
        # signature to check.
        request_verification_enabled=False,
        logger=bolt_logger,
    )
    if socket_mode:
        app.middleware(_payload_check)
    middleware.register(app, deps)
    # Bolt tries listeners in order, building each one's arguments: the feedback buttons,
    # the most frequent and most latency-bound requests, are matched first. No two
    # surfaces match the same request, so the order changes nothing else.
    for surface in (feedback, churn, admin, home):
        surface.register(app, deps)

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        """One place for failures no listener handled: a store out of reach gets the honest
        answer, anything else is logged with its traceback and counted; either way the user
        who is waiting is told (a command in its answer, a click through its response_url)."""
        label = middleware.handler_label(body)
        if isinstance(error, StoreError | redis.RedisError):
            log.warning("%s could not answer: %s", label, error)
            text = UNREACHABLE
        else:
            deps.metrics.errors.labels(label).inc()
            log.error("unhandled error in %s", label, exc_info=error)
            text = SOMETHING_WRONG
        url = body.get("response_url") if body.get("type") == "block_actions" else None
        if isinstance(url, str) and settle_pending(deps.redis):  # a replay is not told again
            deps.background.submit(_tell, url, text)
        return BoltResponse(status=200, body=text)

    return app


def _payload_check(body: dict[str, Any], next: Callable[[], BoltResponse]) -> BoltResponse:
    """Socket Mode's stand-in for the web door's shape check (see ``bot.middleware``).

    A refused envelope is still acknowledged, with what is wrong as the ack's text: over the
    socket the ack is the only answer there is (Bolt sends none for a status other than 200),
    and without one Slack retries an event that can never succeed, and shows the person who
    typed a command its own timeout error instead of the reason."""
    checked = middleware.check_payload(body)
    if checked.problem is not None:
        log.warning("refused a Slack request (%d): %s", checked.status, checked.problem)
        return BoltResponse(
            status=200, body=f"churnbot cannot read this request: {checked.problem}"
        )
    return next()


def _tell(response_url: str, text: str) -> None:
    """An ephemeral note to the person who clicked (their message is left alone)."""
    try:
        WebhookClient(response_url, timeout=5).send(
            text=text, response_type="ephemeral", replace_original=False
        )
    except (SlackClientError, OSError, ValueError) as exc:
        log.warning("could not tell the user through the response_url: %s", exc)
