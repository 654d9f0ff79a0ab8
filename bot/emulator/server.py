"""A loopback Slack Web API emulator: a real HTTP server the real WebClient talks to.

Why a server and not a mock: the app's WebClient, its retry handlers and Bolt's ``auth.test``
all run unchanged against ``base_url``, exactly as production runs against ``SLACK_API_URL``,
so tests exercise encoding, auth headers, HTTP status codes and Retry-After handling for real.
Every call is recorded; faults (429, 5xx, slow answers) are injected on demand. Files take the
external upload flow: ``files.getUploadURLExternal`` hands out an upload URL on this same
server, the bytes are POSTed there (recorded as ``upload_url`` calls), and
``files.completeUploadExternal`` shares them. Socket Mode: ``apps.connections.open``, called
with the app-level token, hands out a URL on :attr:`SlackEmulator.socket_mode`, a WebSocket
server started on that first call (:mod:`bot.emulator.socket_mode`).
"""

from __future__ import annotations

import copy
import json
import logging
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from bot.emulator.blockkit import message_rejection
from bot.emulator.workspace import Reply, SlackUser, StoredFile, Workspace, decode_json_fields

if TYPE_CHECKING:
    from bot.emulator.socket_mode import SocketModeServer

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = "xoxb-churnbot-emulator"
DEFAULT_APP_TOKEN = "xapp-1-A0CHURNBOT-emulator"
CONNECTIONS_OPEN_METHOD = "apps.connections.open"
RESPONSE_URL_METHOD = "response_url"
UPLOAD_URL_METHOD = "upload_url"
UPLOAD_PATH = "/upload/v1/"
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60.0
RECORDED_HEADERS = ("content-type", "authorization", "user-agent")
_ERROR_FOR_STATUS = {
    429: "ratelimited",
    500: "internal_error",
    503: "service_unavailable",
    504: "request_timeout",
}


