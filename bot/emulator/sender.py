"""Send requests to the app exactly as Slack does: form bodies, signed, with Slack's headers.

The other half of the emulator: where `SlackEmulator` plays Slack's Web API, `SlackSender`
plays Slack calling the app (slash commands, interactions, events), signing each body with
HMAC-SHA256 over ``v0:{timestamp}:{body}`` like Slack.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx

FORM = "application/x-www-form-urlencoded"


def signature(secret: str, timestamp: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    return "v0=" + digest.hexdigest()


def signed_headers(
    secret: str, timestamp: str, body: str, content_type: str = FORM
) -> dict[str, str]:
    """The headers Slack sends with ``body``: for :class:`SlackSender`, and for a caller that
    hands a signed request to the WSGI app without HTTP (``bench/click_instructions.py``)."""
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature(secret, timestamp, body),
    }


class SlackSender:
    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        team_id: str = "T0CHURNBOT",
        clock: Callable[[], float] = time.time,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/slack/events"
        self.secret = signing_secret
        self.team_id = team_id
        self.clock = clock
        self.http = client or httpx.Client(timeout=10)

    def post(
        self,
        body: str,
        *,
        content_type: str = FORM,
        timestamp: str | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a raw body, signed (with another secret or timestamp to forge or replay)."""
        ts = timestamp or str(int(self.clock()))
        signed = {
            **signed_headers(secret or self.secret, ts, body, content_type),
            **(headers or {}),
        }
        return self.http.post(self.url, content=body.encode(), headers=signed)

    def command(
        self, command: str, text: str = "", *, user_id: str = "U0CSM00001", **fields: str
    ) -> httpx.Response:
        form = {
            "token": "legacy-unused",
            "team_id": self.team_id,
            "team_domain": "example",
            "channel_id": fields.pop("channel_id", "C0GENERAL1"),
            "channel_name": "general",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0CHURNBOT",
            "response_url": fields.pop("response_url", "https://hooks.example/commands/1"),
            "trigger_id": fields.pop("trigger_id", f"trig.{uuid.uuid4().hex}"),
            **fields,
        }
        return self.post(urlencode(form))

    def interaction(self, payload: dict[str, Any]) -> httpx.Response:
        """A block action or view submission: a form with one `payload=` JSON field."""
        return self.post(urlencode({"payload": json.dumps(payload)}))

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> httpx.Response:
        body = json.dumps(
            {
                "token": "legacy-unused",
                "team_id": self.team_id,
                "api_app_id": "A0CHURNBOT",
                "type": "event_callback",
                "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
                "event_time": int(self.clock()),
                "event": event,
            }
        )
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(body, content_type="application/json", headers=headers)

    def close(self) -> None:
        self.http.close()
