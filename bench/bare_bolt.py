"""The floor of `bench/serve_ready.py`: a bare Bolt app on gunicorn, and nothing else.

``gunicorn --chdir bench bare_bolt:app`` serves it. It imports only slack_bolt (no churnbot
module, no HTTP client), verifies signatures like churnbot, has one listener that only
acknowledges, and answers ``GET /healthz``: what any Bolt app on gunicorn pays to start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

bolt = App(
    # Bolt calls auth.test on the first request: SLACK_API_URL, as churnbot reads it.
    client=WebClient(
        token=os.environ["SLACK_BOT_TOKEN"],
        base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
    ),
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    process_before_response=True,
    token_verification_enabled=False,
)


@bolt.command("/churn")
def ack_only(ack: Ack) -> None:
    ack()


handler = SlackRequestHandler(bolt)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/healthz":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status": "ok"}']
    return handler(environ, start_response)
