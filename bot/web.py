"""The web process: Slack requests, liveness and metrics behind one WSGI callable.

`POST /slack/events` goes to Bolt (signature checked there); `GET /healthz` answers liveness
plus Redis reachability; `GET /metrics` serves Prometheus text. Served by gunicorn in
production (`churnbot serve`); tests run the same callable on a loopback server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import make_wsgi_app
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest

from bot.deps import Deps
from bot.metrics import Metrics
from bot.middleware import handler_label
from bot.state import ping

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class MeasuredHandler(SlackRequestHandler):
    """Bolt's WSGI adapter, timing each dispatch by handler for /metrics.

    Timing lives here, around ``App.dispatch``, because a sync Bolt middleware's ``next()``
    only marks the request to continue; it does not run the listener.
    """

    def __init__(self, app: App, metrics: Metrics) -> None:
        super().__init__(app, path="/slack/events")
        self.metrics = metrics

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        started = time.perf_counter()
        bolt_request = BoltRequest(
            body=request.get_body(), query=request.query_string, headers=request.get_headers()
        )
        label = handler_label(bolt_request.body) if bolt_request.body else "empty"
        try:
            response = self.app.dispatch(bolt_request)
        except Exception:
            self.metrics.errors.labels(label).inc()
            raise
        finally:
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)
        outcome = "ok" if response.status < 400 else f"http_{response.status}"
        self.metrics.requests.labels(label, outcome).inc()
        return response


def build_wsgi(app: App, deps: Deps) -> WsgiApp:
    slack = MeasuredHandler(app, deps.metrics)
    metrics = make_wsgi_app(deps.metrics.registry)

    def healthz(start_response: StartResponse) -> Iterable[bytes]:
        redis_ok = ping(deps.redis)
        body = json.dumps({"status": "ok" if redis_ok else "degraded", "redis": redis_ok})
        status = "200 OK" if redis_ok else "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json")])
        return [body.encode()]

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method == "GET":
            return healthz(start_response)
        if path == "/metrics" and method == "GET":
            deps.metrics.killswitch.set(1 if deps.switch.state().on else 0)
            return metrics(environ, start_response)
        try:
            return slack(environ, start_response)
        except ValueError:  # Bolt could not parse the body (e.g. `payload=` that is not JSON)
            deps.metrics.requests.labels("unparsable", "error").inc()
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"Malformed Slack request body"]

    return application
