"""The worker's APScheduler wiring on the real Redis job store: jobs from config, replaced at
every start, missed runs within and beyond the grace window, retries, resumed slots, and one
real scheduler run (bounded wait on the emulator, no sleeps)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from bot.digest.channels import ChannelsConfig
from bot.digest.scheduler import (
    WEEKLY,
    DigestWorker,
    WorkerError,
    build_scheduler,
    fire_job,
    job_store,
    weekly_job,
)
from tests.slack_harness import BOOK, publish
from tests.test_digest_posting import (
    DUE,
    EAST,
    TWO_PARTS,
    WEEK,
    Rig,
    WorkerKilled,
    dying,
    expire_claims,
    make_rig,
    maria_book,
)

pytestmark = pytest.mark.clock


@contextmanager
def running(
    rig: Rig,
    channels: ChannelsConfig | None = None,
    *,
    paused: bool = True,
    weekly: Callable[[], None] | None = None,
) -> Iterator[DigestWorker]:
    """A worker on the rig's Redis, started (paused unless asked), stopped after."""
    config = channels or rig.deps.settings.channels
    worker = DigestWorker(
        key=rig.deps.prefix,
        poster=rig.poster,
        channels=config,
        scheduler=build_scheduler(job_store(rig.redis, rig.deps.prefix), config, threads=2),
        redis=rig.redis,
        prefix=rig.deps.prefix,
        clock=rig.clock,
        weekly=weekly,
    )
    worker.start(paused=paused)
    try:
        yield worker
    finally:
        worker.stop(wait=True)


def only(rig: Rig, *names: str) -> ChannelsConfig:
    config = rig.deps.settings.channels
    return config.model_copy(
        update={"digests": tuple(d for d in config.digests if d.name in names)}
    )


@pytest.fixture
def rig(real_redis: redis.Redis) -> Iterator[Rig]:
    with make_rig(real_redis) as made:
        yield made


def test_jobs_come_from_config_with_defaults_set_on_purpose(rig: Rig) -> None:
    with running(rig) as worker:
        jobs = {job.id: job for job in worker.scheduler.get_jobs(jobstore="default")}
        assert set(jobs) == {"digest:cs-east", "digest:cs-west", "digest:enterprise"}
        local = {job.id for job in worker.scheduler.get_jobs(jobstore="local")}
        assert local == {"heartbeat", "resume"}, "the worker's own jobs are not shared"
        east = jobs["digest:cs-east"]
        assert (east.misfire_grace_time, east.coalesce, east.max_instances) == (7200, True, 1)
        assert str(east.trigger.timezone) == "America/New_York"
        assert str(worker.scheduler.timezone) == "UTC"
        assert east.next_run_time == DUE + WEEK, "the next Monday 09:00 in New York"
        assert rig.redis.hlen(f"{rig.deps.prefix}:{{scheduler}}:jobs") == 3
        assert rig.redis.zcard(f"{rig.deps.prefix}:{{scheduler}}:run_times") == 3
    upcoming = rig.deps.next_digests()
    assert upcoming == [
        ("cs-west → C0CSWEST01", "Mon 23 Nov 09:00 PST"),
        ("enterprise → C0ENTERPR1", "Thu 26 Nov 08:30 CET"),
        ("cs-east → C0CSEAST01", "Mon 30 Nov 09:00 EST"),
    ]


def test_restart_replaces_jobs_and_drops_removed_digests(rig: Rig) -> None:
    with running(rig):
        pass
    with running(rig, only(rig, "cs-east", "enterprise")) as worker:
        assert {job.id for job in worker.scheduler.get_jobs(jobstore="default")} == {
            "digest:cs-east",
            "digest:enterprise",
        }
    with running(rig, only(rig, "cs-east", "enterprise")) as worker:
        assert len(worker.scheduler.get_jobs(jobstore="default")) == 2, "replaced, not added"
    # cs-east fell due a minute ago: a restart makes it due again (its record decides).
    assert rig.deps.next_digests() == [
        ("cs-east → C0CSEAST01", "Mon 23 Nov 09:00 EST"),
        ("enterprise → C0ENTERPR1", "Thu 26 Nov 08:30 CET"),
    ]


def test_the_weekly_summary_job_survives_syncs_and_runs_the_callback(rig: Rig) -> None:
    sent: list[str] = []
    with running(rig, weekly=lambda: sent.append("summary")) as worker:
        job = worker.scheduler.get_job(WEEKLY)
        assert job is not None
        assert job.next_run_time.weekday() == 0
        assert job.next_run_time.astimezone(dt.UTC).hour == 8
        worker.sync()
        assert worker.scheduler.get_job(WEEKLY) is not None, "sync keeps it"
        weekly_job(rig.deps.prefix)
    assert sent == ["summary"]


def test_one_worker_per_key_in_a_process(rig: Rig) -> None:
    with running(rig), pytest.raises(WorkerError, match="already runs"), running(rig):
        pass


