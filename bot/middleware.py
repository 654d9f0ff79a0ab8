"""Bolt middleware: de-duplication of Slack's retries, and the metrics label of a request.

Bolt passes ``X-Slack-Retry-Num`` through but never de-duplicates (PITFALLS.md), so every
event id is claimed in Redis (SET NX with a TTL) before a listener runs; a retry of an event
already claimed is acknowledged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltResponse

from bot.deps import Deps

log = logging.getLogger(__name__)
EVENT_TTL_SECONDS = 3600


def handler_label(body: dict[str, Any]) -> str:
    """A low-cardinality name for what a request asks for (the metrics label)."""
    if "command" in body:
        return f"command:{body['command']}"
    kind = body.get("type", "unknown")
    if kind == "event_callback":
        return f"event:{body.get('event', {}).get('type', 'unknown')}"
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        return f"action:{actions[0].get('action_id', 'unknown')}"
    if kind in ("view_submission", "view_closed"):
        return f"view:{body.get('view', {}).get('callback_id', 'unknown')}"
    return str(kind)


def register(app: App, deps: Deps) -> None:
    metrics = deps.metrics
    seen_prefix = f"{deps.prefix}:dedupe:event:"

    @app.middleware
    def drop_retried_events(
        body: dict[str, Any],
        next: Callable[[], BoltResponse],
    ) -> BoltResponse:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not deps.redis.set(
            seen_prefix + event_id, "1", nx=True, ex=EVENT_TTL_SECONDS
        ):
            metrics.duplicates.labels(handler_label(body)).inc()
            log.info("dropped a repeated delivery of event %s", event_id)
            return BoltResponse(status=200, body="")
        return next()
