"""Worker faults of issue 11: two schedulers on one job store, the kill switch tripped in the
middle of a digest, a publish cut off half-way, Slack down for a long time, and scheduled
scoring run once per period however many workers there are.

Real Redis, the Web API emulator and (for the two-scheduler case) real APScheduler threads;
the poster's time is the injected clock, waits are bounded polls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from slack_sdk import WebClient

from bot.cli.worker import scheduled_scoring
from bot.digest.metrics import WorkerMetrics
from bot.digest.poster import DigestPoster, build_poster
from bot.digest.scheduler import DigestWorker, build_scheduler, heartbeat_key, job_store
from bot.digest.scoring import ScheduledScoring
from bot.digest.sender import DigestSender
from bot.digest.slots import manual_slot
from bot.publish import RunResult
from bot.state import SnapshotMeta, SnapshotStore, connect
from models.errors import ChurnbotError
from models.health import CheckResult
from tests.polling import wait_until
from tests.slack_harness import ADMIN, publish
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
    web_client,
)

pytestmark = pytest.mark.clock

POLL_TIMEOUT_S = 10.0


@pytest.fixture
def rig(real_redis: redis.Redis) -> Iterator[Rig]:
    with make_rig(real_redis) as made:
        yield made


def poster_with(rig: Rig, metrics: WorkerMetrics) -> DigestPoster:
    sender = DigestSender(
        web_client(rig.emulator), sleep=rig.clock.sleep, monotonic=rig.clock.monotonic
    )
    return build_poster(rig.deps, sender, metrics=metrics)


def worker_for(rig: Rig, name: str, **options: Any) -> DigestWorker:
    """One more worker process's worth: its own key, scheduler and poster; the shared store."""
    config = rig.deps.settings.channels
    return DigestWorker(
        key=f"{rig.deps.prefix}#{name}",
        poster=options.pop("poster", None) or rig.new_poster(),
        channels=config,
        scheduler=build_scheduler(job_store(rig.redis, rig.deps.prefix), config, threads=2),
        redis=rig.redis,
        prefix=rig.deps.prefix,
        clock=rig.clock,
        **options,
    )


