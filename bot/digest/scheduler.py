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
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

import redis
from apscheduler.events import EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.redis import RedisJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from bot.digest.channels import ChannelsConfig, DigestConfig
from bot.digest.poster import DigestPoster, Outcome
from bot.digest.slots import fire_times, next_fire_time
from bot.digest.upcoming import record_upcoming
from bot.state.store import is_embedded
from models.errors import ChurnbotError

log = logging.getLogger(__name__)

JOB = "digest:"
WEEKLY = "weekly-summary"
WEEKLY_HOUR_UTC = 8
RETRY = "retry:"
#: Retries of one slot (Slack down, another holder's lease) before it waits for the next run.
MAX_RETRIES = 6
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


def retry_job(
    worker_key: str, digest_name: str, scheduled_at: str, manual: bool, attempt: int
) -> None:
    """A one-off job that takes up an unfinished slot again."""
    _worker(worker_key).retry(digest_name, dt.datetime.fromisoformat(scheduled_at), manual, attempt)


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
    return RedisJobStore(
        jobs_key=f"{prefix}:{{scheduler}}:jobs",
        run_times_key=f"{prefix}:{{scheduler}}:run_times",
        connection_pool=binary,
    )


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
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(threads)},
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
    ) -> None:
        self.key = key
        self.weekly = weekly
        self.scheduler = scheduler
        self._poster = poster
        self._channels = channels
        self._redis = redis
        self._prefix = prefix
        self._clock = clock

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, *, paused: bool = False) -> None:
        """Register, load the jobs from config, publish the next runs, then start firing
        (``paused=True`` leaves firing off, for tests that call the job functions)."""
        with _workers_lock:
            if self.key in _workers:
                raise WorkerError(f"a digest worker {self.key!r} already runs in this process")
            _workers[self.key] = self
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self.scheduler.add_listener(lambda _: self.publish_upcoming(), EVENT_JOB_SUBMITTED)
        self.scheduler.start(paused=True)
        self.sync()
        self.publish_upcoming()
        if not paused:
            self.scheduler.resume()

    def stop(self, *, wait: bool = True) -> None:
        """Stop firing; with ``wait``, digests being posted finish first."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        with _workers_lock:
            if _workers.get(self.key) is self:
                del _workers[self.key]

    # --- jobs ---------------------------------------------------------------------------------

    def sync(self) -> None:
        """Make the job store match config (see the module docstring)."""
        now = self._clock()
        wanted = {JOB + d.name: d for d in self._channels.digests}
        for job in self.scheduler.get_jobs():
            if job.id == WEEKLY:
                continue
            name = job.id.removeprefix(JOB).removeprefix(RETRY).split(":")[0]
            if self._channels.by_name(name) is None:
                log.info("removing job %s: digest %s is no longer configured", job.id, name)
                self.scheduler.remove_job(job.id)
        for job_id, digest in wanted.items():
            old = self.scheduler.get_job(job_id)
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
            for scheduled_at, manual in self._poster.open_slots(digest):
                self._schedule_retry(digest, scheduled_at, manual, attempt=1, delay=0.0)
        if self.weekly is not None:
            weekly = CronTrigger(day_of_week="mon", hour=WEEKLY_HOUR_UTC, timezone=dt.UTC)
            self.scheduler.add_job(
                weekly_job,
                weekly,
                args=[self.key],
                id=WEEKLY,
                name="weekly feedback summary to the admins",
                replace_existing=True,
                next_run_time=next_fire_time(weekly, now),
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
        outcome = self._poster.fire(digest)
        if outcome is not None:
            self._follow_up(digest, outcome, attempt=0)
        return outcome

    def retry(
        self, digest_name: str, scheduled_at: dt.datetime, manual: bool, attempt: int
    ) -> Outcome | None:
        digest = self._channels.by_name(digest_name)
        if digest is None:
            return None
        outcome = self._poster.run(digest, scheduled_at, manual=manual)
        self._follow_up(digest, outcome, attempt=attempt)
        return outcome

    def _follow_up(self, digest: DigestConfig, outcome: Outcome, *, attempt: int) -> None:
        if outcome.retry_in is None:
            return
        if attempt >= MAX_RETRIES:
            log.error(
                "digest %s %s still not posted after %s retries; it stays open and resumes at "
                "the next worker start",
                digest.name,
                outcome.slot.id,
                attempt,
            )
            return
        self._schedule_retry(
            digest,
            outcome.slot.scheduled_at,
            outcome.slot.manual,
            attempt=attempt + 1,
            delay=outcome.retry_in,
        )

    def _schedule_retry(
        self,
        digest: DigestConfig,
        scheduled_at: dt.datetime,
        manual: bool,
        *,
        attempt: int,
        delay: float,
    ) -> None:
        run_at = self._clock() + dt.timedelta(seconds=delay)
        self.scheduler.add_job(
            retry_job,
            DateTrigger(run_date=run_at, timezone=dt.UTC),
            args=[self.key, digest.name, scheduled_at.isoformat(), manual, attempt],
            id=f"{RETRY}{digest.name}:{scheduled_at.isoformat()}",
            name=f"retry {attempt} of digest {digest.name}",
            replace_existing=True,
            misfire_grace_time=None,  # a retry is never too late: the poster decides
        )

    # --- events -------------------------------------------------------------------------------

    def _on_missed(self, event: JobExecutionEvent) -> None:
        """APScheduler skipped a run beyond the grace window: record and audit it."""
        if not event.job_id.startswith(JOB):
            return
        digest = self._channels.by_name(event.job_id.removeprefix(JOB))
        if digest is not None:
            self._poster.skip_missed(digest, event.scheduled_run_time, "the worker was busy")

    def publish_upcoming(self) -> None:
        """Write the next run of every digest for App Home and ``/churn-admin status``."""
        runs = []
        for job in self.scheduler.get_jobs():
            digest = self._channels.by_name(job.id.removeprefix(JOB))
            if job.id.startswith(JOB) and digest is not None and job.next_run_time is not None:
                runs.append((digest, job.next_run_time))
        try:
            record_upcoming(self._redis, self._prefix, runs)
        except ChurnbotError as exc:
            log.warning("could not publish the next digest runs: %s", exc)
