"""Run the web process's WSGI callable on a threaded stdlib server, in a thread.

For tests, benchmarks and the demo: the same callable gunicorn serves in production, bound by
default to 127.0.0.1 and a free port. Socket Mode serves its probes and metrics with it too
(on ``--host`` and ``$PORT``): a few requests a minute need no gunicorn.
"""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.web import WsgiApp


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256  # the stdlib's 5 resets connections under a burst


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Access logs would drown test output; gunicorn keeps them in production."""


class LoopbackServer:
    def __init__(self, application: WsgiApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = make_server(
            host,
            port,
            application,
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        # An AF_INET server: the address is (host, port); bytes only appear for AF_UNIX.
        host, port = cast("tuple[str, int]", self._server.server_address[:2])
        return f"http://{host}:{port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
