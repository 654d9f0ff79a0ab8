"""Digests posted exactly once, against the real Redis and the Slack Web API emulator.

Time is a controllable clock (the scheduled time is passed in, sleeps are recorded, never
slept); the only real waits are the emulator's own answers. Counting what reached the
emulator is the proof: every part once, in order, and nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from slack_sdk import WebClient

from bot.deps import Deps, build_deps
from bot.digest.channels import ChannelsConfig, DigestConfig
from bot.digest.claims import SlotClaims
from bot.digest.poster import DigestPoster, Outcome, build_poster
from bot.digest.sender import DIGEST_EVENT, DigestSender
from bot.digest.slots import scheduled_slot
from bot.emulator import SlackEmulator, message_rejection
from bot.settings import Settings, load_settings
from tests.slack_harness import ADMIN, BOOK, CONFIG, make_card, publish

pytestmark = pytest.mark.clock

MARIA = "maria.lopez@example.com"
EAST = "C0CSEAST01"
#: Monday 23 Nov 2026, 09:00 America/New_York: cs-east's scheduled time.
DUE = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)
#: Accounts a cs-east digest shows in the tests: enough for two messages (the first holds 12).
TWO_PARTS = 15


class FakeClock:
    """Wall clock and monotonic clock the tests move by hand; ``sleep`` only records."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.mono = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.mono += seconds


@dataclass
class Rig:
    deps: Deps
    emulator: SlackEmulator
    clock: FakeClock
    poster: DigestPoster
    redis: redis.Redis
    posters: list[DigestPoster] = field(default_factory=list)

    def digest(self, name: str = "cs-east") -> DigestConfig:
        found = self.deps.settings.channels.by_name(name)
        assert found is not None
        return found

    def new_poster(self, client: WebClient | None = None, **sender: Any) -> DigestPoster:
        """Another worker: its own sender and client, the same Redis."""
        client = client or web_client(self.emulator)
        kwargs = {"sleep": self.clock.sleep, "monotonic": self.clock.monotonic, **sender}
        return build_poster(self.deps, DigestSender(client, **kwargs))

    def parts(self, channel: str = EAST) -> list[dict[str, Any]]:
        """Every digest part in the channel: (slot, part) from its metadata, in post order."""
        return [
            {**m["metadata"]["event_payload"], "ts": m["ts"], "thread_ts": m.get("thread_ts")}
            for m in self.emulator.history(channel)
            if m.get("metadata", {}).get("event_type") == DIGEST_EVENT
        ]

    def texts(self, channel: str = EAST) -> str:
        return json.dumps(self.emulator.history(channel), ensure_ascii=False)


def web_client(emulator: SlackEmulator, *, timeout: float = 5) -> WebClient:
    return WebClient(
        token=emulator.token,
        base_url=emulator.base_url,
        retry_handlers=[],
        timeout=timeout,  # type: ignore[arg-type]
    )


def settings_for(emulator: SlackEmulator, **channels: Any) -> Settings:
    settings = load_settings(
        {
            "CHURNBOT_CONFIG": str(CONFIG),
            "SLACK_BOT_TOKEN": emulator.token,
            "SLACK_API_URL": emulator.base_url,
        }
    )
    if channels:
        config = ChannelsConfig.model_validate({**settings.channels.model_dump(), **channels})
        settings = dataclasses.replace(settings, channels=config)
    return settings


@pytest.fixture
def rig(real_redis: redis.Redis) -> Iterator[Rig]:
    with make_rig(real_redis) as made:
        yield made


