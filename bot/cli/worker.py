"""``churnbot worker``: the scheduler process (the Procfile's ``worker``)."""

from __future__ import annotations

import datetime as dt
import gc
import logging

import click
from prometheus_client import start_http_server

from bot.cli.common import console, settings_from_environment, stop_requested
from bot.cli.score import score_book, tell_admins
from bot.deps import Deps, build_deps
from bot.digest.alerts import OwnerAlerts, build_alerts
from bot.digest.metrics import WorkerMetrics
from bot.digest.poster import build_poster
from bot.digest.scheduler import (
    HEARTBEAT_SECONDS,
    DigestWorker,
    WorkerError,
    build_scheduler,
    job_store,
)
from bot.digest.scoring import ScheduledScoring
from bot.digest.sender import DigestSender, build_client
from bot.feedback.drain import DrainThread, build_drain
from bot.feedback.summary import weekly_summary
from bot.feedback.track_record import flag_log, refresh_summary
from bot.publish import RunResult
from models.errors import ConfigError

log = logging.getLogger(__name__)

#: How often the main thread checks that the scheduler thread is alive and beating.
WATCHDOG_SECONDS = 5.0


def scheduled_scoring(
    deps: Deps, metrics: WorkerMetrics, alerts: OwnerAlerts | None = None
) -> ScheduledScoring | None:
    """The scoring job of config/channels.yaml's ``scoring:`` section (None when disabled):
    the very run ``churnbot score`` makes (its flags logged for the track record), admins
    told when it trips the kill switch (and when it passes while such a trip holds), the
    day's track record computed for the first `/churn` cards, and, given ``alerts``, owners
    alerted at once of the accounts that jumped."""
    settings = deps.settings
    if not settings.channels.scoring.enabled:
        return None

    def run() -> RunResult:
        result = score_book(settings, deps.store, deps.switch, flags=flag_log(deps))
        tell_admins(deps, result)
        refresh_summary(deps)
        return result

    return ScheduledScoring(
        redis=deps.redis,
        prefix=deps.prefix,
        config=settings.channels.scoring,
        run=run,
        clock=deps.clock,
        grace=dt.timedelta(seconds=settings.channels.grace_seconds),
        metrics=metrics,
        alerts=alerts,
    )


@click.command("worker")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    envvar="CHURNBOT_METRICS_PORT",
    help="Serve the worker's Prometheus metrics on this port (env CHURNBOT_METRICS_PORT).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics server binds (0.0.0.0 for every interface).",
)
@click.option(
    "--heartbeat-seconds",
    type=click.FloatRange(0.1, 300),
    default=HEARTBEAT_SECONDS,
    show_default=True,
    help="How often the scheduler thread proves it is alive; four missed beats stop the worker.",
)
def command(metrics_port: int | None, metrics_host: str, heartbeat_seconds: float) -> None:
    """Post every digest of config/channels.yaml on its schedule, exactly once, score the book
    on the schedule of its ``scoring:`` section, and alert owners of the accounts that jumped
    in each new snapshot (whoever published it).

    Run one per core (two on two cores post a morning's digests sooner): any number doubles
    nothing, as every send, scoring run, alert and summary is fenced in Redis, and each digest
    is posted by the first worker to claim it. Stops on SIGTERM or Ctrl-C after the digests
    being posted are finished; exits with an error (to be restarted) if its scheduler thread
    stops.
    """
    settings = settings_from_environment()
    if settings.env.slack_bot_token is None:
        raise ConfigError("environment: SLACK_BOT_TOKEN is not set; the worker posts to Slack")
    deps = build_deps(settings)
    client = build_client(settings.env)
    alerts = build_alerts(deps, client)
    metrics = WorkerMetrics()
    metrics.watch_snapshots(deps.store, settings.spec.freshness_sla_hours, deps.clock)
    worker = DigestWorker(
        key=deps.prefix,
        poster=build_poster(deps, DigestSender(client), metrics=metrics),
        channels=settings.channels,
        scheduler=build_scheduler(job_store(deps.redis, deps.prefix), settings.channels),
        redis=deps.redis,
        prefix=deps.prefix,
        clock=deps.clock,
        weekly=lambda: weekly_summary(deps, client),
        scoring=scheduled_scoring(deps, metrics, alerts),
        alerts=alerts,
        metrics=metrics,
        heartbeat_seconds=heartbeat_seconds,
    )
    if metrics_port is not None:
        server, _ = start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
        console.print(f"Metrics on http://{metrics_host}:{server.server_port}/metrics")
    # What is loaded by now lives as long as the worker: frozen out of every later collection,
    # so the many that a hundred digest threads trigger do not walk it each time (a digest's
    # CPU about 2.6 -> 2.3 ms in bench/digests.py, which freezes its process the same way).
    gc.freeze()
    stop = stop_requested()
    worker.start()
    refreshes = DrainThread(build_drain(deps, client)).start()  # messages redrawn after clicks
    console.print(f"Scheduling {len(settings.channels.digests)} digest(s); Ctrl-C to stop")
    for label, when in deps.next_digests():
        console.print(f"  {label}: next at {when}")
    if worker.scoring is not None:
        console.print(f"  scoring: {worker.scoring.config.describe()}")
    while not stop.wait(WATCHDOG_SECONDS):
        # The drain catches its own errors; a thread that ended anyway leaves clicks' messages
        # undrawn for good, so it stops the worker like a dead scheduler does.
        problem = worker.health() or (
            None if refreshes.is_alive() else "the feedback refresh thread died"
        )
        if problem is not None:
            log.critical("worker %s stops: %s; restart it", worker.id, problem)
            worker.stop(wait=False)
            refreshes.stop()
            raise WorkerError(f"{problem}; the worker exits so that it is restarted")
    console.print("Stopping: finishing the digests being posted")
    worker.stop(wait=True)
    refreshes.stop()
