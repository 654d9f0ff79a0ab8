"""Posting digest parts to Slack: nothing lost, nothing posted twice.

Why not slack-sdk's retry handlers: its 429 handler sleeps in the calling thread with no way to
inject the sleep, its 5xx handler is not exported (``slack_sdk.http_retry.builtin_handlers``),
and its connection-error handler re-sends a ``chat.postMessage`` that Slack may already have
accepted (a reset after the request went out), which posts the part twice. So the client gets
no retry handler at all and this loop decides, with an injected ``sleep`` and clock:

* **429**: Slack did nothing; wait ``Retry-After`` and post again.
* **5xx, timeouts, resets**: Slack may or may not have posted. Back off, then look the part up
  (every part carries message metadata naming its slot and number) and post only if absent.
* **channel_not_found, not_in_channel, is_archived**: :class:`ChannelUnavailable`, for the
  caller to tell the admins; other 4xx-style errors are :class:`DigestSendError` at once.

Parts to one channel are spaced by ``per_channel_interval`` (Slack allows about one message per
second per channel), so the rule is kept rather than discovered through 429s.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.render import Message
from bot.settings import EnvSettings
from models.errors import ChurnbotError

log = logging.getLogger(__name__)

DIGEST_EVENT = "churnbot_digest_part"
CHANNEL_UNAVAILABLE = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
#: Errors Slack answers with HTTP 200 that still mean "try again later".
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_NETWORK_ERRORS = (OSError, http.client.HTTPException)  # timeouts, resets, refused, bad replies
Keepalive = Callable[[float], None]


class DigestSendError(ChurnbotError):
    """A digest part could not be posted; the message says which channel and why."""


class ChannelUnavailable(DigestSendError):
    """The channel is gone or the bot is not in it: only a person can fix that."""

    def __init__(self, channel: str, error: str) -> None:
        self.channel = channel
        self.error = error
        hint = (
            "invite the bot with /invite @churnbot"
            if error == "not_in_channel"
            else ("check the channel id in config/channels.yaml")
        )
        super().__init__(f"Slack answered {error} for channel {channel}: {hint}")


class SendGaveUp(DigestSendError):
    """Slack kept failing (5xx, timeouts, 429s) beyond the retry budget; try again later."""


@dataclass(frozen=True)
class PartMarker:
    """Which slot and part a message is, carried as Slack message metadata so that a part
    whose fate is unknown can be found again."""

    slot_id: str
    part: int
    parts: int

    def metadata(self) -> dict[str, Any]:
        return {
            "event_type": DIGEST_EVENT,
            "event_payload": {"slot": self.slot_id, "part": self.part, "parts": self.parts},
        }

    def matches(self, message: Mapping[str, Any]) -> bool:
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        return (
            metadata.get("event_type") == DIGEST_EVENT
            and payload.get("slot") == self.slot_id
            and payload.get("part") == self.part
        )


def build_client(env: EnvSettings, *, timeout: int = 10) -> WebClient:
    """A Web API client for the worker and the senders: no automatic retries (see above)."""
    token = env.slack_bot_token.get_secret_value() if env.slack_bot_token else None
    return WebClient(token=token, base_url=env.slack_api_url, timeout=timeout, retry_handlers=[])


def _no_keepalive(seconds: float) -> None:
    """Used when no lease needs renewing (e.g. a preview)."""


class DigestSender:
    """Posts digest parts with the retry rules of the module docstring; thread-safe."""

    def __init__(
        self,
        client: WebClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        attempts: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_rate_limited: int = 20,
        per_channel_interval: float = 1.0,
        lookup_window: int = 200,
    ) -> None:
        self.client = client
        self._sleep = sleep
        self._monotonic = monotonic
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_rate_limited = max_rate_limited
        self._interval = per_channel_interval
        self._lookup_window = lookup_window
        self._last_post: dict[str, float] = {}
        self._lock = threading.Lock()

    def post(
        self,
        channel: str,
        message: Message,
        marker: PartMarker,
        *,
        thread_ts: str | None = None,
        keepalive: Keepalive = _no_keepalive,
    ) -> str:
        """Post one part and return its ``ts`` (or the ``ts`` of the copy already there)."""
        self._pace(channel, keepalive)
        response = self._retrying(
            f"part {marker.part} of {marker.parts}",
            channel,
            lambda: self.client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks_arg,
                thread_ts=thread_ts,
                metadata=marker.metadata(),
                unfurl_links=False,
                unfurl_media=False,
            ),
            keepalive,
            look_up=lambda: self.find(channel, marker, thread_ts=thread_ts, keepalive=keepalive),
        )
        return self._posted(channel, response["ts"])

    def update(
        self,
        channel: str,
        ts: str,
        message: Message,
        marker: PartMarker,
        *,
        keepalive: Keepalive = _no_keepalive,
    ) -> None:
        """Replace a posted part (``chat.update`` is idempotent: retried without a look-up)."""
        self._retrying(
            f"the edit of part {marker.part} of {marker.parts}",
            channel,
            lambda: self.client.chat_update(
                channel=channel,
                ts=ts,
                text=message.text,
                blocks=message.blocks_arg,
                metadata=marker.metadata(),
            ),
            keepalive,
        )

    def delete(self, channel: str, ts: str, *, keepalive: Keepalive = _no_keepalive) -> None:
        """Remove a posted part; one already gone counts as removed."""

        def call() -> None:
            try:
                self.client.chat_delete(channel=channel, ts=ts)
            except SlackApiError as exc:
                if exc.response.get("error") != "message_not_found":
                    raise

        self._retrying(f"the removal of message {ts}", channel, call, keepalive)

    def _retrying(
        self,
        what: str,
        channel: str,
        call: Callable[[], Any],
        keepalive: Keepalive,
        *,
        look_up: Callable[[], str | None] | None = None,
    ) -> Any:
        """Run a Web API call with the rules of the module docstring. ``look_up`` finds what
        a failed attempt may have done (the ``ts`` it posted) before the call is made again.

        The lease is renewed before every attempt after the first: the caller's own fenced
        write (the part begun, the edit recorded) renewed it just before the first, and a
        wait renews it before it sleeps."""
        unsure = False  # a failed attempt may have done it: look before calling again
        problem = ""
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                keepalive(0)
            try:
                if unsure and look_up is not None:
                    found = look_up()
                    if found is not None:
                        return {"ts": found}
                unsure = False
                return self._call(call, keepalive)
            except SlackApiError as exc:
                error = exc.response.get("error", "")
                if error in CHANNEL_UNAVAILABLE:
                    raise ChannelUnavailable(channel, error) from None
                if exc.response.status_code < 500 and error not in TRANSIENT_ERRORS:
                    raise DigestSendError(
                        f"Slack refused {what} for channel {channel}: {error} "
                        f"(HTTP {exc.response.status_code})"
                    ) from None
                problem = f"HTTP {exc.response.status_code} {error}"
            except _NETWORK_ERRORS as exc:
                problem = f"{type(exc).__name__}: {exc}"
            unsure = True
            log.warning(
                "%s to %s failed (attempt %s/%s): %s",
                what,
                channel,
                attempt,
                self._attempts,
                problem,
            )
            if attempt < self._attempts:
                self._wait(min(self._max_backoff, self._backoff * 2 ** (attempt - 1)), keepalive)
        raise SendGaveUp(
            f"{what} for channel {channel} failed {self._attempts} times (last: {problem}); "
            "it will be retried"
        )

    def find(
        self,
        channel: str,
        marker: PartMarker,
        *,
        thread_ts: str | None = None,
        keepalive: Keepalive = _no_keepalive,
    ) -> str | None:
        """The ``ts`` of the part if Slack has it: the channel's newest messages for a first
        part, the thread of ``thread_ts`` for the others. Needs the channels:history scope
        (groups:history for private channels); without it, says so and answers None."""
        if thread_ts is None:
            call = lambda: self.client.conversations_history(  # noqa: E731
                channel=channel, limit=self._lookup_window, include_all_metadata=True
            )
        else:
            call = lambda: self.client.conversations_replies(  # noqa: E731
                channel=channel,
                ts=thread_ts,
                limit=self._lookup_window,
                include_all_metadata=True,
            )
        try:
            response = self._call(call, keepalive)
        except SlackApiError as exc:
            if exc.response.get("error") not in ("missing_scope", "thread_not_found"):
                raise
            log.error(
                "cannot check whether part %s reached %s (%s): posting it again may duplicate it",
                marker.part,
                channel,
                exc.response.get("error"),
            )
            return None
        for found in response.get("messages", []):
            if marker.matches(found):
                return str(found["ts"])
        return None

    # --- helpers ------------------------------------------------------------------------------

    def _call(self, call: Callable[[], Any], keepalive: Keepalive) -> Any:
        """Run ``call``, waiting out every 429 as Slack asks (within the budget)."""
        for _ in range(self._max_rate_limited + 1):
            try:
                return call()
            except SlackApiError as exc:
                if exc.response.status_code != 429 and exc.response.get("error") != "ratelimited":
                    raise
                self._wait(_retry_after(exc.response.headers), keepalive)
        raise SendGaveUp(f"still rate limited after {self._max_rate_limited} waits")

    def _wait(self, seconds: float, keepalive: Keepalive) -> None:
        keepalive(seconds)
        self._sleep(seconds)

    def _pace(self, channel: str, keepalive: Keepalive) -> None:
        with self._lock:
            last = self._last_post.get(channel)
        if last is not None:
            wait = last + self._interval - self._monotonic()
            if wait > 0:
                self._wait(wait, keepalive)

    def _posted(self, channel: str, ts: str) -> str:
        with self._lock:
            self._last_post[channel] = self._monotonic()
        return ts


def _retry_after(headers: Mapping[str, Any]) -> float:
    """Seconds Slack asked to wait (``Retry-After``), 1 if it did not say."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                break
    return 1.0