@dataclass(frozen=True)
class Call:
    """One request the emulator answered, as a test wants to assert on it.

    ``method`` is the Web API method (``"chat.postMessage"``) or ``"response_url"``, in which
    case ``response_url_name`` says which one. ``headers`` keeps the lower-cased headers that
    matter (content-type, authorization, user-agent). ``body`` holds the parameters with
    JSON-valued fields (blocks, view, metadata) decoded, whichever encoding the client used.
    ``duration`` covers the work and any injected latency, so latency is observable.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    status: int
    response: Mapping[str, Any]
    received_at: float
    duration: float
    response_url_name: str | None = None

    @property
    def ok(self) -> bool:
        """True when Slack would have done what was asked (HTTP 200 and ``ok: true``)."""
        return self.status == 200 and self.response.get("ok") is True


@dataclass
class _Fault:
    status: int | None
    error: str | None
    retry_after: int
    delay: float
    remaining: int = 1

    def reply(self) -> Reply | None:
        """The failure answer, or None for a delay-only fault (the call then proceeds)."""
        if self.status is None and self.error is None:
            return None
        status = self.status
        if status is None:
            status = 429 if self.error == "ratelimited" else 200
        error = self.error or _ERROR_FOR_STATUS.get(status, "fatal_error")
        headers = {"Retry-After": str(self.retry_after)} if status == 429 else {}
        return Reply(status, {"ok": False, "error": error}, headers)


@dataclass
class _RandomFaults:
    probability: float
    fault: _Fault
    rng: random.Random


@dataclass
class _ResponseUrl:
    created_at: float
    uses: int = 0


@dataclass
class _Request:
    """A request read off the socket, its body already parsed (or the parse error's answer)."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any] = field(default_factory=dict)
    token: str | None = None
    problem: Reply | None = None
    response_url_name: str | None = None
    raw: bytes = b""


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the emulator; Slack accepts GET and POST on every method."""

    server: _Server

    def do_POST(self) -> None:
        self.server.emulator._serve(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the call record is the log, and stderr noise hides test failures."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A benchmark fires hundreds of posts at once; the default backlog of 5 refuses connections.
    request_queue_size = 512

    def __init__(self, emulator: SlackEmulator) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.emulator = emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (e.g. timed out on a slow answer) is not an emulator error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SlackEmulator:
    """A local Slack Web API on 127.0.0.1, started in a daemon thread.

    Use as a context manager (or ``start()``/``stop()``) and give the app
    ``WebClient(base_url=emulator.base_url, token=emulator.token)``; in Socket Mode also
    ``emulator.app_token`` (SLACK_APP_TOKEN), and push envelopes through :attr:`socket_mode`.

    ``channels``: None accepts any channel id (created on first use); a mapping id -> name or a
    list of ids makes every other channel ``channel_not_found``. ``non_member_channels`` answer
    ``not_in_channel`` to posts. ``rate_limit_per_channel`` (messages per second) answers 429 to
    posts faster than that. ``clock`` (monotonic seconds) drives rate limits and response_url
    expiry, so tests can move time without sleeping.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        team_id: str = "T0CHURNBOT",
        bot_user_id: str = "U0CHURNBOT",
        bot_id: str = "B0CHURNBOT",
        channels: Mapping[str, str] | Iterable[str] | None = None,
        non_member_channels: Iterable[str] = (),
        users: Iterable[SlackUser] = (),
        latency: float = 0.0,
        rate_limit_per_channel: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_limit_per_channel is not None and rate_limit_per_channel <= 0:
            raise ValueError(
                "The 'rate_limit_per_channel' parameter of SlackEmulator must be a positive "
                f"number of messages per second or None. Got {rate_limit_per_channel!r} instead."
            )
        self.token = token
        self.app_token = app_token
        self.latency = latency
        self._clock = clock
        self._workspace = Workspace(
            team_id=team_id,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            channels=channels,
            non_member_channels=non_member_channels,
            users=users,
            rate_limit_per_channel=rate_limit_per_channel,
            clock=clock,
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._calls: list[Call] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._random_faults: dict[str, _RandomFaults] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket_mode: SocketModeServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free loopback port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("SlackEmulator is already started")
        self._server = _Server(self)
        with self._lock:
            self._workspace.upload_base = self.url + UPLOAD_PATH
        # A short poll interval only bounds how long stop() waits for the loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="slack-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (Socket Mode too) and release the ports; safe to call twice."""
        with self._lock:
            socket_mode, self._socket_mode = self._socket_mode, None
        if socket_mode is not None:
            socket_mode.stop()
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL of the running server, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("SlackEmulator is not started: call start() or use it in a with")
        # An AF_INET server: the address is (host, port); bytes only appear for AF_UNIX.
        host, port = cast("tuple[str, int]", self._server.server_address[:2])
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """What the app's WebClient gets as ``base_url`` (production: SLACK_API_URL)."""
        return f"{self.url}/api/"

    @property
    def socket_mode(self) -> SocketModeServer:
        """The Socket Mode endpoint ``apps.connections.open`` hands out, started on first use
        (so an emulator that never serves Socket Mode needs no ``websockets``)."""
        from bot.emulator.socket_mode import SocketModeServer

        with self._lock:
            if self._socket_mode is None:
                self._socket_mode = SocketModeServer().start()
            return self._socket_mode

    def response_url(self, name: str = "default") -> str:
        """A response_url on this server: JSON POSTs, 5 uses, 30 minutes from first issue."""
        with self._lock:
            self._response_urls.setdefault(name, _ResponseUrl(created_at=self._clock()))
        return f"{self.url}/response_url/{quote(name, safe='')}"

    # -- configuration -------------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str | None = None, *, member: bool = True) -> None:
        """Make a channel known (needed when ``channels`` was given), optionally not joined."""
        with self._lock:
            self._workspace.add_channel(channel_id, name, member=member)

    def add_user(self, user: SlackUser) -> None:
        """Add or replace a users.info row."""
        with self._lock:
            self._workspace.add_user(user)

    def expire_trigger(self, trigger_id: str) -> None:
        """Make views.open answer ``expired_trigger_id`` for this trigger (Slack's 3 s limit)."""
        with self._lock:
            self._workspace.expired_triggers.add(trigger_id)

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: int = 1,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail or answer slowly.

        ``status=429`` (the default when nothing else is given) answers HTTP 429, Retry-After
        and ``ratelimited`` as Slack does; ``status=503`` a server error; ``error="..."`` alone
        an HTTP 200 ``ok: false`` (HTTP 429 for ``ratelimited``). ``delay`` alone answers
        normally after ``delay`` seconds. A failed call changes nothing in the workspace.
        ``method`` may be ``"response_url"``.
        """
        if times < 1:
            raise ValueError(
                f"The 'times' parameter of fail_next must be >= 1. Got {times!r} instead."
            )
        if status is None and error is None and delay == 0:
            status = 429
        fault = _Fault(status, error, retry_after, delay, times)
        with self._lock:
            self._faults.setdefault(method, deque()).append(fault)

    def fail_randomly(
        self,
        method: str,
        probability: float,
        *,
        status: int = 429,
        retry_after: int = 1,
        seed: int = 0,
    ) -> None:
        """Fail a seeded random share of ``method`` calls, e.g. 10% answered 429 in a benchmark.

        Lasts until called again with ``probability=0``. Queued ``fail_next`` faults go first.
        """
        if not 0 <= probability <= 1:
            raise ValueError(
                "The 'probability' parameter of fail_randomly must be between 0 and 1. "
                f"Got {probability!r} instead."
            )
        with self._lock:
            if probability == 0:
                self._random_faults.pop(method, None)
                return
            fault = _Fault(status, None, retry_after, 0.0)
            self._random_faults[method] = _RandomFaults(probability, fault, random.Random(seed))

    # -- what happened -------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Every recorded call, oldest first, optionally only those of ``method``."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str | None = None) -> list[Call]:
        """The chat.postMessage calls Slack would have accepted, optionally for one channel."""
        return [
            c
            for c in self.calls("chat.postMessage")
            if c.ok and (channel is None or c.response.get("channel") == channel)
        ]

    def history(self, channel: str) -> list[dict[str, Any]]:
        """The channel as it stands now (updates and deletions applied), oldest first."""
        with self._lock:
            return self._workspace.history(channel)

    def published_views(self, user_id: str) -> list[dict[str, Any]]:
        """Every Home tab view published for ``user_id``, oldest first (last one is shown)."""
        with self._lock:
            return list(self._workspace.home_views.get(user_id, []))

    def files(self, channel: str | None = None) -> list[StoredFile]:
        """Completed uploads (bytes, alt text, title), oldest first, optionally only those
        shared in ``channel``. Copies: changing them changes nothing in the workspace."""
        with self._lock:
            return [
                copy.deepcopy(f)
                for f in self._workspace.files.values()
                if f.completed and (channel is None or channel in f.channels)
            ]

    def clear(self) -> None:
        """Forget the recorded calls; the workspace (messages, views) and faults stay."""
        with self._lock:
            self._calls.clear()

    def wait_for(
        self,
        what: str | Callable[[Call], bool],
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[Call]:
        """Block until ``count`` recorded calls match ``what`` (a method or a predicate).

        For work the app does in other threads (lazy listeners, the scheduler). Returns the
        matching calls; raises TimeoutError naming what was seen after ``timeout`` seconds.
        """
        matches: Callable[[Call], bool] = (
            (lambda call: call.method == what) if isinstance(what, str) else what
        )
        with self._changed:
            done = self._changed.wait_for(
                lambda: sum(1 for c in self._calls if matches(c)) >= count, timeout
            )
            found = [c for c in self._calls if matches(c)]
            seen = [c.method for c in self._calls]
        if not done:
            raise TimeoutError(
                f"expected {count} call(s) matching {what!r} within {timeout}s, "
                f"found {len(found)}; calls recorded: {seen}"
            )
        return found

    # -- serving -------------------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        """Parse, fault-inject, answer, wait out the latency, record, then write the reply."""
        received_at = time.time()
        started = time.perf_counter()
        request = self._read(handler)
        fault = self._take_fault(request.method)
        delay = self.latency + (fault.delay if fault else 0.0)
        reply = fault.reply() if fault else None
        if reply is None:
            reply = self._answer(request)
        if delay > 0:
            time.sleep(delay)  # simulated network/server latency, not synchronisation
        call = Call(
            method=request.method,
            path=request.path,
            headers={k: v for k, v in request.headers.items() if k in RECORDED_HEADERS},
            body=request.params,
            status=reply.status,
            response=reply.body,
            received_at=received_at,
            duration=time.perf_counter() - started,
            response_url_name=request.response_url_name,
        )
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()
        payload = json.dumps(reply.body).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _read(self, handler: _Handler) -> _Request:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw_body = handler.rfile.read(length) if length else b""
        request = _Request(
            method=split.path,
            path=split.path,
            headers={k.lower(): v for k, v in handler.headers.items()},
        )
        if split.path.startswith("/api/"):
            request.method = split.path.removeprefix("/api/")
            _parse_api_body(request, split.query, raw_body)
        elif split.path.startswith(UPLOAD_PATH):
            request.method = UPLOAD_URL_METHOD
            request.params = {"file_id": split.path.removeprefix(UPLOAD_PATH), "length": length}
            request.raw = raw_body
        elif split.path.startswith("/response_url/"):
            request.method = RESPONSE_URL_METHOD
            request.response_url_name = unquote(split.path.removeprefix("/response_url/"))
            _parse_response_url_body(request, raw_body)
        else:
            request.problem = Reply(404, {"ok": False, "error": "not_found"})
        return request

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            queued = self._faults.get(method)
            if queued:
                fault = queued[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queued.popleft()
                return fault
            randomly = self._random_faults.get(method)
            if randomly and randomly.rng.random() < randomly.probability:
                return randomly.fault
        return None

    def _answer(self, request: _Request) -> Reply:
        if request.problem is not None:
            return request.problem
        try:
            if request.response_url_name is not None:
                return self._answer_response_url(request)
            if request.method == UPLOAD_URL_METHOD:
                with self._lock:
                    return self._workspace.receive_upload(request.params["file_id"], request.raw)
            if request.token is None:
                return Reply(200, {"ok": False, "error": "not_authed"})
            if request.method == CONNECTIONS_OPEN_METHOD:
                return self._open_connection(request.token)
            if request.token != self.token:
                return Reply(200, {"ok": False, "error": "invalid_auth"})
            with self._lock:
                return self._workspace.handle(request.method, request.params)
        except Exception as exc:
            # An emulator bug: answer (and record) a visible 500 rather than dropping the socket.
            logger.exception("Slack emulator failed on %s", request.method)
            return Reply(500, {"ok": False, "error": "internal_error", "emulator_error": repr(exc)})

    def _open_connection(self, token: str) -> Reply:
        """``apps.connections.open``: only the app-level token opens a socket, as on Slack."""
        if not token.startswith("xapp-"):
            return Reply(200, {"ok": False, "error": "not_allowed_token_type"})
        if token != self.app_token:
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        return Reply(200, {"ok": True, "url": self.socket_mode.issue_url()})

    def _answer_response_url(self, request: _Request) -> Reply:
        """Slack's response_url: 5 accepted posts within 30 minutes of being issued."""
        body = request.params
        with self._lock:
            issued = self._response_urls.get(request.response_url_name or "")
            if issued is None:
                return Reply(404, {"ok": False, "error": "no_service"})
            if self._clock() - issued.created_at > RESPONSE_URL_LIFETIME:
                return Reply(404, {"ok": False, "error": "expired_url"})
            if issued.uses >= RESPONSE_URL_MAX_USES:
                return Reply(404, {"ok": False, "error": "used_url"})
            if not body.get("delete_original"):
                rejection = message_rejection(text=body.get("text"), blocks=body.get("blocks"))
                if rejection is not None:
                    return Reply(400, {"ok": False, "error": rejection.error})
            issued.uses += 1
        return Reply(200, {"ok": True})


def _parse_api_body(request: _Request, query: str, raw_body: bytes) -> None:
    """Fill in a Web API call's parameters and bearer token, or the answer to a bad body.

    slack-sdk sends JSON for methods that carry blocks or views and form encoding for the rest;
    Slack reads the token from the Authorization header, or from a form field.
    """
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    content_type = request.headers.get("content-type", "")
    is_json = content_type.startswith("application/json")
    try:
        text = raw_body.decode("utf-8")
        body = (
            json.loads(text) if is_json and text else dict(parse_qsl(text, keep_blank_values=True))
        )
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        request.problem = Reply(
            200, {"ok": False, "error": "invalid_json" if is_json else "invalid_form_data"}
        )
        return
    params.update(body)
    form_token = params.pop("token", None)
    authorization = request.headers.get("authorization", "")
    if authorization.startswith("Bearer "):
        request.token = authorization.removeprefix("Bearer ")
    elif not is_json:
        request.token = form_token
    request.params = decode_json_fields(params)


def _parse_response_url_body(request: _Request, raw_body: bytes) -> None:
    """A response_url takes a JSON object only, like Slack's."""
    try:
        body = json.loads(raw_body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if isinstance(body, dict):
        request.params = body
    else:
        request.problem = Reply(400, {"ok": False, "error": "invalid_payload"})
