"""What the web process queues after a feedback click, for the message to be redrawn.

Why a queue in Redis and not work after the ack in the web process: a click must be answered
in Slack's 3 s and as fast as Bolt itself, while a redraw is a Slack call that may wait or be
rate limited; and work left in a process's memory dies with it. So the script that stores a
click also appends a :class:`RefreshJob` to a stream (``FeedbackStore.record``), and keeps the
message as the click showed it; ``bot.feedback.drain`` draws it, in the worker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.feedback.events import FeedbackEvent, Kind, MessageRef


def message_body(original: Mapping[str, Any] | None) -> str:
    """A message's text and blocks as JSON, kept for its refreshes ("" if it has no blocks)."""
    if not original or not original.get("blocks"):
        return ""
    return json.dumps(
        {"text": original.get("text") or "", "blocks": original["blocks"]},
        separators=(",", ":"),
        ensure_ascii=False,
    )


@dataclass(frozen=True)
class Redraw:
    """What a click tells about its message: whether it is an ephemeral ``/churn`` card, where
    to answer the clicker, and the message as the click showed it (None when the click came
    without it)."""

    ephemeral: bool
    response_url: str | None
    original: Mapping[str, Any] | None = None

    def body(self) -> str:
        return message_body(self.original)

    def job(self, event: FeedbackEvent, message: MessageRef | None) -> RefreshJob:
        return RefreshJob(
            message=message,
            ephemeral=self.ephemeral,
            response_url=self.response_url,
            account_id=event.ref.account_id,
            snapshot_id=event.ref.snapshot_id,
            kind=event.kind,
        )


@dataclass(frozen=True)
class RefreshJob:
    """One queued refresh: the message to redraw (None: no message, only confirm to the
    clicker), and what the draw needs that is not stored with the message."""

    message: MessageRef | None
    ephemeral: bool
    response_url: str | None
    account_id: str
    snapshot_id: str
    kind: Kind

    def encode(self) -> str:
        message = self.message
        return json.dumps(
            {
                "channel": message.channel if message else None,
                "ts": message.ts if message else None,
                "ephemeral": self.ephemeral,
                "response_url": self.response_url,
                "account_id": self.account_id,
                "snapshot_id": self.snapshot_id,
                "kind": self.kind,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str) -> RefreshJob:
        data = json.loads(raw)
        channel, ts = data["channel"], data["ts"]
        return cls(
            message=MessageRef(channel, ts) if channel and ts else None,
            ephemeral=bool(data["ephemeral"]),
            response_url=data["response_url"],
            account_id=str(data["account_id"]),
            snapshot_id=str(data["snapshot_id"]),
            kind=data["kind"],
        )