def sample(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


# --- 1. two schedulers on one job store -------------------------------------------------------


@pytest.mark.parametrize("round_", range(3))
def test_two_schedulers_resuming_one_slot_both_keep_firing(rig: Rig, round_: int) -> None:
    """Before: each start scheduled a one-shot ``retry:`` job in the shared store, both
    schedulers ran it, and the second removal killed a scheduler thread (7 of 10 repro runs)."""
    rig.clock.now = dt.datetime.now(dt.UTC)  # the real threads fire by the wall clock
    publish(rig.deps, maria_book(TWO_PARTS), created=rig.clock.now)
    slot_time = rig.clock.now.replace(second=0, microsecond=0)
    with pytest.raises(WorkerKilled):  # a worker died in the middle of a ``digest now``
        rig.new_poster(dying(rig, die_before=2)).run(rig.digest(), slot_time, manual=True)
    expire_claims(rig)
    workers = [worker_for(rig, "a"), worker_for(rig, "b")]
    for worker in workers:
        worker.start(paused=True)
    try:
        for worker in workers:
            worker.start_firing()
        rig.emulator.wait_for(lambda c: c.method == "chat.postMessage" and c.ok, count=2)
        wait_until(
            lambda: not rig.poster.open_slots(rig.digest()),
            "the slot to close",
            timeout=POLL_TIMEOUT_S,
        )
        assert [job.id for job in workers[0].scheduler.get_jobs(jobstore="default")] == [
            job.id for job in workers[1].scheduler.get_jobs(jobstore="default")
        ]
        assert not any(
            job.id.startswith("retry:") for job in workers[0].scheduler.get_jobs(jobstore="default")
        ), "no one-shot job in the shared store"
        assert [worker.health() for worker in workers] == [None, None]
        for worker in workers:  # each scheduler still turns: its heartbeat job runs again
            rig.redis.delete(heartbeat_key(rig.deps.prefix, worker.id))
            worker.scheduler.modify_job(
                "heartbeat", jobstore="local", next_run_time=dt.datetime.now(dt.UTC)
            )
            wait_until(
                lambda w=worker: rig.redis.exists(heartbeat_key(rig.deps.prefix, w.id)),
                f"a heartbeat from worker {worker.key}",
                timeout=POLL_TIMEOUT_S,
            )
    finally:
        for worker in workers:
            worker.stop(wait=True)
    by_slot: dict[str, list[int]] = {}
    for part in rig.parts():
        by_slot.setdefault(part["slot"], []).append(part["part"])
    digest = rig.digest()
    slot = manual_slot(digest.name, digest.channel, digest.zone, slot_time)
    assert by_slot.pop(slot.id) == [1, 2], "the digest completed once"
    # The real threads fire by the wall clock: on a Monday just after 09:00 New York time the
    # scheduled cs-east digest is due as well, and must go out once too.
    assert all(parts == [1, 2] for parts in by_slot.values()), by_slot


def test_a_job_another_scheduler_removed_first_does_not_raise(rig: Rig) -> None:
    mine, theirs = job_store(rig.redis, rig.deps.prefix), job_store(rig.redis, rig.deps.prefix)
    with contextlib.ExitStack() as stack:
        worker = worker_for(rig, "a")
        worker.start(paused=True)
        stack.callback(worker.stop)
        job = worker.scheduler.get_job("digest:cs-east", jobstore="default")
        assert job is not None
        theirs.remove_job(job.id)  # the other scheduler (or a newer config) removed it
        mine.update_job(job)  # what the loop does after running it: no JobLookupError
        mine.remove_job(job.id)
        assert worker.scheduler.get_job("digest:cs-east", jobstore="default") is None


def test_a_dead_or_silent_scheduler_is_reported(rig: Rig) -> None:
    clock = {"mono": 0.0}
    worker = worker_for(rig, "a", monotonic=lambda: clock["mono"], heartbeat_seconds=15)
    worker.start(paused=True)
    try:
        assert worker.health() is None, "paused (tests, start-up): nothing to report"
        worker.start_firing()
        assert worker.health() is None
        assert sample(worker.metrics, "churnbot_worker_scheduler_up") == 1
        clock["mono"] += 61  # four heartbeats missed
        assert "has not run its heartbeat job for more than 60 s" in (worker.health() or "")
        assert sample(worker.metrics, "churnbot_worker_scheduler_up") == 0
        worker.scheduler.shutdown(wait=True)  # the thread is gone
        assert worker.health() == "the scheduler thread died"
    finally:
        worker.stop(wait=True)


def test_the_heartbeat_beats_while_every_digest_thread_is_busy(rig: Rig) -> None:
    """Digests waiting out a Slack outage may fill the pool: that is not a dead scheduler."""
    worker = worker_for(rig, "a")  # a pool of two threads
    release, running = threading.Event(), threading.Semaphore(0)

    def busy() -> None:
        running.release()
        release.wait(6 * POLL_TIMEOUT_S)  # longer than any wait below: released at the end

    worker.start(paused=True)
    try:
        worker.start_firing()
        for n in range(2):
            worker.scheduler.add_job(busy, id=f"busy-{n}", jobstore="local")
        for _ in range(2):
            assert running.acquire(timeout=POLL_TIMEOUT_S), "both digest threads taken"
        rig.redis.delete(heartbeat_key(rig.deps.prefix, worker.id))
        worker.scheduler.modify_job(
            "heartbeat", jobstore="local", next_run_time=dt.datetime.now(dt.UTC)
        )
        wait_until(
            lambda: rig.redis.exists(heartbeat_key(rig.deps.prefix, worker.id)),
            "a heartbeat",
            timeout=POLL_TIMEOUT_S,
        )
    finally:
        release.set()
        worker.stop(wait=True)


# --- 2. the kill switch at send time ----------------------------------------------------------


def test_a_digest_resumed_after_the_switch_went_on_shows_no_live_score_unbannered(
    rig: Rig,
) -> None:
    """Before: the resumed run posted the rest of its stored plan, live scores, no banner."""
    publish(rig.deps, maria_book(TWO_PARTS, risk=0.6), as_of="2026-11-16")
    publish(rig.deps, maria_book(TWO_PARTS, risk=0.99, step=0.0), healthy=False)
    with pytest.raises(WorkerKilled):
        rig.new_poster(dying(rig, die_before=2)).run(rig.digest(), DUE)
    assert "99%" in rig.texts(), "part 1 went out with the live (untrusted) scores"
    rig.deps.switch.trip("Scores drifted: PSI 0.41 > 0.25", who=ADMIN, source="admin")
    rig.clock.now += dt.timedelta(seconds=60)
    expire_claims(rig)
    assert rig.poster.run(rig.digest(), DUE).status == "posted"
    history = rig.emulator.history(EAST)
    unbannered_live = [
        m for m in history if "99%" in json.dumps(m) and "live scores are paused" not in str(m)
    ]
    assert unbannered_live == []
    assert "99%" not in rig.texts(), "part 1 was edited to the last good scores"
    assert "live scores are paused: Scores drifted" in json.dumps(history[0])
    assert [p["part"] for p in rig.parts()] == [1, 2]
    assert len(rig.emulator.calls("chat.update")) == 1


def test_every_part_checks_the_switch_when_it_is_sent(rig: Rig) -> None:
    """The switch trips between part 1 and part 2 of one uninterrupted run: an admin trips it
    the moment Slack has accepted part 1 (before the run records it), so only the read that
    precedes part 2 can see it. However the reads are batched, part 2 must not go out with
    the live scores, and part 1 is edited to the last good ones."""
    publish(rig.deps, maria_book(TWO_PARTS, risk=0.6), as_of="2026-11-16")
    publish(rig.deps, maria_book(TWO_PARTS, risk=0.99, step=0.0), healthy=False)
    tripping = TrippingClient(
        token=rig.emulator.token, base_url=rig.emulator.base_url, retry_handlers=[], rig=rig
    )
    assert rig.new_poster(tripping).run(rig.digest(), DUE).status == "posted"
    assert tripping.posts == 2
    assert "99%" not in rig.texts()
    assert [p["part"] for p in rig.parts()] == [1, 2]
    assert len(rig.emulator.calls("chat.update")) == 1


class TrippingClient(WebClient):
    """A client whose first accepted post is followed at once by an admin tripping the switch."""

    def __init__(self, *args: Any, rig: Rig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rig = rig
        self.posts = 0

    def chat_postMessage(self, **kwargs: Any) -> Any:
        response = super().chat_postMessage(**kwargs)
        self.posts += 1
        if self.posts == 1:
            self.rig.deps.switch.trip("bad data", who=ADMIN, source="admin")
        return response


# --- 3. a publish cut off half-way ------------------------------------------------------------


class Cutter:
    """A TCP proxy to Redis that forwards the client's bytes until ``then`` follows ``marker``
    in the stream, cuts the connection just before it, and then refuses everything: a
    publisher cut off (or killed) half-way through sending a batch."""

    def __init__(self, upstream: tuple[str, int], marker: bytes, then: bytes) -> None:
        self.upstream, self.marker, self.then = upstream, marker, then
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while not self.cut.is_set():
                client, _ = self.listener.accept()
                if self.cut.is_set():
                    client.close()
                    break
                server = socket.create_connection(self.upstream)
                threading.Thread(target=self._up, args=(client, server), daemon=True).start()
                threading.Thread(target=self._down, args=(client, server), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        data, sent = b"", 0
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                data += chunk
                at = data.find(self.marker)
                stop = -1 if at < 0 else data.find(self.then, at + len(self.marker))
                if stop >= 0:
                    server.sendall(data[sent:stop])
                    self.cut.set()
                    break
                safe = len(data) if at < 0 else max(sent, len(data) - len(self.then) + 1)
                server.sendall(data[sent:safe])
                sent = safe
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self.cut.is_set():
            self.listener.close()

    def _down(self, client: socket.socket, server: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := server.recv(65536):
                client.sendall(chunk)


def test_a_publish_cut_off_half_way_leaves_only_keys_that_expire(
    real_redis: redis.Redis,
) -> None:
    """Before: the second batch's keys were written and their EXPIRE never arrived."""
    prefix = f"test-{uuid.uuid4().hex}"
    kwargs = real_redis.connection_pool.connection_kwargs
    cutter = Cutter((kwargs["host"], kwargs["port"]), marker=b"HSET", then=b"EXPIRE")
    client = connect(f"redis://127.0.0.1:{cutter.port}/{kwargs.get('db', 0)}")
    store = SnapshotStore(client, prefix=prefix, batch_size=2)
    cards = [
        {
            "account_id": f"ACC-{i:06d}",
            "account_name": f"Account {i}",
            "risk": 0.5,
            "owner": f"owner{i}@example.com",
            "segment": "smb",
        }
        for i in range(4)
    ]
    meta = SnapshotMeta(
        snapshot_id="s1", as_of="2026-11-20", model_version="m1",
        created_at=DUE.isoformat(), healthy=True, n_accounts=4, health=[],
    )  # fmt: skip
    try:
        with pytest.raises(ChurnbotError, match="Redis"):
            store.publish_cards(meta, iter(cards))
        assert cutter.cut.is_set(), "the publish was cut off in its second batch"
        keys = sorted(real_redis.scan_iter(match=f"{prefix}:*"))
        assert keys, "the first batch was staged"
        ttls = {key: real_redis.ttl(key) for key in keys}
        assert all(ttl > 0 for ttl in ttls.values()), ttls
        assert not any("owner2" in key for key in keys), "the cut batch left nothing"
    finally:
        client.close()
        leftovers = list(real_redis.scan_iter(match=f"{prefix}:*"))
        if leftovers:
            real_redis.unlink(*leftovers)


# --- 4. Slack down for a long time ------------------------------------------------------------


def test_slack_down_retries_slower_until_it_answers_then_tells_the_admins_once(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = WorkerMetrics()
    worker = worker_for(rig, "a", poster=poster_with(rig, metrics), metrics=metrics)
    publish(rig.deps, maria_book(TWO_PARTS), created=DUE)
    rig.emulator.fail_next("chat.postMessage", status=503, times=6 * 3)
    worker.start(paused=True)
    try:
        first = worker.fire("cs-east")
        assert first is not None
        waits = [first.retry_in]
        for _ in range(2):
            assert worker.resume_open() == [], "not before its retry time"
            rig.clock.now += dt.timedelta(seconds=waits[-1] or 0)
            [again] = worker.resume_open()
            assert again.status == "failed"
            waits.append(again.retry_in)
        assert waits == [300, 600, 1200], "slower each time"
        assert sample(metrics, "churnbot_digests_total", outcome="delayed") == 3
        assert sample(metrics, "churnbot_slack_failing") == 1
        errors = [r for r in caplog.records if r.levelname == "ERROR" and "Slack keeps" in r.msg]
        assert len(errors) == 3
        assert rig.emulator.messages(ADMIN) == [], "Slack is down: nobody can be told yet"

        rig.clock.now += dt.timedelta(seconds=1200)  # Slack answers again
        assert [o.status for o in worker.resume_open()] == ["posted"]
        assert sample(metrics, "churnbot_slack_failing") == 0
        assert sample(metrics, "churnbot_digests_total", outcome="posted") == 1
        [notice] = rig.emulator.messages(ADMIN)
        assert "Slack is answering" in notice.body["text"]
        assert "cs-east" in notice.body["text"]
        assert "posted late, after 3 failed run(s)" in notice.body["text"]
        publish(rig.deps, maria_book(TWO_PARTS), created=DUE + WEEK)
        rig.clock.now = DUE + WEEK + dt.timedelta(minutes=1)
        assert worker.fire("cs-east").status == "posted"  # type: ignore[union-attr]
        assert len(rig.emulator.messages(ADMIN)) == 1, "told once"
    finally:
        worker.stop(wait=True)


def test_a_digest_slack_failed_for_its_whole_period_is_closed_and_reported(rig: Rig) -> None:
    metrics = WorkerMetrics()
    worker = worker_for(rig, "a", poster=poster_with(rig, metrics), metrics=metrics)
    publish(rig.deps, maria_book(TWO_PARTS), created=DUE)
    rig.emulator.fail_next("chat.postMessage", status=503, times=6)
    worker.start(paused=True)
    try:
        assert worker.fire("cs-east").status == "failed"  # type: ignore[union-attr]
        rig.clock.now = DUE + WEEK  # Slack never came back before the next digest was due
        statuses = sorted(o.status for o in worker.resume_open())
        assert statuses == ["failed", "posted"], "old slot closed, this week's digest posted"
        assert rig.poster.open_slots(rig.digest()) == []
        assert sample(metrics, "churnbot_digests_total", outcome="failed") == 1
        [notice] = rig.emulator.messages(ADMIN)
        assert "not posted: Slack failed until its next run was due" in notice.body["text"]
    finally:
        worker.stop(wait=True)


# --- 5. scheduled scoring ---------------------------------------------------------------------


def healthy_result(rig: Rig) -> RunResult:
    meta = SnapshotMeta(
        snapshot_id=f"{rig.clock.now:%Y%m%dT%H%M%S}-m1",
        as_of="2026-11-22",
        model_version="m1",
        created_at=rig.clock.now.isoformat(),
        healthy=True,
        n_accounts=1,
        health=[],
    )
    return RunResult((CheckResult("freshness", True, "ok"),), meta, tripped=False)


def test_scoring_runs_once_per_period_whatever_the_number_of_workers(rig: Rig) -> None:
    config = rig.deps.settings.channels.scoring
    assert (config.schedule, config.timezone) == ("0 5 * * *", "UTC"), "daily by default"
    runs: list[str] = []

    def run() -> RunResult:
        runs.append("run")
        return healthy_result(rig)

    scorings = [
        ScheduledScoring(
            redis=rig.redis,
            prefix=rig.deps.prefix,
            config=config,
            run=run,
            clock=rig.clock,
            grace=dt.timedelta(hours=2),
            metrics=metrics,
        )
        for metrics in (WorkerMetrics(), WorkerMetrics())
    ]
    rig.clock.now = dt.datetime(2026, 11, 24, 5, 0, 3, tzinfo=dt.UTC)
    assert [s.fire() for s in scorings] == ["healthy", "skipped"]
    assert runs == ["run"]
    rig.clock.now += dt.timedelta(days=1)
    assert [s.fire() for s in reversed(scorings)] == ["healthy", "skipped"]
    assert len(runs) == 2
    metrics = scorings[0]._metrics
    assert sample(metrics, "churnbot_scoring_runs_total", outcome="healthy") == 1
    assert sample(metrics, "churnbot_scoring_last_success_timestamp_seconds") == (
        rig.clock.now.timestamp()
    ), "the other worker's success shows too (read from Redis)"


def test_a_scheduled_run_that_leaves_the_switch_on_says_so(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A passing run does not turn the switch off by itself; the worker's log says it is on."""
    state = rig.deps.switch.trip("Scores drifted", who="health-check", source="health_check")
    scoring = ScheduledScoring(
        redis=rig.redis,
        prefix=rig.deps.prefix,
        config=rig.deps.settings.channels.scoring,
        run=lambda: dataclasses.replace(healthy_result(rig), paused=state),
        clock=rig.clock,
        grace=dt.timedelta(hours=2),
        metrics=WorkerMetrics(),
    )
    rig.clock.now = dt.datetime(2026, 11, 24, 5, 0, 3, tzinfo=dt.UTC)
    with caplog.at_level(logging.WARNING, logger="bot.digest.scoring"):
        assert scoring.fire() == "healthy"
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "the kill switch is still on" in warning
    assert "by health-check: Scores drifted" in warning


def test_the_worker_scores_with_the_score_command_and_reports_snapshot_age(rig: Rig) -> None:
    metrics = WorkerMetrics()
    scoring = scheduled_scoring(rig.deps, metrics)
    assert scoring is not None
    rig.clock.now = dt.datetime(2026, 11, 24, 5, 1, tzinfo=dt.UTC)
    # No account data at the default location: the real scoring run fails its input check,
    # trips the switch and tells the admins, as `churnbot score` does.
    assert scoring.fire() == "unhealthy"
    assert rig.deps.switch.state().on
    assert any("health checks" in m.body["text"] for m in rig.emulator.messages(ADMIN))
    publish(rig.deps, maria_book(3), created=rig.clock.now - dt.timedelta(hours=30))
    metrics.watch_snapshots(rig.deps.store, 24, rig.clock)
    assert sample(metrics, "churnbot_snapshot_age_seconds") == 30 * 3600
    assert sample(metrics, "churnbot_freshness_sla_seconds") == 24 * 3600


def test_a_scoring_section_is_checked_like_a_digest(rig: Rig) -> None:
    from bot.digest.channels import ChannelsConfig

    with pytest.raises(ValueError, match=r"scoring\.timezone"):
        ChannelsConfig.model_validate({"scoring": {"timezone": "Mars/Olympus"}})
    off = ChannelsConfig.model_validate({"scoring": {"enabled": False}})
    assert not off.scoring.enabled
