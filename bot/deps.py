"""What the Slack layer needs, built once by a factory and passed in (no import-time wiring)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis

from bot.digest.upcoming import read_upcoming
from bot.metrics import Metrics
from bot.settings import Settings
from bot.state import KillSwitch, SnapshotStore, connect
from bot.state.audit import AuditLog


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    redis: redis.Redis
    store: SnapshotStore
    switch: KillSwitch
    audit: AuditLog
    clock: Callable[[], dt.datetime] = utc_now
    metrics: Metrics = field(default_factory=Metrics)
    prefix: str = "churnbot"
    # (channel, when) of the next scheduled digests, soonest first; the worker records them.
    next_digests: Callable[[], list[tuple[str, str]]] = list
    background: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="after-ack")
    )


def build_deps(
    settings: Settings,
    *,
    client: redis.Redis | None = None,
    prefix: str = "churnbot",
    clock: Callable[[], dt.datetime] = utc_now,
) -> Deps:
    """Connect to Redis (or the embedded store) and build the state objects on top of it."""
    r = client if client is not None else connect(settings.env.redis_url)
    return Deps(
        settings=settings,
        redis=r,
        store=SnapshotStore(r, prefix=prefix),
        switch=KillSwitch(r, prefix=prefix, clock=clock),
        audit=AuditLog(r, prefix=prefix, clock=clock),
        clock=clock,
        prefix=prefix,
        next_digests=lambda: read_upcoming(r, prefix),
    )
