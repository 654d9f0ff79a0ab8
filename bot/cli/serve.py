"""``churnbot serve``: the web process (gunicorn, HTTP) or Socket Mode.

Over HTTP, gunicorn forks its workers and each worker builds its own app after the fork
(:meth:`_Gunicorn.load`): its own Redis connection pool, its own background threads, nothing
created in the parent and shared across processes. The parent only checks what can be checked
before forking (the config folder, the signing secret, that Redis answers), so a mistake is a
one-line message at start-up, not a worker that fails to boot. A worker answers its probes as
soon as it is up, and builds its Bolt app meanwhile (:func:`web_app`), then loads what reading
a card needs (numpy), so that no click waits for it.

The parent imports the code the workers serve with (:data:`WORKER_MODULES`: the probes, the web
door, Bolt and the listeners) before it forks, and builds nothing of it: a fork starts each
worker with those modules already loaded, so they are imported once, not once per worker.
Imports are most of a start, and a worker's own imports ran beside the other worker's (and
whatever else shares the machine), so a Slack request sent as soon as a worker answered its
probes waited for Bolt to be imported there.

The workers' Prometheus metrics are one set, whichever worker a scrape reaches: the
multiprocess mode of prometheus_client, in a folder of this run (:func:`shared_metrics`). The
mode is chosen when prometheus_client is first imported, so this module imports the app (which
imports it) only once the folder is set.

A start is mostly imports and config objects, and Python's cyclic garbage collector would walk
them over and over as they pile up, freeing nothing: it is paused while the parent loads
(:func:`loading`, one pause from the settings to the fork), and on again before gunicorn forks,
so workers run with it as usual. What was loaded is frozen first (``gc.freeze``, as Python's
docs advise before a fork): else the first collection after the pause walks every object made
during it, and each worker's first full collection walks all of it again (about 25 ms of a
worker's start, measured) and writes to the pages the fork shares. Only a start that gets as
far as the fork freezes anything (a test that runs the command in its own process keeps its
collector as it was).
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from bot.collector import collector_paused
from models.errors import ConfigError

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.deps import Deps
    from bot.settings import Settings
    from bot.web import WsgiApp

log = logging.getLogger(__name__)

#: Where prometheus_client's multiprocess mode keeps every process's values.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Two worker processes by default: Python runs one thread at a time in a process, so a second
#: process puts a second core to work on a burst of requests and keeps answering while the
#: other is busy; more with --workers.
DEFAULT_WORKERS = 2

#: The name of the thread that builds a worker's Bolt app (:func:`build_in_background`).
BUILD_THREAD = "build-slack-app"

#: How long after its app is served a worker loads what reading a card needs
#: (:func:`load_card_reads`), and the thread that does it.
CARD_READS_AFTER_S = 1.0
CARD_READS_THREAD = "load-card-reads"

#: What a worker imports to serve (its deps, probes, web door, Bolt app and listeners): the
#: parent imports it before forking, after the metrics folder is set (prometheus_client).
WORKER_MODULES = ("bot.deps", "bot.web", "bot.door", "bot.app")


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


def web_app(settings: Settings, *, metrics_dir: str | None = None) -> WsgiApp:
    """One worker's WSGI callable, with its own Redis connection and background threads;
    ``metrics_dir``: the folder of the workers' shared metrics, if any.

    It answers the probes and metrics at once. The Bolt app is built in a background thread
    (:func:`build_in_background`; it imports Bolt and the listeners first when the parent has
    not, as in a test), and a Slack request that comes before it is done waits for it, well
    within Slack's 3 s."""
    from bot.deps import build_deps
    from bot.state.store import is_embedded
    from bot.web import build_wsgi

    deps = build_deps(settings)
    if is_embedded(deps.redis):  # no worker can see this process's store: redraw here
        from bot.feedback.drain import DrainThread, build_drain

        DrainThread(build_drain(deps)).start()
    return build_wsgi(build_in_background(deps), deps, metrics_dir=metrics_dir)


def build_in_background(deps: Deps) -> Future[App]:
    """The worker's Bolt app, built in the thread :data:`BUILD_THREAD`; what reading a card
    needs is loaded :data:`CARD_READS_AFTER_S` later (:func:`load_card_reads`).

    If the app cannot be built, the worker logs why and exits as a worker that failed to boot,
    so gunicorn stops rather than keep a worker whose every Slack request would fail; it exits
    at once, as a thread cannot raise into gunicorn's worker loop."""
    app: Future[App] = Future()

    def build() -> None:
        try:
            from bot.app import build_app

            app.set_result(build_app(deps))
        except Exception:
            log.exception("could not build the Slack app; this worker stops")
            os._exit(Arbiter.WORKER_BOOT_ERROR)
        loader = threading.Timer(CARD_READS_AFTER_S, load_card_reads, args=(deps,))
        loader.name, loader.daemon = CARD_READS_THREAD, True
        loader.start()

    threading.Thread(target=build, name=BUILD_THREAD, daemon=True).start()
    return app


