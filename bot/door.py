"""The web door: ``POST /slack/events`` passes it before Bolt sees it, in this order: the
body's size, the signature (timestamp within Slack's 5 minutes, HMAC over the raw bytes), the
body's encoding and shape (``bot.middleware.check_payload``), the signature not seen before
(replay; for a feedback click, in the click's own write: ``bot.state.replay``). Each refusal
is one log line and a 4xx, never a traceback; nothing from an unverified request reaches a
metrics label. Bolt does not verify the signature again (``bot.app``): a second HMAC over
the body was about 4% of a feedback click's instructions.

The Redis calls of a Slack request share one budget (``bot.state.deadline``) well inside
Slack's 3 s, so a hung Redis still leaves time for churnbot's own answer.

A module of its own, apart from the probes and metrics of ``bot.web``: it needs Bolt (and the
payload models), which a web worker loads in the background after it can answer its probes.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse

from bot.middleware import FOLDED_REPLAY, check_payload
from bot.state.deadline import deadline
from bot.state.replay import SeenSignature, deferred, first_use

if TYPE_CHECKING:  # the deps are built by whoever serves (bot.cli.serve), not on import
    from bot.deps import Deps
    from bot.web import StartResponse

log = logging.getLogger(__name__)

#: Slack's requests are small (a large modal submission is tens of KB).
MAX_BODY_BYTES = 1 << 20
#: Slack's replay window: a request whose timestamp is further from now is refused.
SIGNATURE_WINDOW_S = 5 * 60
#: A timestamp may be up to the window ahead of us too, so a signature stays usable for up to
#: twice the window from now: remember it that long.
SEEN_SIGNATURE_TTL_S = 2 * SIGNATURE_WINDOW_S
#: All Redis calls of one Slack request, replay check included; Slack waits 3 s in all.
REQUEST_REDIS_BUDGET_S = 1.5
#: How Slack posts a slash command or an interaction.
FORM = "application/x-www-form-urlencoded"
#: The replay check's part of it: a Redis that does not answer that leaves the listener time
#: for its own honest answer (a feedback click waits for its write in another thread).
REPLAY_REDIS_BUDGET_S = 0.5


class Refused(Exception):
    """A request stopped at the door: ``status``, a metrics label and a reason for the log."""

    def __init__(self, status: int, label: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.label = label


@dataclass
class SlackDoor:
    """``POST /slack/events``: verify, refuse replays, check the shape, then hand to Bolt."""

    app: App
    deps: Deps
    secret: bytes
    now: Callable[[], float] = time.time

    def __call__(self, environ: dict[str, Any]) -> tuple[BoltResponse, str]:
        try:
            raw = self._body(environ)
            signature = self._verify(environ, raw)
            with deadline(REQUEST_REDIS_BUDGET_S):
                request, label = self._parse(environ, raw)
                guard = SeenSignature(signature, f"{self.deps.prefix}:", SEEN_SIGNATURE_TTL_S)
                if label not in FOLDED_REPLAY:
                    self._refuse_replay(guard)
                    return self.app.dispatch(request), label
                with deferred(guard):  # its listener claims the signature with its write
                    response = self.app.dispatch(request)
                self._refuse_replay(guard)  # settled by the listener, or here if it was not
                return response, label
        except Refused as refused:
            level = logging.INFO if refused.label == "unauthenticated" else logging.WARNING
            log.log(level, "refused a Slack request (%d): %s", refused.status, refused)
            return BoltResponse(status=refused.status, body=f"{refused}\n"), refused.label

    def _body(self, environ: dict[str, Any]) -> bytes:
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isascii() or not length.isdigit():
            raise Refused(400, "unauthenticated", f"Content-Length {length[:20]!r} is not a size")
        if int(length) > MAX_BODY_BYTES:
            raise Refused(413, "unauthenticated", f"body of {length} bytes is over 1 MiB")
        return bytes(environ["wsgi.input"].read(int(length)))

    def _verify(self, environ: dict[str, Any], raw: bytes) -> str:
        """The request's signature, if it is Slack's own for this body and about now."""
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if not timestamp:
            raise Refused(401, "unauthenticated", "no X-Slack-Request-Timestamp header")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise Refused(
                401,
                "unauthenticated",
                f"X-Slack-Request-Timestamp {timestamp[:20]!r} is not Unix seconds",
            )
        if abs(self.now() - int(timestamp)) > SIGNATURE_WINDOW_S:
            raise Refused(401, "unauthenticated", "X-Slack-Request-Timestamp is over 5 minutes off")
        expected = hmac.new(self.secret, b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256)
        if not hmac.compare_digest("v0=" + expected.hexdigest(), signature):
            raise Refused(401, "unauthenticated", "X-Slack-Signature missing or wrong")
        return signature

    def _refuse_replay(self, guard: SeenSignature) -> None:
        """Remember every signature for as long as it could pass; refuse one seen before
        (``bot.state.replay``: checked here, or by the listener's write for the requests of
        ``bot.middleware.FOLDED_REPLAY``).

        Slack's own retries still pass: it retries an event up to 5 minutes after the first
        try, which a receiver checking the 5-minute window (as Bolt does) only accepts with a
        new timestamp, so a retry carries a new signature; the event id de-duplication
        (``bot.middleware``) drops it.
        """
        with deadline(REPLAY_REDIS_BUDGET_S):
            first = first_use(guard, self.deps.redis)
        if not first:
            raise Refused(401, "replayed", "this signature was already used (a replayed request)")

    def _parse(self, environ: dict[str, Any], raw: bytes) -> tuple[BoltRequest, str]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = f"{exc.reason} at byte {exc.start}"
            raise Refused(400, "malformed", f"body is not UTF-8 ({where})") from None
        headers: dict[str, str | Sequence[str]] = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        try:
            request = bolt_request(text, environ.get("QUERY_STRING"), headers)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
            # Bolt parses the form or JSON and reads ids out of it; a body of the wrong shape
            # fails there, before any listener.
            what = type(exc).__name__
            raise Refused(400, "malformed", f"body is not a Slack payload ({what})") from None
        checked = check_payload(request.body)
        if checked.problem is not None:
            label = "malformed" if checked.status == 400 else checked.label
            raise Refused(checked.status, label, checked.problem)
        return request, checked.label

    def serve(
        self, environ: dict[str, Any], start_response: StartResponse, *, arrived: float
    ) -> Iterable[bytes]:
        """The WSGI answer to ``POST /slack/events``, counted by its label and timed from when
        it ``arrived`` (``time.perf_counter``; a wait for the app being built counts too)."""
        response, label = self(environ)
        metrics = self.deps.metrics
        metrics.latency.labels(label).observe(time.perf_counter() - arrived)
        outcome = "ok" if response.status < 400 else f"http_{response.status}"
        metrics.requests.labels(label, outcome).inc()
        reply = WsgiHttpResponse(response.status, response.headers, response.body)
        start_response(reply.status, reply.get_headers())
        return reply.get_body()


def form_payload(text: str) -> dict[str, Any] | None:
    """The JSON of an interaction's body, ``payload=`` and the percent-encoded JSON (the form
    Slack posts every click in), decoded to what Bolt makes of it (``urllib.parse.parse_qsl``,
    then ``json.loads``), but with the escapes decoded in C: urllib decodes each ``%XX`` in
    Python, 0.75 ms for a digest click (its body carries the whole message: 15 KB, 2,700
    escapes) against 0.15 ms. None for any other body (several fields, text that is not ASCII,
    an escape that is not one), which Bolt parses itself.

    Each ``%`` becomes ``\\x`` for ``codecs.escape_decode``, which reads nothing else once every
    backslash of the body is doubled; ``+`` is a space, as for urllib, and bytes that are not
    UTF-8 are replaced as urllib replaces them."""
    if not text.startswith("payload=") or "&" in text or not text.isascii():
        return None
    # As bytes: bytes.replace expands a digest click's 2,700 escapes about twice as fast as str
    escaped = text[8:].encode().replace(b"+", b" ").replace(b"\\", b"\\\\").replace(b"%", b"\\x")
    try:
        decoded = codecs.escape_decode(escaped)[0]  # as pickle reads protocol 0 strings
    except ValueError:
        return None
    payload = json.loads(decoded.decode("utf-8", "replace"))
    return payload if isinstance(payload, dict) else None


def bolt_request(
    text: str, query: str | None, headers: dict[str, str | Sequence[str]]
) -> BoltRequest:
    """``BoltRequest(body=text, ...)``, with a form's payload decoded by :func:`form_payload`.

    Bolt takes a parsed body only from Socket Mode; the request is built so, then given what
    the HTTP one holds (the raw body, the mode), so nothing after it can tell them apart."""
    parsed = None
    if str(headers.get("content-type", "")).split(";")[0] == FORM:  # as Bolt reads it
        parsed = form_payload(text)
    if parsed is None:
        return BoltRequest(body=text, query=query, headers=headers)
    request = BoltRequest(body=parsed, query=query, headers=headers, mode="socket_mode")
    request.raw_body, request.mode = text, "http"
    return request