@contextmanager
def make_rig(
    real_redis: redis.Redis, channels: dict[str, Any] | None = None, **emulator_options: Any
) -> Iterator[Rig]:
    """A poster on the real Redis (own key prefix, deleted after) and a fresh emulator;
    ``channels`` overrides parts of config/channels.yaml."""
    clock = FakeClock(DUE + dt.timedelta(minutes=1))
    prefix = f"test-{uuid.uuid4().hex}"
    try:
        with SlackEmulator(clock=clock.monotonic, **emulator_options) as emulator:
            settings = settings_for(emulator, **(channels or {}))
            if channels is None:
                settings = two_part_east(settings)
            deps = build_deps(settings, client=real_redis, prefix=prefix, clock=clock)
            rig = Rig(deps, emulator, clock, poster=None, redis=real_redis)  # type: ignore[arg-type]
            rig.poster = rig.new_poster()
            yield rig
            deps.background.shutdown(wait=True)
    finally:
        keys = list(real_redis.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            real_redis.unlink(*keys)


def two_part_east(settings: Settings) -> Settings:
    """cs-east showing TWO_PARTS accounts, so that a digest has parts to crash between."""
    config = settings.channels
    digests = tuple(
        d.model_copy(update={"max_accounts": TWO_PARTS}) if d.name == "cs-east" else d
        for d in config.digests
    )
    return dataclasses.replace(settings, channels=config.model_copy(update={"digests": digests}))


def maria_book(n: int, *, risk: float = 0.9, step: float = 0.01) -> list[dict[str, Any]]:
    return [make_card(f"ACC-{i:06d}", f"Account {i}", round(risk - i * step, 4)) for i in range(n)]


def audit_whats(rig: Rig, count: int = 20) -> list[tuple[str, str]]:
    return [(e.what, e.outcome) for e in rig.deps.audit.recent(count)]


# --- exactly once ---------------------------------------------------------------------------


def test_posts_each_part_once_in_order_and_a_retried_job_posts_nothing(rig: Rig) -> None:
    publish(rig.deps, maria_book(TWO_PARTS))
    outcome = rig.poster.run(rig.digest(), DUE)
    assert outcome.status == "posted"
    assert outcome.slot.id == f"{EAST}:2026-11-23T09:00"
    parts = rig.parts()
    assert [(p["part"], p["parts"]) for p in parts] == [(1, 2), (2, 2)], "15 accounts: 2 parts"
    assert parts[0]["thread_ts"] is None
    assert parts[1]["thread_ts"] == parts[0]["ts"], "later parts go in the first part's thread"
    assert list(outcome.ts) == [p["ts"] for p in parts]

    again = rig.poster.run(rig.digest(), DUE)  # a retried job, a second scheduler...
    assert again.status == "already_done"
    assert again.ts == outcome.ts
    assert len(rig.emulator.messages(EAST)) == 2
    assert ("digest posted", "done") in audit_whats(rig)
    entry = rig.deps.audit.recent(1)[0]
    assert entry.who == "scheduler"
    assert entry.detail["slot"] == outcome.slot.id
    assert entry.detail["parts"] == 2


def test_two_workers_racing_for_one_slot_post_it_once(rig: Rig) -> None:
    publish(rig.deps, maria_book(TWO_PARTS))
    workers = [rig.new_poster() for _ in range(6)]
    start = threading.Barrier(len(workers))
    outcomes: list[Outcome] = []

    def work(poster: DigestPoster) -> None:
        start.wait()
        outcomes.append(poster.run(rig.digest(), DUE))

    threads = [threading.Thread(target=work, args=(poster,)) for poster in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(o.status for o in outcomes)
    assert statuses.count("posted") == 1, statuses
    assert set(statuses) <= {"posted", "busy", "already_done"}
    assert [(p["part"]) for p in rig.parts()] == [1, 2]


def test_fall_back_double_fire_posts_once(rig: Rig) -> None:
    """01:30 America/New_York fires at 01:30 EDT and again at 01:30 EST on 1 Nov 2026."""
    publish(rig.deps, BOOK, created=dt.datetime(2026, 11, 1, 5, tzinfo=dt.UTC))
    night = rig.digest().model_copy(update={"schedule": "30 1 * * *"})
    rig.clock.now = dt.datetime(2026, 11, 1, 5, 31, tzinfo=dt.UTC)
    assert rig.poster.fire(night).status == "posted"  # type: ignore[union-attr]
    rig.clock.now = dt.datetime(2026, 11, 1, 6, 31, tzinfo=dt.UTC)
    second = rig.poster.fire(night)
    assert second is not None
    assert second.status == "already_done"
    assert second.slot.key == "2026-11-01T01:30"
    assert len(rig.emulator.messages(EAST)) == 1


class WorkerKilled(BaseException):
    """The process dies: nothing after this line runs, nothing is cleaned up."""


class DyingClient(WebClient):
    """A client whose process dies right after Slack accepted post number ``die_after``, or
    just before sending post number ``die_before``."""

    def __init__(self, *args: Any, die_after: int = 0, die_before: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.posts = 0
        self.die_after = die_after
        self.die_before = die_before

    def chat_postMessage(self, **kwargs: Any) -> Any:
        self.posts += 1
        if self.posts == self.die_before:
            raise WorkerKilled
        response = super().chat_postMessage(**kwargs)
        if self.posts == self.die_after:
            raise WorkerKilled
        return response


def dying(rig: Rig, **when: int) -> DyingClient:
    emulator = rig.emulator
    return DyingClient(token=emulator.token, base_url=emulator.base_url, retry_handlers=[], **when)


def test_worker_dying_after_posting_part_1_before_recording_it(rig: Rig) -> None:
    publish(rig.deps, maria_book(TWO_PARTS))
    doomed = rig.new_poster(dying(rig, die_after=1))
    with pytest.raises(WorkerKilled):
        doomed.run(rig.digest(), DUE)
    assert [p["part"] for p in rig.parts()] == [1], "Slack has part 1; Redis has no ts for it"

    survivor = rig.new_poster()
    busy = survivor.run(rig.digest(), DUE)
    assert busy.status == "busy", "the dead worker's lease still holds the slot"
    assert busy.retry_in is not None
    assert 0 < busy.retry_in <= 61
    assert len(rig.emulator.messages(EAST)) == 1

    expire_claims(rig)  # the lease runs out
    finished = survivor.run(rig.digest(), DUE)
    assert finished.status == "posted"
    assert [p["part"] for p in rig.parts()] == [1, 2], "part 1 found in Slack, not reposted"
    assert rig.emulator.calls("conversations.history"), "the unrecorded part was looked up"
    assert finished.ts[0] == rig.parts()[0]["ts"]


def test_worker_dying_after_posting_the_last_part_before_finishing(rig: Rig) -> None:
    """The last part's ts is written with the finish, in one call: a worker that dies between
    Slack's answer and that call leaves the part pending, and the next run finds it in Slack
    (in the thread of part 1), records it and finishes without posting it again."""
    publish(rig.deps, maria_book(TWO_PARTS))
    doomed = rig.new_poster(dying(rig, die_after=2))
    with pytest.raises(WorkerKilled):
        doomed.run(rig.digest(), DUE)
    assert [p["part"] for p in rig.parts()] == [1, 2]
    [slot_key] = rig.redis.scan_iter(match=f"{rig.deps.prefix}:*:slot:*")
    record = rig.redis.hgetall(slot_key)
    assert record["state"] == "posting"
    assert record["pending"] == "2"
    assert "ts:1" in record
    assert "ts:2" not in record

    expire_claims(rig)
    finished = rig.new_poster().run(rig.digest(), DUE)
    assert finished.status == "posted"
    assert [p["part"] for p in rig.parts()] == [1, 2], "part 2 found in Slack, not reposted"
    assert rig.emulator.calls("conversations.replies"), "the unrecorded last part was looked up"
    assert list(finished.ts) == [p["ts"] for p in rig.parts()]
    assert rig.poster.run(rig.digest(), DUE).status == "already_done"


def test_a_finished_run_records_every_part_and_the_previous_digest(rig: Rig) -> None:
    """One run's record holds the ts of every part (the last one written by the finish) and
    the next slot's claim reads the channel's previous digest with it."""
    publish(rig.deps, maria_book(TWO_PARTS))
    outcome = rig.poster.run(rig.digest(), DUE)
    assert outcome.status == "posted"
    [slot_key] = rig.redis.scan_iter(match=f"{rig.deps.prefix}:*:slot:*")
    record = rig.redis.hgetall(slot_key)
    assert record["state"] == "done"
    assert [record["ts:1"], record["ts:2"]] == list(outcome.ts)
    assert "pending" not in record

    claims = SlotClaims(rig.redis, prefix=rig.deps.prefix)
    later = scheduled_slot("cs-east", EAST, rig.digest().zone, DUE + WEEK)
    claim = claims.claim(later, "token")
    assert claim.status == "claimed"
    assert claim.previous
    assert claim.previous == claims.previous("cs-east")
    assert set(claim.previous) <= {card["account_id"] for card in maria_book(TWO_PARTS)}
    # written compact now; one written by the previous version (json.dumps) reads the same
    [last_key] = rig.redis.scan_iter(match=f"{rig.deps.prefix}:*:last")
    last = json.loads(rig.redis.get(last_key))
    assert set(last) == {"slot", "snapshot_id", "risks"}
    assert last["risks"] == claim.previous
    rig.redis.set(last_key, json.dumps(last))
    after = scheduled_slot("cs-east", EAST, rig.digest().zone, DUE + 2 * WEEK)
    assert claims.claim(after, "token").previous == claim.previous


def test_worker_dying_between_parts_resumes_after_the_last_recorded_part(rig: Rig) -> None:
    publish(rig.deps, maria_book(TWO_PARTS))
    doomed = rig.new_poster(dying(rig, die_before=2))
    with pytest.raises(WorkerKilled):
        doomed.run(rig.digest(), DUE)
    assert [p["part"] for p in rig.parts()] == [1]
    publish(rig.deps, maria_book(TWO_PARTS, risk=0.5))  # a new scoring run in between
    expire_claims(rig)
    finished = rig.new_poster().run(rig.digest(), DUE)
    assert finished.status == "posted"
    parts = rig.parts()
    assert [p["part"] for p in parts] == [1, 2]
    assert parts[1]["thread_ts"] == parts[0]["ts"]
    assert not rig.emulator.calls("conversations.history"), "part 1 was recorded: no lookup"
    second = json.dumps(rig.emulator.history(EAST)[1]["blocks"], ensure_ascii=False)
    assert "78%" in second, "the resumed run posts the rest of the same digest"
    assert "41%" not in rig.texts()


def expire_claims(rig: Rig) -> None:
    """What a lease running out does, without waiting for it."""
    keys = list(rig.redis.scan_iter(match=f"{rig.deps.prefix}:*:claim:*"))
    assert keys, "a claim was held"
    rig.redis.unlink(*keys)


# --- Slack failures -------------------------------------------------------------------------


def test_429_and_5xx_lose_nothing_and_double_nothing(rig: Rig) -> None:
    publish(rig.deps, maria_book(TWO_PARTS))
    rig.emulator.fail_next("chat.postMessage", status=429, retry_after=7, times=2)
    rig.emulator.fail_next("chat.postMessage", status=503, times=2)
    rig.emulator.fail_next("chat.postMessage", status=500)
    outcome = rig.poster.run(rig.digest(), DUE)
    assert outcome.status == "posted"
    assert [p["part"] for p in rig.parts()] == [1, 2]
    statuses = [c.status for c in rig.emulator.calls("chat.postMessage")]
    assert statuses == [429, 429, 503, 503, 500, 200, 200]
    assert rig.clock.sleeps[:2] == [7.0, 7.0], "Retry-After honoured"
    assert rig.clock.sleeps[2:5] == [1.0, 2.0, 4.0], "5xx: exponential backoff"
    assert len(rig.emulator.calls("conversations.history")) == 3, "looked before re-posting"


def test_a_timeout_after_slack_posted_is_not_posted_twice(rig: Rig) -> None:
    publish(rig.deps, BOOK)
    impatient = rig.new_poster(web_client(rig.emulator, timeout=0.2))
    rig.emulator.fail_next("chat.postMessage", delay=0.6)  # posted, answered too late
    outcome = impatient.run(rig.digest(), DUE)
    assert outcome.status == "posted"
    rig.emulator.wait_for("chat.postMessage")
    assert len(rig.emulator.messages(EAST)) == 1
    assert [p["part"] for p in rig.parts()] == [1]


def test_slack_down_beyond_the_budget_leaves_the_slot_resumable(rig: Rig) -> None:
    publish(rig.deps, maria_book(TWO_PARTS))
    rig.emulator.fail_next("chat.postMessage", status=503, times=6)
    failed = rig.poster.run(rig.digest(), DUE)
    assert failed.status == "failed"
    assert failed.retry_in == 300
    assert rig.emulator.messages(EAST) == []
    assert rig.poster.open_slots(rig.digest()) == [(DUE, False)]
    assert ("digest delayed", "failed") in audit_whats(rig)
    rig.clock.now += dt.timedelta(hours=3)  # beyond the grace: a started slot still completes
    assert rig.poster.run(rig.digest(), DUE).status == "posted"
    assert [p["part"] for p in rig.parts()] == [1, 2]
    assert rig.poster.open_slots(rig.digest()) == []


def test_per_channel_pace_keeps_within_one_message_per_second(real_redis: redis.Redis) -> None:
    with make_rig(real_redis, rate_limit_per_channel=1.0) as rig:
        publish(rig.deps, maria_book(25))
        outcome = rig.poster.run(rig.digest().model_copy(update={"max_accounts": 25}), DUE)
        assert outcome.status == "posted"
        assert len(outcome.ts) >= 3
        calls = rig.emulator.calls("chat.postMessage")
        assert all(c.status == 200 for c in calls), "paced: no 429"
        assert rig.clock.sleeps == [1.0] * (len(outcome.ts) - 1)


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel"])
def test_a_channel_the_bot_cannot_post_to_tells_the_admins(rig: Rig, error: str) -> None:
    publish(rig.deps, BOOK)
    if error == "not_in_channel":
        rig.emulator.add_channel(EAST, "cs-east", member=False)
    else:
        rig.emulator.fail_next("chat.postMessage", error="channel_not_found")
    outcome = rig.poster.run(rig.digest(), DUE)
    assert outcome.status == "channel_unavailable"
    notices = rig.emulator.messages(ADMIN)
    assert len(notices) == 1, "the admin (no admin channel configured) gets a DM"
    notice = notices[0].body["text"]
    assert "cs-east" in notice
    assert EAST in notice
    assert error in notice
    assert ("digest failed", "failed") in audit_whats(rig)
    assert rig.poster.run(rig.digest(), DUE).status == "already_done", "told once, not per retry"
    assert len(rig.emulator.messages(ADMIN)) == 1


# --- what the digest shows ------------------------------------------------------------------


def test_long_digest_splits_within_slack_limits_and_keeps_every_account(
    real_redis: redis.Redis,
) -> None:
    with make_rig(real_redis) as rig:
        long_reason = {"code": "usage_decline", "text": "Logins down " + "a lot " * 80, "impact": 1}
        book = [
            make_card(
                f"ACC-{i:06d}",
                f"Account {i} " + "Ω" * 60,
                0.99 - i * 0.01,
                reasons=[long_reason] * 5,
            )
            for i in range(50)
        ]
        publish(rig.deps, book)
        wide = rig.digest().model_copy(update={"max_accounts": 50})
        outcome = rig.poster.run(wide, DUE)
        assert outcome.status == "posted"
        calls = rig.emulator.messages(EAST)
        assert len(calls) == len(outcome.ts) > 3
        shown = []
        for call in calls:
            blocks = call.body["blocks"]
            assert message_rejection(text=call.body["text"], blocks=blocks) is None
            assert len(blocks) <= 50
            shown += [b["block_id"].removeprefix("fb:") for b in blocks if b["type"] == "actions"]
        assert shown == [card["account_id"] for card in book], "every account once, in order"


def test_kill_switch_shows_last_good_data_with_the_banner_then_live_again(rig: Rig) -> None:
    publish(rig.deps, BOOK, as_of="2026-11-16")
    publish(rig.deps, [dict(card, risk=0.99) for card in BOOK], healthy=False)
    rig.deps.switch.trip(
        "Scores drifted: PSI 0.41 > 0.25", who="health-check", source="health_check"
    )
    assert rig.poster.run(rig.digest(), DUE).status == "posted"
    text = rig.texts()
    assert "live scores are paused: Scores drifted: PSI 0.41 > 0.25" in text
    assert "81%" in text
    assert "99%" not in text

    rig.deps.switch.reset(who=ADMIN)
    publish(rig.deps, BOOK, created=DUE + WEEK - dt.timedelta(hours=2))
    rig.clock.now = DUE + WEEK + dt.timedelta(minutes=1)
    assert rig.poster.run(rig.digest(), DUE + WEEK).status == "posted"
    latest = json.dumps(rig.emulator.history(EAST)[-1], ensure_ascii=False)
    assert "live scores are paused" not in latest
    assert "81%" in latest


def test_no_good_snapshot_at_all_gives_an_honest_message(rig: Rig) -> None:
    rig.deps.switch.trip("model file tampered with", who=ADMIN, source="admin")
    assert rig.poster.run(rig.digest(), DUE).status == "posted"
    [message] = rig.emulator.history(EAST)
    assert "No trustworthy churn scores" in message["text"]
    assert "model file tampered with" in json.dumps(message["blocks"])


def test_empty_book_says_so_kindly(rig: Rig) -> None:
    publish(rig.deps, [make_card("ACC-000001", "Calm Co", 0.02)])
    assert rig.poster.run(rig.digest(), DUE).status == "posted"
    assert "No account is above the risk threshold" in rig.texts()


def test_new_and_moved_sharply_marks_compare_with_the_previous_digest(rig: Rig) -> None:
    publish(rig.deps, BOOK)
    rig.poster.run(rig.digest(), DUE)
    assert "🆕" not in rig.texts(), "a channel's first digest marks nothing"
    moved = [dict(c, risk=0.60) if c["account_id"] == "ACC-000002" else c for c in BOOK]
    moved.append(make_card("ACC-000099", "Newcomer Ltd", 0.5))
    publish(rig.deps, moved, created=DUE + WEEK - dt.timedelta(hours=1))
    rig.clock.now = DUE + WEEK
    rig.poster.run(rig.digest(), DUE + WEEK)
    latest = rig.emulator.history(EAST)[-1]["blocks"]
    lines = [b["text"]["text"] for b in latest if b["type"] == "section"]
    assert any(line.startswith("🆕 *Newcomer Ltd*") for line in lines), lines
    assert any(line.startswith("⚡ *Acme Labs*") for line in lines), lines
    assert any(line.startswith("*Acme Corp*") for line in lines), "unchanged: no mark"


# --- late runs ------------------------------------------------------------------------------


def test_missed_digest_within_the_grace_window_is_posted_once(rig: Rig) -> None:
    publish(rig.deps, BOOK)
    rig.clock.now = DUE + dt.timedelta(minutes=110)
    assert rig.poster.fire(rig.digest()).status == "posted"  # type: ignore[union-attr]
    assert rig.poster.fire(rig.digest()).status == "already_done"  # type: ignore[union-attr]
    assert len(rig.emulator.messages(EAST)) == 1


def test_missed_digest_beyond_the_grace_window_is_skipped_logged_and_audited(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    publish(rig.deps, BOOK)
    rig.clock.now = DUE + dt.timedelta(hours=3)
    outcome = rig.poster.run(rig.digest(), DUE)
    assert outcome.status == "skipped"
    assert "180 min late, beyond the 120 min grace window" in outcome.reason
    assert rig.emulator.messages(EAST) == []
    assert "skipped" in caplog.text
    entry = rig.deps.audit.recent(1)[0]
    assert (entry.what, entry.outcome, entry.who) == ("digest skipped", "skipped", "scheduler")
    assert rig.poster.run(rig.digest(), DUE).status == "already_done"
    assert not rig.poster.skip_missed(rig.digest(), DUE, "again"), "audited once"