def load_card_reads(deps: Deps) -> None:
    """Build the worker's snapshot store (``deps.store``), which imports numpy (60-170 ms of
    CPU on a busy 2-core machine), in the thread :data:`CARD_READS_THREAD`, a little while
    after the worker's app is served.

    Not before: neither the probes nor the app wait for it. Not at once: the first requests
    after a start (a deploy's checks, the first users) would share the cores with it, as would
    the other workers' imports (``bench/serve_ready.py``: its `/churn` answered 19-25 ms after
    the first healthy `/healthz` without, 63-146 ms with it at once). And not with the first
    click or `/churn` that reads a card, which would wait for all of it while every request
    to the worker queued behind. A request that reads a card earlier loads it itself; one
    that reads while it loads waits for the import under way (Python's import lock)."""
    deps.store  # noqa: B018 (a cached property: built here, then read by every card read)


@contextmanager
def loading() -> Iterator[None]:
    """The collector paused while the parent loads, and what it loaded frozen (out of every
    later collection, in the parent and its workers) before it is on again. The few hundred
    objects that became cyclic garbage meanwhile stay with it: a collection to free them would
    walk everything the parent loaded (about 30 ms, measured)."""
    with collector_paused():
        yield
        gc.freeze()


@contextmanager
def shared_metrics() -> Iterator[str | None]:
    """A folder for the workers' metrics (prometheus_client's multiprocess mode), removed when
    the server stops; one given in PROMETHEUS_MULTIPROC_DIR is used and kept. None, and each
    worker keeps its own, if prometheus_client was imported before (the mode cannot change
    then: only in a process that already ran other code, such as a test)."""
    given = os.environ.get(METRICS_DIR_ENV)  # prometheus_client's own variable, not a setting
    if given:
        yield given
        return
    if "prometheus_client" in sys.modules:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="churnbot-metrics-")
    os.environ[METRICS_DIR_ENV] = folder
    try:
        yield folder
    finally:
        os.environ.pop(METRICS_DIR_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


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
    if socket_mode:
        with collector_paused():
            from bot.cli.common import settings_from_environment

            settings = settings_from_environment()
        serve_socket_mode(settings, host=host, port=settings.env.port)
        return
    with shared_metrics() as metrics_dir:
        with loading():  # one pause, so no collection walks the settings before the freeze
            from bot.cli.common import settings_from_environment
            from bot.settings import require_bot_token, require_signing_secret
            from bot.state import connect

            settings = settings_from_environment()
            count = worker_count(settings, workers)
            require_signing_secret(settings.env)
            require_bot_token(settings.env)
            if settings.env.redis_url is not None:
                connect(settings.env.redis_url).close()  # fail here if Redis does not answer
            for module in WORKER_MODULES:
                importlib.import_module(module)
        _Gunicorn(
            lambda: web_app(settings, metrics_dir=metrics_dir),
            gunicorn_options(host, settings, count, threads),
        ).run()


def gunicorn_options(host: str, settings: Settings, workers: int, threads: int) -> dict[str, Any]:
    """gunicorn's settings."""
    return {
        "bind": f"{host}:{settings.env.port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 30,
        "accesslog": "-",
        "logger_class": "bot.logs.GunicornLogger",  # JSON lines off a terminal, like our logs
        # gunicorn's control socket has one path per user ($HOME/.gunicorn/gunicorn.ctl), so
        # two web processes on one machine would take it from each other; churnbot needs none.
        "control_socket_disable": True,
    }


def serve_socket_mode(settings: Settings, *, host: str, port: int) -> None:
    """Slack's requests over the socket; the probes and metrics on ``host:port`` as in HTTP
    mode, so a platform's health checks and scrapes work the same in both."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import build_app
    from bot.cli.common import console, stop_requested
    from bot.deps import build_deps
    from bot.feedback.drain import running_drain
    from bot.loopback import LoopbackServer
    from bot.web import build_wsgi

    deps = build_deps(settings)
    token = deps.settings.env.slack_app_token
    if token is None:
        raise ConfigError(
            "environment: SLACK_APP_TOKEN is required for --socket-mode (an app-level token, "
            "xapp-..., with the connections:write scope, under Basic Information)"
        )
    app = build_app(deps, socket_mode=True)
    stop = stop_requested()
    # Often run with no worker beside it: messages are redrawn after clicks here too.
    with (
        LoopbackServer(build_wsgi(None, deps), host=host, port=port) as probes,
        running_drain(deps),
    ):
        console.print(f"Connecting to Slack in Socket Mode; probes and metrics at {probes.url}")
        # Not the handler's start(), which waits for good: on SIGTERM the socket is closed
        # first (no new requests), then the drain finishes its redraw and the probes stop.
        handler = SocketModeHandler(app, token.get_secret_value())
        handler.connect()
        stop.wait()
        console.print("Stopping: closing the Slack socket")
        handler.close()
