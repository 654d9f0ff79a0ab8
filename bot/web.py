"""The web process: Slack requests, probes and metrics behind one WSGI callable.

``POST /slack/events`` goes through the web door (``bot.door``: size, signature, replay,
shape) to Bolt. ``GET /healthz`` is liveness (the process answers; no Redis, so a Redis outage
restarts nothing); ``GET /readyz`` is readiness (Redis answers in time); ``GET /metrics``
always answers, with ``churnbot_redis_up``. Served by gunicorn in production (``churnbot
serve``); tests run the same callable on a loopback server.

The probes and metrics need neither Bolt nor the listeners: a gunicorn worker answers them
while its Bolt app is still being built (``app`` given as a :class:`~concurrent.futures.Future`),
and a Slack request that comes first waits for the app, then is served as any other.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from functools import cache, partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from bot.metrics import Metrics
from bot.state.deadline import deadline
from bot.state.store import ping
from models.errors import ChurnbotError

if TYPE_CHECKING:  # the deps are built by whoever serves (bot.cli.serve), not on import
    from slack_bolt import App

    from bot.deps import Deps
    from bot.door import SlackDoor

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: A readiness check or a scrape waits at most this for Redis.
PROBE_REDIS_BUDGET_S = 0.5


class _ScrapeTime(Collector):
    """The app's collectors that compute at scrape time (from Redis), without its counters,
    histograms and gauges, which the multiprocess files hold for every worker."""

    def __init__(self, metrics: Metrics) -> None:
        self._registry = metrics.registry
        self._shared = {
            family.name
            for instrument in vars(metrics).values()
            if isinstance(instrument, MetricWrapperBase)
            for family in instrument.describe()
        }

    def collect(self) -> Iterable[Any]:
        return (f for f in self._registry.collect() if f.name not in self._shared)


def scrape_registry(metrics: Metrics, metrics_dir: str | None) -> CollectorRegistry:
    """What ``/metrics`` shows: this process's registry, or with ``metrics_dir`` (several
    gunicorn workers, prometheus_client's multiprocess mode) every worker's values added up,
    whichever worker answers the scrape."""
    if metrics_dir is None:
        return metrics.registry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics_dir)
    registry.register(_ScrapeTime(metrics))
    return registry


def _answer(start_response: StartResponse, status: int, body: dict[str, Any]) -> list[bytes]:
    """A JSON answer of the probes and of a path that has nothing."""
    payload = json.dumps(body).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("content-type", "application/json"), ("content-length", str(len(payload)))],
    )
    return [payload]


def _door(app: App | Future[App], deps: Deps, secret: bytes) -> SlackDoor:
    """The door to ``app``, made with the first Slack request (Bolt comes with it)."""
    from bot.door import SlackDoor

    return SlackDoor(app.result() if isinstance(app, Future) else app, deps, secret)


def build_wsgi(
    app: App | Future[App] | None, deps: Deps, *, metrics_dir: str | None = None
) -> WsgiApp:
    """The web process's WSGI callable; ``app`` None serves only the probes and metrics
    (Socket Mode, where Slack's requests come over the socket instead), a Future one still
    being built (the first Slack request waits for it). ``metrics_dir``: see
    :func:`scrape_registry`."""
    metrics = deps.metrics
    scrape = make_wsgi_app(scrape_registry(metrics, metrics_dir))
    secret = deps.settings.env.slack_signing_secret
    door: Callable[[], SlackDoor] | None = None
    if app is not None and secret is not None:
        door = cache(partial(_door, app, deps, secret.get_secret_value().encode()))

    def readyz(start_response: StartResponse) -> Iterable[bytes]:
        with deadline(PROBE_REDIS_BUDGET_S):
            redis_ok = ping(deps.redis)
        status = 200 if redis_ok else 503
        return _answer(
            start_response,
            status,
            {"status": "ready" if redis_ok else "not ready", "redis": redis_ok},
        )

    def metrics_page(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # One budget for the whole scrape: once a hung Redis has used it, collectors that read
        # Redis fail at once (and report themselves down) instead of waiting out their own.
        with deadline(PROBE_REDIS_BUDGET_S):
            try:
                metrics.killswitch.set(1 if deps.switch.state().on else 0)
                metrics.redis_up.set(1)
            except ChurnbotError as exc:
                metrics.redis_up.set(0)
                log.warning("metrics: Redis did not answer in time: %s", exc)
            return scrape(environ, start_response)

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if method == "GET" and path == "/healthz":
            return _answer(start_response, 200, {"status": "ok"})
        if method == "GET" and path == "/readyz":
            return readyz(start_response)
        if method == "GET" and path == "/metrics":
            return metrics_page(environ, start_response)
        if method == "POST" and path == "/slack/events" and door is not None:
            arrived = time.perf_counter()
            return door().serve(environ, start_response, arrived=arrived)
        return _answer(start_response, 404, {"error": f"nothing at {method} {path[:100]}"})

    return application
