"""What the Slack layer needs, built once by a factory and passed in (no import-time wiring)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import redis

from bot.digest.upcoming import read_upcoming
from bot.metrics import Metrics
from bot.settings import Settings
from bot.state.audit import AuditLog
from bot.state.killswitch import KillSwitch
from bot.state.store import connect

if TYPE_CHECKING:
    from bot.state.snapshots import SnapshotStore


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    redis: redis.Redis
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

    @cached_property
    def store(self) -> SnapshotStore:
        """The snapshot store, built on first use: it needs numpy, which a web worker then
        loads after it can answer (``churnbot serve`` builds it a second after its app is
        served, in a thread of its own; else the first card read does) rather than before."""
        from bot.state.snapshots import SnapshotStore

        return SnapshotStore(self.redis, prefix=self.prefix)


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
        switch=KillSwitch(r, prefix=prefix, clock=clock),
        audit=AuditLog(r, prefix=prefix, clock=clock),
        clock=clock,
        prefix=prefix,
        next_digests=lambda: read_upcoming(r, prefix),
    )
