"""The web process: Slack requests, liveness and metrics behind one WSGI callable.

`POST /slack/events` goes to Bolt (signature checked there); `GET /healthz` answers liveness
plus Redis reachability; `GET /metrics` serves Prometheus text. Served by gunicorn in
production (`churnbot serve`); tests run the same callable on a loopback server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import make_wsgi_app
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.deps import Deps
from bot.state import ping

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def build_wsgi(app: App, deps: Deps) -> WsgiApp:
    slack = SlackRequestHandler(app, path="/slack/events")
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
        return slack(environ, start_response)

    return application
