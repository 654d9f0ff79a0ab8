"""APScheduler wiring for ``churnbot worker``: one scheduler, jobs from config, a Redis job store.

Choices made on purpose, against APScheduler 3.11 defaults and habits that would bite:

* **Job defaults**: ``misfire_grace_time`` = the grace window of config/channels.yaml (the
  library default of 1 s would skip a digest one second late), ``coalesce=True`` (after
  downtime, one run, not one per missed week), ``max_instances=1``; the scheduler runs in UTC
  and every digest's CronTrigger carries its own IANA zone.
* **Jobs come from config at every start**, replaced by id (``replace_existing=True``); jobs
  of digests no longer configured are removed. A digest whose job already existed is due again
  from the start of the grace window, so a run missed while the worker was down (or cut short
  by a crash) goes out now; runs older than that are skipped and audited, and slots started
  but never finished are resumed, whatever their age. The exactly-once records make all of
  this safe to repeat.
* **The job store pickles jobs by reference**, so job functions are module-level and take
  plain arguments (a worker key and a digest name); the live worker is looked up in a registry
  filled by :meth:`DigestWorker.start`. Jobs run through :class:`~bot.digest.poster.DigestPoster`,
  which does not trust the scheduler to run a slot once (the Redis job store takes no lock).
* **Only recurring jobs are shared.** Two schedulers on one job store both run a due job; a
  one-shot job is then removed twice, and APScheduler's loop dies on the second removal
  (``JobLookupError``), leaving a worker that never fires again. So retries are not jobs:
  a slot that must be tried again stays open in Redis (with its ``retry_at``), and every
  worker's own *resume* job, in a job store of its own (memory), takes up whatever is due. The
  shared store also forgives a job that another scheduler updated or removed first.
* **Liveness.** A *heartbeat* job in the worker's own store proves its scheduler loop turns:
  it refreshes a Redis key (``<prefix>:{scheduler}:heartbeat:<worker id>``, expiring) and a
  metric. :meth:`DigestWorker.health` says when the thread died or stopped beating, and
  ``churnbot worker`` then exits non-zero so that it is restarted.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import redis
from apscheduler.events import EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.redis import RedisJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.digest.alerts import OwnerAlerts
from bot.digest.channels import ChannelsConfig, DigestConfig
from bot.digest.metrics import WorkerMetrics
from bot.digest.poster import DigestPoster, Outcome
from bot.digest.scoring import ScheduledScoring
from bot.digest.slots import fire_times, next_fire_time
from bot.digest.upcoming import record_upcoming
from bot.state.store import is_embedded, translate_errors
from models.errors import ChurnbotError

log = logging.getLogger(__name__)

JOB = "digest:"
WEEKLY = "weekly-summary"
WEEKLY_HOUR_UTC = 8
SCORING = "scoring"
#: The worker's own job store (not shared with other workers): heartbeat and resume.
LOCAL = "local"
HEARTBEAT = "heartbeat"
RESUME = "resume"
ALERTS = "alerts"
#: How often the scheduler thread proves it is alive...
HEARTBEAT_SECONDS = 15.0
#: ... and how long without a beat makes it dead.
HEARTBEAT_STALE_AFTER = 4
#: How often open slots (Slack down, a crashed run, a ``digest now`` from the web process) and
#: due slots held by a dead runner are looked at again.
RESUME_SECONDS = 60.0
#: Most missed runs of one digest reported at start-up (a long outage must not flood the log).
MAX_MISSED_REPORTED = 20
#: Digests posted at the same time (Slack's limit is per channel, so channels go in parallel).
THREADS = 10

_workers: dict[str, DigestWorker] = {}
_workers_lock = threading.Lock()


class WorkerError(ChurnbotError):
    """The worker cannot run as configured."""


def fire_job(worker_key: str, digest_name: str) -> None:
    """The cron job of a digest."""
    _worker(worker_key).fire(digest_name)


def scoring_job(worker_key: str) -> None:
    """The scheduled scoring run (it fences itself in Redis: one worker per period)."""
    worker = _worker(worker_key)
    if worker.scoring is not None:
        worker.scoring.fire()


def weekly_job(worker_key: str) -> None:
    """The weekly job: the feedback summary to the admins (it fences itself in Redis)."""
    worker = _worker(worker_key)
    if worker.weekly is not None:
        worker.weekly()


def _worker(key: str) -> DigestWorker:
    with _workers_lock:
        worker = _workers.get(key)
    if worker is None:
        raise WorkerError(f"no digest worker {key!r} runs in this process")
    return worker


def job_store(r: redis.Redis, prefix: str) -> BaseJobStore:
    """A RedisJobStore on the same server as the app's state, its keys under ``prefix``.

    Its client decodes nothing (jobs are pickles) but otherwise copies the app's connection
    options (timeouts, retries). The embedded store persists nothing, so it gets the in-memory
    job store instead of pretending.
    """
    if is_embedded(r):
        log.warning("REDIS_URL is not set: the schedule lives in memory and a restart forgets it")
        return MemoryJobStore()
    pool = r.connection_pool
    binary = redis.ConnectionPool(
        connection_class=pool.connection_class,
        **{**pool.connection_kwargs, "decode_responses": False},
    )
    return SharedRedisJobStore(
        jobs_key=f"{prefix}:{{scheduler}}:jobs",
        run_times_key=f"{prefix}:{{scheduler}}:run_times",
        connection_pool=binary,
    )


class SharedRedisJobStore(RedisJobStore):
    """A RedisJobStore that several schedulers may share during a deploy.

    When another scheduler removed a job first (a digest dropped from its config) or this one
    removes a job twice, the job is gone either way: the stock store raises ``JobLookupError``
    inside APScheduler's loop, which kills the scheduler thread.
    """

    def update_job(self, job: Job) -> None:
        try:
            super().update_job(job)
        except JobLookupError:
            log.info("job %s was removed by another scheduler; not re-adding it", job.id)

    def remove_job(self, job_id: str) -> None:
        try:
            super().remove_job(job_id)
        except JobLookupError:
            log.info("job %s was already removed by another scheduler", job_id)


class StoppableScheduler(BackgroundScheduler):
    """A BackgroundScheduler that processes no job once it has been shut down.

    APScheduler 3.11's ``shutdown`` wakes its thread, which then runs one more round of due
    jobs against the wall clock: a job due by that clock is "missed" (its next run moved on
    in the shared job store) or submitted to the executor that was just shut down. A worker
    stopping must leave the schedule exactly as it was.
    """

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        result: float | None = super()._process_jobs()
        return result


def build_scheduler(
    store: BaseJobStore, channels: ChannelsConfig, *, threads: int = THREADS
) -> BackgroundScheduler:
    return StoppableScheduler(
        jobstores={"default": store, LOCAL: MemoryJobStore()},
        # The heartbeat has a thread of its own: digests waiting out a Slack outage may hold
        # every thread of the pool, and that must not look like a dead scheduler.
        executors={"default": ThreadPoolExecutor(threads), LOCAL: ThreadPoolExecutor(1)},
        job_defaults={
            "misfire_grace_time": channels.grace_seconds,
            "coalesce": True,
            "max_instances": 1,
        },
        timezone=dt.UTC,
    )


class DigestWorker:
    """Keeps the scheduler's jobs in line with config and turns job runs into digest runs."""

    def __init__(
        self,
        *,
        key: str,
        poster: DigestPoster,
        channels: ChannelsConfig,
        scheduler: BackgroundScheduler,
        redis: redis.Redis,
        prefix: str,
        clock: Callable[[], dt.datetime],
        weekly: Callable[[], None] | None = None,
        scoring: ScheduledScoring | None = None,
        alerts: OwnerAlerts | None = None,
        metrics: WorkerMetrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.key = key
        self.weekly = weekly
        self.scoring = scoring
        self.alerts = alerts
        self.scheduler = scheduler
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.metrics = metrics or WorkerMetrics()
        self._poster = poster
        self._channels = channels
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._monotonic = monotonic
        self._heartbeat_seconds = heartbeat_seconds
        self._last_beat: float | None = None
        self._firing = False

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, *, paused: bool = False) -> None:
        """Register, load the jobs from config, publish the next runs, then start firing
        (``paused=True`` leaves firing off, for tests that call the job functions)."""
        with _workers_lock:
            if self.key in _workers:
                raise WorkerError(f"a digest worker {self.key!r} already runs in this process")
            _workers[self.key] = self
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self.scheduler.start(paused=True)
        self.sync()
        self._add_local_jobs()
        self.publish_upcoming()
        if not paused:
            self.start_firing()

    def start_firing(self) -> None:
        """Let the scheduler fire (after ``start(paused=True)``); from now on :meth:`health`
        expects its thread to beat."""
        self.heartbeat()
        self._firing = True
        self.scheduler.resume()

    def stop(self, *, wait: bool = True) -> None:
        """Stop firing; with ``wait``, digests being posted finish first."""
        self._firing = False
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        with _workers_lock:
            if _workers.get(self.key) is self:
                del _workers[self.key]

    def health(self) -> str | None:
        """None while the scheduler fires; otherwise what is wrong (the process must exit)."""
        if not self._firing:
            return None
        thread = getattr(self.scheduler, "_thread", None)
        if thread is None or not thread.is_alive():
            problem = "the scheduler thread died"
        elif self._last_beat is None or (
            self._monotonic() - self._last_beat > HEARTBEAT_STALE_AFTER * self._heartbeat_seconds
        ):
            problem = (
                f"the scheduler has not run its heartbeat job for more than "
                f"{HEARTBEAT_STALE_AFTER * self._heartbeat_seconds:g} s"
            )
        else:
            self.metrics.scheduler_up.set(1)
            return None
        self.metrics.scheduler_up.set(0)
        return problem

    def heartbeat(self) -> None:
        """What the heartbeat job does: prove this worker's scheduler loop still turns."""
        self._last_beat = self._monotonic()
        now = self._clock()
        self.metrics.heartbeat.set(now.timestamp())
        self.metrics.scheduler_up.set(1)
        try:
            with translate_errors(self._redis):
                self._redis.set(
                    heartbeat_key(self._prefix, self.id),
                    now.isoformat(),
                    ex=int(HEARTBEAT_STALE_AFTER * self._heartbeat_seconds),
                )
        except ChurnbotError as exc:
            log.warning("could not record the scheduler heartbeat: %s", exc)

    # --- jobs ---------------------------------------------------------------------------------

    def sync(self) -> None:
        """Make the shared job store match config (see the module docstring)."""
        now = self._clock()
        wanted = {JOB + d.name: d for d in self._channels.digests}
        for job in self.scheduler.get_jobs(jobstore="default"):
            if job.id in (WEEKLY, SCORING):
                continue
            name = job.id.removeprefix(JOB)
            if self._channels.by_name(name) is None:
                log.info("removing job %s: digest %s is no longer configured", job.id, name)
                self.scheduler.remove_job(job.id, jobstore="default")
        for job_id, digest in wanted.items():
            old = self.scheduler.get_job(job_id, jobstore="default")
            trigger = digest.trigger()
            first = next_fire_time(trigger, now)
            if old is not None and old.next_run_time is not None:
                self._report_missed(digest, old.next_run_time, now)
                first = next_fire_time(trigger, now - self._poster.grace)
            self.scheduler.add_job(
                fire_job,
                trigger,
                args=[self.key, digest.name],
                id=job_id,
                name=f"digest {digest.name} to {digest.channel}",
                replace_existing=True,
                next_run_time=first,
            )
        if self.weekly is not None:
            weekly = CronTrigger(day_of_week="mon", hour=WEEKLY_HOUR_UTC, timezone=dt.UTC)
            self._add_recurring(
                weekly_job, weekly, WEEKLY, "weekly feedback summary to the admins", now
            )
        if self.scoring is not None:
            config = self.scoring.config
            self._add_recurring(
                scoring_job, config.trigger(), SCORING, f"scoring run ({config.describe()})", now
            )
        elif self.scheduler.get_job(SCORING, jobstore="default") is not None:
            self.scheduler.remove_job(SCORING, jobstore="default")

    def _add_recurring(
        self,
        func: Callable[[str], None],
        trigger: CronTrigger,
        job_id: str,
        name: str,
        now: dt.datetime,
    ) -> None:
        self.scheduler.add_job(
            func,
            trigger,
            args=[self.key],
            id=job_id,
            name=name,
            replace_existing=True,
            next_run_time=next_fire_time(trigger, now),
        )

    def _add_local_jobs(self) -> None:
        """This worker's own jobs: no other scheduler sees them, so none races for them."""
        self.scheduler.add_job(
            self.heartbeat,
            IntervalTrigger(seconds=self._heartbeat_seconds, timezone=dt.UTC),
            id=HEARTBEAT,
            name="scheduler heartbeat",
            jobstore=LOCAL,
            executor=LOCAL,
            replace_existing=True,
            misfire_grace_time=None,
        )
        self._every_minute(self.resume_open, RESUME, "resume open digest slots")
        if self.alerts is not None:  # snapshots `churnbot score` published, here or elsewhere
            self._every_minute(self.alerts.run_new, ALERTS, "owner alerts of a new snapshot")

    def _every_minute(self, run: Callable[[], object], job_id: str, name: str) -> None:
        """A local job every :data:`RESUME_SECONDS` from now, on the digests' pool (it may
        take long: posting, reading every card)."""
        self.scheduler.add_job(
            run,
            IntervalTrigger(seconds=RESUME_SECONDS, timezone=dt.UTC),
            id=job_id,
            name=name,
            jobstore=LOCAL,
            replace_existing=True,
            misfire_grace_time=None,
            next_run_time=dt.datetime.now(dt.UTC),  # the scheduler's own clock: at once
        )

    def _report_missed(self, digest: DigestConfig, pending: dt.datetime, now: dt.datetime) -> None:
        """Skip and audit the runs that fell due while no worker ran, beyond the grace."""
        cutoff = now - self._poster.grace
        missed = fire_times(digest.trigger(), pending - dt.timedelta(microseconds=1), cutoff)
        for scheduled_at in missed[-MAX_MISSED_REPORTED:]:
            self._poster.skip_missed(digest, scheduled_at, "no worker was running")
        if len(missed) > MAX_MISSED_REPORTED:
            log.warning(
                "digest %s: %s older missed runs not reported",
                digest.name,
                len(missed) - MAX_MISSED_REPORTED,
            )

    def fire(self, digest_name: str) -> Outcome | None:
        digest = self._channels.by_name(digest_name)
        if digest is None:
            log.warning("job for unknown digest %s ignored", digest_name)
            return None
        return self._poster.fire(digest)

    def resume_open(self) -> list[Outcome]:
        """What the resume job does, idempotently (every worker runs it; claims fence it):
        take up every open slot whose retry time has come (Slack was down, a run crashed, a
        ``digest now`` of the web process gave up), then every digest's slot still within the
        grace window (a runner that died before saving its plan leaves nothing open)."""
        outcomes: list[Outcome] = []
        for digest in self._channels.digests:
            try:
                waiting = {at for at, _ in self._poster.open_slots(digest)}
                for scheduled_at, manual in self._poster.open_slots(digest, due=True):
                    outcomes.append(self._poster.run(digest, scheduled_at, manual=manual))
                due = self._poster.run_due(digest, unless=waiting)
            except ChurnbotError as exc:
                log.error("digest %s: open slots not resumed: %s", digest.name, exc)
                continue
            if due is not None and due.status != "already_done":
                outcomes.append(due)
        return outcomes

    # --- events -------------------------------------------------------------------------------

    def _on_missed(self, event: JobExecutionEvent) -> None:
        """APScheduler skipped a run beyond the grace window: record and audit it."""
        if not event.job_id.startswith(JOB):
            return
        digest = self._channels.by_name(event.job_id.removeprefix(JOB))
        if digest is not None:
            self._poster.skip_missed(digest, event.scheduled_run_time, "the worker was busy")

    def _on_submitted(self, event: JobExecutionEvent) -> None:
        if event.job_id.startswith(JOB):
            self.publish_upcoming()

    def publish_upcoming(self) -> None:
        """Write the next run of every digest for App Home and ``/churn-admin status``."""
        runs = []
        for job in self.scheduler.get_jobs(jobstore="default"):
            digest = self._channels.by_name(job.id.removeprefix(JOB))
            if job.id.startswith(JOB) and digest is not None and job.next_run_time is not None:
                runs.append((digest, job.next_run_time))
        try:
            record_upcoming(self._redis, self._prefix, runs)
        except ChurnbotError as exc:
            log.warning("could not publish the next digest runs: %s", exc)


def heartbeat_key(prefix: str, worker_id: str) -> str:
    return f"{prefix}:{{scheduler}}:heartbeat:{worker_id}"
