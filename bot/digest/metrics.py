"""Prometheus metrics of the worker process (``churnbot worker --metrics-port``).

The worker has no HTTP app, so it has a registry of its own, served by prometheus_client's
small HTTP server when a port is given. What an operator alerts on:

* ``churnbot_worker_scheduler_up`` 0, or ``churnbot_worker_heartbeat_timestamp_seconds`` old:
  the scheduler thread stopped (the process then exits to be restarted);
* ``churnbot_slack_failing`` 1: digests are waiting for Slack (with an error-level log line);
* ``churnbot_snapshot_age_seconds`` above ``churnbot_freshness_sla_seconds``: scores are stale,
  and ``churnbot_scoring_last_success_timestamp_seconds`` says since when.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from models.errors import ChurnbotError

if TYPE_CHECKING:  # the snapshot store needs numpy, which the web process loads only for cards
    from bot.state import SnapshotStore

log = logging.getLogger(__name__)

DIGEST_OUTCOMES = ("posted", "skipped", "failed", "delayed")
SCORING_OUTCOMES = ("healthy", "unhealthy", "failed", "skipped")


class WorkerMetrics:
    """The worker's metrics, in a registry of their own (never prometheus_client's global)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.scheduler_up = Gauge(
            "churnbot_worker_scheduler_up",
            "1 while the scheduler thread runs and beats",
            registry=self.registry,
        )
        self.heartbeat = Gauge(
            "churnbot_worker_heartbeat_timestamp_seconds",
            "When the scheduler thread last ran its heartbeat job (Unix time)",
            registry=self.registry,
        )
        self.digests = Counter(
            "churnbot_digests",
            "Digest runs by outcome (delayed: Slack kept failing, tried again later)",
            ["outcome"],
            registry=self.registry,
        )
        self.slack_failing = Gauge(
            "churnbot_slack_failing",
            "1 while the last digest run found Slack failing beyond the retry budget",
            registry=self.registry,
        )
        self.scoring_runs = Counter(
            "churnbot_scoring_runs",
            "Scheduled scoring runs by outcome (skipped: another worker had the period)",
            ["outcome"],
            registry=self.registry,
        )
        self.scoring_last_success = Gauge(
            "churnbot_scoring_last_success_timestamp_seconds",
            "When the last scheduled scoring run published a healthy snapshot (Unix time)",
            registry=self.registry,
        )
        self.snapshot_age = Gauge(
            "churnbot_snapshot_age_seconds",
            "Age of the last good snapshot (what CSMs are shown); NaN if none or Redis is away",
            registry=self.registry,
        )
        self.freshness_sla = Gauge(
            "churnbot_freshness_sla_seconds",
            "The freshness SLA of config/product.yaml: scores older than this get the banner",
            registry=self.registry,
        )
        #: The counter of each outcome, looked up once: ``labels`` takes a lock and checks
        #: its arguments on every call, and every digest run counts one.
        self.digest_runs = {outcome: self.digests.labels(outcome) for outcome in DIGEST_OUTCOMES}
        for outcome in SCORING_OUTCOMES:
            self.scoring_runs.labels(outcome)

    def watch_snapshots(
        self, store: SnapshotStore, sla_hours: float, clock: Callable[[], dt.datetime]
    ) -> None:
        """Compute the snapshot age at every scrape, so it grows while nothing scores."""
        self.freshness_sla.set(sla_hours * 3600)
        self.snapshot_age.set_function(lambda: snapshot_age_seconds(store, clock()))


def snapshot_age_seconds(store: SnapshotStore, now: dt.datetime) -> float:
    """Seconds since the last good snapshot was created; NaN when there is none or Redis
    cannot say (a scrape must answer, whatever the state of Redis)."""
    try:
        meta = store.last_good()
    except ChurnbotError as exc:
        log.warning("snapshot age unknown: %s", exc)
        return math.nan
    if meta is None:
        return math.nan
    return (now - dt.datetime.fromisoformat(meta.created_at)).total_seconds()
