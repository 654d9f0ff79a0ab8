"""Scheduled scoring in the worker: the same run as ``churnbot score``, once per period.

Why here: the freshness SLA promises scores at least daily, and a digest older than that shows
the fallback banner; nothing but the worker runs on a schedule. Every worker has the job (the
job store is shared), so each period is fenced by a claim in Redis: ``SET NX`` on
``<prefix>:{scoring}:period:<period>`` (the scheduled time in the schedule's zone, as for
digests). The first worker to claim a period scores; the others count it as skipped. A claim
whose holder died expires after ``lease``; the run is not repeated in that period (the next
one comes; the snapshot-age metric shows the gap). After a healthy publish, the owners of the
accounts that jumped are alerted at once (``bot.digest.alerts``, which claims each snapshot's
alerts and fences each alert itself; the worker also looks for snapshots published elsewhere).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Callable

import redis

from bot.digest.alerts import OwnerAlerts
from bot.digest.channels import ScoringConfig
from bot.digest.metrics import WorkerMetrics
from bot.digest.slots import due_fire_time, period_key
from bot.publish import RunResult
from bot.state.store import translate_errors
from models.errors import ChurnbotError

log = logging.getLogger(__name__)


class ScheduledScoring:
    """Runs ``run`` (what ``churnbot score`` runs) at most once per scheduled period."""

    def __init__(
        self,
        *,
        redis: redis.Redis,
        prefix: str,
        config: ScoringConfig,
        run: Callable[[], RunResult],
        clock: Callable[[], dt.datetime],
        grace: dt.timedelta,
        metrics: WorkerMetrics,
        lease: dt.timedelta = dt.timedelta(hours=2),
        keep: dt.timedelta = dt.timedelta(days=7),
        alerts: OwnerAlerts | None = None,
    ) -> None:
        self.config = config
        self._r = redis
        self._root = f"{prefix}:{{scoring}}:"
        self._run = run
        self._clock = clock
        self._grace = grace
        self._metrics = metrics
        self._lease_s = int(lease.total_seconds())
        self._keep_s = int(keep.total_seconds())
        self._alerts = alerts
        metrics.scoring_last_success.set_function(self._last_success_timestamp)

    def fire(self) -> str:
        """What the scoring job calls; returns the outcome (also counted in the metrics)."""
        now = self._clock()
        due = due_fire_time(self.config.trigger(), now, self._grace)
        if due is None:
            log.warning("scoring fired at %s with no scheduled time in the grace window", now)
            return self._count("skipped")
        period = period_key(due, self.config.zone)
        key = self._root + "period:" + period
        record = {"state": "running", "started_at": now.isoformat()}
        try:
            with translate_errors(self._r):
                claimed = self._r.set(key, json.dumps(record), nx=True, ex=self._lease_s)
        except ChurnbotError as exc:
            log.error("scoring of %s not started: %s", period, exc)
            return self._count("failed")
        if not claimed:
            log.info("scoring of %s runs (or ran) in another worker", period)
            return self._count("skipped")
        log.info("scoring run of %s started", period)
        try:
            result = self._run()
        except ChurnbotError as exc:  # user-fixable: missing data, no model, Redis away...
            log.error("scoring run of %s failed: %s", period, exc)
            self._close(key, {"state": "failed", "reason": str(exc)})
            return self._count("failed")
        outcome = "healthy" if result.healthy else "unhealthy"
        snapshot = result.snapshot.snapshot_id if result.snapshot else None
        self._close(key, {"state": outcome, "snapshot_id": snapshot})
        if result.healthy:
            with translate_errors(self._r):
                self._r.set(self._root + "last_success", self._clock().isoformat())
            log.info("scoring run of %s published snapshot %s", period, snapshot)
            if result.unlisted_note:
                log.info("scoring run of %s: %s", period, result.unlisted_note)
            if result.paused_note:
                log.warning("scoring run of %s: %s", period, result.paused_note)
            if self._alerts is not None:
                self._alerts.run_new()
        else:
            log.error(
                "scoring run of %s failed its health checks: %s",
                period,
                "; ".join(result.failures),
            )
        return self._count(outcome)

    def _close(self, key: str, record: dict[str, str | None]) -> None:
        record["finished_at"] = self._clock().isoformat()
        try:
            with translate_errors(self._r):
                self._r.set(key, json.dumps(record), ex=self._keep_s)
        except ChurnbotError as exc:
            log.warning("could not record the scoring run: %s", exc)

    def _count(self, outcome: str) -> str:
        self._metrics.scoring_runs.labels(outcome).inc()
        return outcome

    def _last_success_timestamp(self) -> float:
        """Read at every scrape, so a restarted worker (or another one's run) shows."""
        try:
            with translate_errors(self._r):
                raw = self._r.get(self._root + "last_success")
        except ChurnbotError:
            return math.nan
        return math.nan if raw is None else dt.datetime.fromisoformat(str(raw)).timestamp()
