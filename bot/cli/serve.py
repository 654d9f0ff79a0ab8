"""``churnbot serve``: the web process (gunicorn, HTTP) or Socket Mode."""

from __future__ import annotations

from typing import Any

import click
from gunicorn.app.base import BaseApplication

from bot.app import build_app
from bot.cli.common import console, settings_from_environment
from bot.deps import build_deps
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
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
def command(socket_mode: bool, workers: int, threads: int) -> None:
    """Serve Slack requests at POST /slack/events, with GET /healthz and GET /metrics.

    Listens on $PORT. With --socket-mode, no public URL is needed: the app connects to Slack.
    """
    settings = settings_from_environment()
    deps = build_deps(settings)
    app = build_app(deps)
    if socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        if settings.env.slack_app_token is None:
            raise ConfigError("environment: SLACK_APP_TOKEN is required for --socket-mode")
        console.print("Connecting to Slack in Socket Mode")
        SocketModeHandler(app, settings.env.slack_app_token.get_secret_value()).start()
        return
    options = {
        "bind": f"0.0.0.0:{settings.env.port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 30,
        "accesslog": "-",
        "logger_class": "bot.logs.GunicornLogger",  # JSON lines off a terminal, like our logs
    }
    _Gunicorn(build_wsgi(app, deps), options).run()


def register(group: click.Group) -> None:
    group.add_command(command)
