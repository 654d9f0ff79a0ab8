"""``churnbot serve``: the web process (gunicorn, HTTP) or Socket Mode.

Over HTTP, gunicorn forks its workers and each worker builds its own app after the fork
(:meth:`_Gunicorn.load`): its own Redis connection pool, its own background threads, nothing
created in the parent and shared across processes. The parent only checks what can be checked
before forking (the config folder, the signing secret, that Redis answers), so a mistake is a
one-line message at start-up, not a worker that fails to boot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from bot.app import build_app, require_bot_token, require_signing_secret
from bot.cli.common import console, settings_from_environment
from bot.deps import Deps, build_deps
from bot.feedback.refresh import running_drain
from bot.loopback import LoopbackServer
from bot.settings import Settings
from bot.state import connect
from bot.web import WsgiApp, build_wsgi
from models.errors import ConfigError

#: Two worker processes by default: Python runs one thread at a time in a process, so a second
#: process puts a second core to work on a burst of requests and keeps answering while the
#: other is busy; more with --workers.
DEFAULT_WORKERS = 2


class _Gunicorn(BaseApplication):
    """gunicorn with our WSGI factory, configured in code rather than a config file.

    gunicorn calls :meth:`load` in each worker after the fork (``preload_app`` stays off).
    """

    def __init__(self, factory: Callable[[], WsgiApp], options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> WsgiApp:
        return self.factory()


def web_app(settings: Settings) -> WsgiApp:
    """One worker's WSGI callable, with its own Redis connection and background threads."""
    deps = build_deps(settings)
    return build_wsgi(build_app(deps), deps)


def worker_count(settings: Settings, workers: int | None) -> int:
    """--workers, else the default; one only with the embedded store, which lives inside one
    process (several workers would each have their own, and disagree)."""
    if settings.env.redis_url is not None:
        return workers or DEFAULT_WORKERS
    if workers not in (None, 1):
        raise ConfigError(
            f"environment: --workers {workers} needs REDIS_URL: without it each worker would "
            "keep its own embedded store; set REDIS_URL or serve with --workers 1"
        )
    return 1


@click.command("serve")
@click.option("--socket-mode", is_flag=True, help="Connect out to Slack (needs SLACK_APP_TOKEN).")
@click.option(
    "--host",
    default="0.0.0.0",
    show_default=True,
    help="Address to listen on (127.0.0.1: this machine only, e.g. behind a local proxy).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help=f"gunicorn worker processes [default: {DEFAULT_WORKERS}; 1 without REDIS_URL]",
)
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
def command(socket_mode: bool, host: str, workers: int | None, threads: int) -> None:
    """Serve Slack requests at POST /slack/events, with GET /healthz (liveness), GET /readyz
    (readiness: Redis answers) and GET /metrics.

    Listens on --host and $PORT. With --socket-mode, no public URL is needed: the app connects
    to Slack (SLACK_APP_TOKEN; no SLACK_SIGNING_SECRET), and only the probes and metrics are
    served on $PORT.
    """
    settings = settings_from_environment()
    if socket_mode:
        serve_socket_mode(build_deps(settings), host=host, port=settings.env.port)
        return
    require_signing_secret(settings.env)
    require_bot_token(settings.env)
    count = worker_count(settings, workers)
    if settings.env.redis_url is not None:
        connect(settings.env.redis_url).close()  # fail here if Redis does not answer
    options = {
        "bind": f"{host}:{settings.env.port}",
        "workers": count,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 30,
        "accesslog": "-",
        "logger_class": "bot.logs.GunicornLogger",  # JSON lines off a terminal, like our logs
        # gunicorn's control socket has one path per user ($HOME/.gunicorn/gunicorn.ctl), so
        # two web processes on one machine would take it from each other; churnbot needs none.
        "control_socket_disable": True,
    }
    _Gunicorn(lambda: web_app(settings), options).run()


def serve_socket_mode(deps: Deps, *, host: str, port: int) -> None:
    """Slack's requests over the socket; the probes and metrics on ``host:port`` as in HTTP
    mode, so a platform's health checks and scrapes work the same in both."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    token = deps.settings.env.slack_app_token
    if token is None:
        raise ConfigError(
            "environment: SLACK_APP_TOKEN is required for --socket-mode (an app-level token, "
            "xapp-..., with the connections:write scope, under Basic Information)"
        )
    app = build_app(deps, socket_mode=True)
    # Often run with no worker beside it: messages are redrawn after clicks here too.
    with (
        LoopbackServer(build_wsgi(None, deps), host=host, port=port) as probes,
        running_drain(deps),
    ):
        console.print(f"Connecting to Slack in Socket Mode; probes and metrics at {probes.url}")
        SocketModeHandler(app, token.get_secret_value()).start()


def register(group: click.Group) -> None:
    group.add_command(command)