def test_a_run_missed_while_down_goes_out_within_the_grace_window(rig: Rig) -> None:
    publish(rig.deps, BOOK, created=DUE)
    rig.clock.now = DUE - dt.timedelta(hours=1)
    with running(rig, only(rig, "cs-east")):
        pass  # the job now waits for DUE, but the worker goes down
    rig.clock.now = DUE + dt.timedelta(minutes=30)
    with running(rig, only(rig, "cs-east")) as worker:
        assert worker.scheduler.get_job("digest:cs-east").next_run_time == DUE, "due at once"
        fire_job(worker.key, "cs-east")  # what the scheduler runs when it resumes
        fire_job(worker.key, "cs-east")  # and a second scheduler during a deploy
    assert len(rig.emulator.messages(EAST)) == 1


def test_runs_missed_beyond_the_grace_window_are_skipped_and_audited(rig: Rig) -> None:
    rig.clock.now = DUE - dt.timedelta(hours=1)
    with running(rig, only(rig, "cs-east")):
        pass
    rig.clock.now = DUE + WEEK + dt.timedelta(hours=5)  # down for two Mondays
    with running(rig, only(rig, "cs-east")) as worker:
        job = worker.scheduler.get_job("digest:cs-east")
        assert job.next_run_time == DUE + 2 * WEEK
    skipped = [e for e in rig.deps.audit.recent(10) if e.what == "digest skipped"]
    assert sorted(e.detail["slot"] for e in skipped) == [
        f"{EAST}:2026-11-23T09:00",
        f"{EAST}:2026-11-30T09:00",
    ]
    assert all("no worker was running" in e.why for e in skipped)
    assert rig.emulator.messages(EAST) == []


def test_fire_job_posts_the_slot_of_its_scheduled_time(rig: Rig) -> None:
    publish(rig.deps, BOOK, created=DUE)
    with running(rig) as worker:
        fire_job(worker.key, "cs-east")
        assert rig.poster.run(rig.digest(), DUE).status == "already_done"
    assert len(rig.emulator.messages(EAST)) == 1
    assert rig.deps.audit.recent(1)[0].detail["slot"] == f"{EAST}:2026-11-23T09:00"


def test_slack_down_leaves_a_retry_in_redis_that_the_resume_job_completes(rig: Rig) -> None:
    publish(rig.deps, maria_book(TWO_PARTS), created=DUE)
    rig.emulator.fail_next("chat.postMessage", status=503, times=6)
    with running(rig) as worker:
        outcome = worker.fire("cs-east")
        assert outcome is not None
        assert outcome.status == "failed"
        assert {job.id for job in worker.scheduler.get_jobs(jobstore="default")} == {
            "digest:cs-east",
            "digest:cs-west",
            "digest:enterprise",
        }, "no one-shot retry job in the shared store"
        assert worker.resume_open() == [], "not before its retry time"
        rig.clock.now += dt.timedelta(minutes=5)
        assert [o.status for o in worker.resume_open()] == ["posted"]
    assert len(rig.emulator.messages(EAST)) == 2


def test_a_slot_left_open_by_a_crash_is_resumed_at_the_next_start(rig: Rig) -> None:
    publish(rig.deps, maria_book(TWO_PARTS), created=DUE)
    with pytest.raises(WorkerKilled):
        rig.new_poster(dying(rig, die_before=2)).run(rig.digest(), DUE)
    expire_claims(rig)
    rig.clock.now = DUE + dt.timedelta(hours=6)  # long after the grace window
    with running(rig) as worker:
        assert [o.status for o in worker.resume_open()] == ["posted"], "the open slot resumed"
    assert len(rig.emulator.messages(EAST)) == 2


def test_the_real_scheduler_fires_a_due_job(real_redis: redis.Redis) -> None:
    every_minute: dict[str, Any] = {
        "digests": [
            {
                "name": "cs-east",
                "channel": EAST,
                "owners": ["maria.lopez@example.com"],
                "schedule": "* * * * *",
                "timezone": "America/New_York",
                "min_risk": 0.12,
            }
        ]
    }
    with make_rig(real_redis, channels=every_minute) as rig:
        rig.clock.now = dt.datetime.now(dt.UTC)
        publish(rig.deps, BOOK, created=rig.clock.now)
        with running(rig) as worker:
            worker.scheduler.modify_job("digest:cs-east", next_run_time=rig.clock.now)
            worker.scheduler.resume()
            rig.emulator.wait_for("chat.postMessage", timeout=10)
        assert len(rig.emulator.messages(EAST)) == 1
        assert rig.deps.next_digests(), "next runs refreshed after the run was submitted"


def test_stopping_a_worker_leaves_a_job_due_by_the_wall_clock_untouched(rig: Rig) -> None:
    """APScheduler's shutdown runs one more round of due jobs by the wall clock; ours must not:
    the job stays due, nothing is reported missed, nothing is submitted."""
    wall_due = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)
    with running(rig, only(rig, "cs-east")) as worker:
        worker.scheduler.modify_job("digest:cs-east", next_run_time=wall_due)
    run_times = f"{rig.deps.prefix}:{{scheduler}}:run_times"
    assert rig.redis.zscore(run_times, "digest:cs-east") == wall_due.timestamp(), "still due"
    assert [e for e in rig.deps.audit.recent(10) if e.what == "digest skipped"] == []
