"""``churnbot worker``: the scheduler process (the Procfile's ``worker``)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from bot.cli.common import console, settings_from_environment
from bot.deps import build_deps
from bot.digest.poster import build_poster
from bot.digest.scheduler import DigestWorker, build_scheduler, job_store
from bot.digest.sender import DigestSender, build_client
from bot.feedback.summary import weekly_summary
from models.errors import ConfigError


@click.command("worker")
def command() -> None:
    """Post every digest of config/channels.yaml on its schedule, exactly once.

    Run exactly one (a second one during a deploy doubles nothing: every send is fenced in
    Redis). Stops on SIGTERM or Ctrl-C after the digests being posted are finished.
    """
    settings = settings_from_environment()
    if settings.env.slack_bot_token is None:
        raise ConfigError("environment: SLACK_BOT_TOKEN is not set; the worker posts to Slack")
    deps = build_deps(settings)
    client = build_client(settings.env)
    worker = DigestWorker(
        key=deps.prefix,
        poster=build_poster(deps, DigestSender(client)),
        channels=settings.channels,
        scheduler=build_scheduler(job_store(deps.redis, deps.prefix), settings.channels),
        redis=deps.redis,
        prefix=deps.prefix,
        clock=deps.clock,
        weekly=lambda: weekly_summary(deps, client),
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    worker.start()
    console.print(f"Scheduling {len(settings.channels.digests)} digest(s); Ctrl-C to stop")
    for label, when in deps.next_digests():
        console.print(f"  {label}: next at {when}")
    stop.wait()
    console.print("Stopping: finishing the digests being posted")
    worker.stop(wait=True)


def register(group: click.Group) -> None:
    group.add_command(command)
