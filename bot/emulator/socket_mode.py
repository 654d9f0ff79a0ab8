"""Slack's Socket Mode, emulated: a real WebSocket server the real Socket Mode client connects to.

Why a server and not a fake client: ``churnbot serve --socket-mode`` runs slack_sdk's own
client (its handshake over a plain socket, its frames, its pings) and Bolt's handler unchanged,
so a test proves what Slack would see. As Slack documents it: ``apps.connections.open`` (on the
Web API emulator, with the app-level token) hands out a ``ws://`` URL with a one-time ticket;
on connect the server says ``hello``; a test pushes envelopes (``slash_commands``,
``interactive``, ``events_api``) and waits for the client's ack of each, ``{"envelope_id",
"payload"?}``, which is recorded with its payload (a slash command's answer, for instance).

``websockets`` is a dev dependency: the Web API emulator imports this module only when an app
opens a connection (or a test asks for it), so ``churnbot demo`` runs without it.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

logger = logging.getLogger(__name__)

#: The envelope types Slack pushes over the socket.
ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")
LINK_PATH = "/link/"


@dataclass(frozen=True)
class Ack:
    """The client's answer to one envelope: ``payload`` is what it asked Slack to show (a slash
    command's reply, a view submission's errors), None when it only acknowledged."""

    envelope_id: str
    payload: Mapping[str, Any] | None


class SocketModeServer:
    """A Socket Mode endpoint on 127.0.0.1: tickets from :meth:`issue_url`, a ``hello`` on
    every connection, envelopes from :meth:`push`, their acks from :meth:`wait_for_ack`.

    The emulator owns one (``SlackEmulator.socket_mode``); a test pushes through it and waits
    with :meth:`wait_for_connection` and :meth:`wait_for_ack`, both bounded.
    """

    def __init__(self, *, app_id: str = "A0CHURNBOT") -> None:
        self.app_id = app_id
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tickets: set[str] = set()
        self._open: list[ServerConnection] = []
        self._handlers: list[threading.Thread] = []
        self._acks: dict[str, Ack] = {}
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free loopback port and accept connections in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("SocketModeServer is already started")
        # Slack pings its clients too; slack_sdk answers pongs, so keep websockets' keepalive.
        self._server = serve(
            self._session, "127.0.0.1", 0, process_request=self._check_ticket, logger=logger
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="slack-emulator-socket-mode", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection, stop accepting, and wait for the connection threads (which
        websockets does not make daemons), so none outlives the test; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join()
        with self._lock:
            connections, handlers = list(self._open), list(self._handlers)
        for connection in connections:
            connection.close()
        for handler in handlers:
            handler.join(timeout=5)
        self._server = self._thread = None

    @property
    def url(self) -> str:
        """Root URL of the running server, e.g. ``ws://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("SocketModeServer is not started: call start()")
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    def issue_url(self) -> str:
        """A connection URL with a fresh one-time ticket, as ``apps.connections.open`` gives."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        return f"{self.url}{LINK_PATH}?ticket={ticket}&app_id={self.app_id}"

    # -- what a test does ----------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """How many connections are open now."""
        with self._lock:
            return len(self._open)

    def push(self, envelope_type: str, payload: Any) -> str:
        """Send an envelope to the newest open connection, as Slack sends one to any of them;
        returns its ``envelope_id``. ``payload`` goes as given, so a test can send a broken one.
        """
        if envelope_type not in ENVELOPE_TYPES:
            raise ValueError(
                f"The 'envelope_type' parameter of push must be one of {ENVELOPE_TYPES}. "
                f"Got {envelope_type!r} instead."
            )
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": True,
        }
        with self._lock:
            if not self._open:
                raise RuntimeError("no Socket Mode client is connected to push an envelope to")
            connection = self._open[-1]
        connection.send(json.dumps(envelope))
        return envelope_id

    def wait_for_connection(self, timeout: float = 5.0) -> None:
        """Block until a client is connected (and has been sent its ``hello``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._open), timeout):
                raise TimeoutError(f"no Socket Mode client connected within {timeout}s")

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """Block until the client acknowledged ``envelope_id``; TimeoutError after ``timeout`` s
        naming the envelopes that were acknowledged."""
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self._acks, timeout):
                raise TimeoutError(
                    f"no ack of envelope {envelope_id!r} within {timeout}s; "
                    f"acked: {sorted(self._acks)}"
                )
            return self._acks[envelope_id]

    # -- serving -------------------------------------------------------------------------------

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        """Slack refuses a URL whose ticket it did not issue, or issued and saw used."""
        split = urlsplit(request.path)
        ticket = (parse_qs(split.query).get("ticket") or [""])[0]
        with self._lock:
            known = split.path == LINK_PATH and ticket in self._tickets
            self._tickets.discard(ticket)
        if known:
            return None
        return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid ticket\n")

    def _session(self, connection: ServerConnection) -> None:
        """One client's connection: ``hello`` first (nothing is pushed to it before, as Slack
        sends nothing before it), then every message it sends until it goes."""
        with self._changed:
            self._handlers.append(threading.current_thread())
        try:
            # One critical section: a client that has read its hello can be pushed to at once
            # (registering after the send let a test's push race the handler), and no push
            # reaches it before its hello. The hello is small, so the send does not block long.
            with self._changed:
                connection.send(json.dumps(self._hello(len(self._open) + 1)))
                self._open.append(connection)
                self._changed.notify_all()
            for message in connection:
                self._receive(message)
        except ConnectionClosed:
            pass  # slack_sdk's client drops the socket without a close frame: not an error here
        finally:
            with self._lock:
                if connection in self._open:
                    self._open.remove(connection)

    def _hello(self, num_connections: int) -> dict[str, Any]:
        """Slack's first message on a connection; ``num_connections`` counts this one."""
        return {
            "type": "hello",
            "num_connections": num_connections,
            "debug_info": {"host": "churnbot-emulator", "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }

    def _receive(self, message: str | bytes) -> None:
        """Record an ack; anything else a client sends is logged, as Slack ignores it."""
        try:
            body = json.loads(message)
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("envelope_id"), str):
            logger.warning("Socket Mode emulator ignored a message that is not an ack: %r", message)
            return
        payload = body.get("payload")
        ack = Ack(body["envelope_id"], payload if isinstance(payload, dict) else None)
        with self._changed:
            self._acks[ack.envelope_id] = ack
            self._changed.notify_all()
