"""``churnbot serve``: the web process (gunicorn, HTTP) or Socket Mode."""

from __future__ import annotations

from typing import Any

import click
from gunicorn.app.base import BaseApplication

from bot.app import build_app
from bot.cli.common import console, settings_from_environment
from bot.deps import Deps, build_deps
from bot.loopback import LoopbackServer
from bot.web import WsgiApp, build_wsgi
from models.errors import ConfigError


class _Gunicorn(BaseApplication):
    """gunicorn with our WSGI callable, configured in code rather than a config file."""

    def __init__(self, application: WsgiApp, options: dict[str, Any]) -> None:
        self.application = application
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> WsgiApp:
        return self.application


@click.command("serve")
@click.option("--socket-mode", is_flag=True, help="Connect out to Slack (needs SLACK_APP_TOKEN).")
@click.option(
    "--host",
    default="0.0.0.0",
    show_default=True,
    help="Address to listen on (127.0.0.1: this machine only, e.g. behind a local proxy).",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
def command(socket_mode: bool, host: str, workers: int, threads: int) -> None:
    """Serve Slack requests at POST /slack/events, with GET /healthz (liveness), GET /readyz
    (readiness: Redis answers) and GET /metrics.

    Listens on --host and $PORT. With --socket-mode, no public URL is needed: the app connects
    to Slack (SLACK_APP_TOKEN; no SLACK_SIGNING_SECRET), and only the probes and metrics are
    served on $PORT.
    """
    settings = settings_from_environment()
    deps = build_deps(settings)
    if socket_mode:
        serve_socket_mode(deps, host=host, port=settings.env.port)
        return
    app = build_app(deps)
    options = {
        "bind": f"{host}:{settings.env.port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 30,
        "accesslog": "-",
        "logger_class": "bot.logs.GunicornLogger",  # JSON lines off a terminal, like our logs
    }
    _Gunicorn(build_wsgi(app, deps), options).run()


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
    with LoopbackServer(build_wsgi(None, deps), host=host, port=port) as probes:
        console.print(f"Connecting to Slack in Socket Mode; probes and metrics at {probes.url}")
        SocketModeHandler(app, token.get_secret_value()).start()


def register(group: click.Group) -> None:
    group.add_command(command)
