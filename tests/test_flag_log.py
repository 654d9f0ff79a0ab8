"""The flag log in Redis (bot/state/flag_log.py) and the track record gathered from it."""

from __future__ import annotations

import datetime as dt

import redis

from bot.deps import build_deps
from bot.feedback import feedback_store
from bot.feedback.outcomes import Outcome
from bot.feedback.track_record import (
    TrackSummary,
    cached_summary,
    refresh_summary,
    track_summary,
)
from bot.settings import load_settings
from bot.state.flag_log import ABSTAINED, BAND_AT, FlagLog, FlagTally
from bot.state.snapshots import SnapshotMeta, SnapshotStore
from models.packing import HEADER_ROW
from models.track_record import Rate, flag_entry
from tests.polling import wait_until
from tests.redis_fixtures import key_prefix, redis_client  # noqa: F401 - fixtures
from tests.sample_config import CONFIG, spec
from tests.slack_harness import make_card

DAY = dt.date(2026, 8, 10)
CALIBRATION = [
    {"count": 500, "mean_predicted": 0.05, "observed_rate": 0.04},
    {"count": 200, "mean_predicted": 0.2, "observed_rate": 0.18},
    {"count": 100, "mean_predicted": 0.6, "observed_rate": 0.55},
]


def meta(day: dt.date, *, healthy: bool = True, n: int = 100) -> SnapshotMeta:
    return SnapshotMeta(
        snapshot_id=f"{day:%Y%m%d}T060000-v1",
        as_of=day.isoformat(),
        model_version="v1",
        created_at=f"{day.isoformat()}T06:00:00+00:00",
        healthy=healthy,
        n_accounts=n,
        health=[],
    )


def cards(n: int = 100) -> list[dict[str, object]]:
    """Accounts A0..A(n-1): the first 20 high, the next 30 medium, one abstained, the rest low."""
    out: list[dict[str, object]] = []
    for i in range(n):
        band = "high" if i < 20 else "medium" if i < 50 else "low"
        card: dict[str, object] = {"account_id": f"A{i}", "band": band, "risk": 0.5}
        if i == 99:
            card["abstain"] = {"missing": ["Seats used"]}
        out.append(card)
    return out


def test_a_published_snapshot_leaves_its_flags(
    redis_client: redis.Redis,  # noqa: F811
    key_prefix: str,  # noqa: F811
) -> None:
    log = FlagLog(redis_client, prefix=key_prefix)
    entry = log.record_snapshot(meta(DAY), iter(cards()), spec=spec(), calibration=CALIBRATION)
    assert entry is not None
    assert entry.bands == {"high": 20, "medium": 30, "low": 49, ABSTAINED: 1}
    assert entry.flagged == tuple(sorted(f"A{i}" for i in range(20)))
    assert len(entry.sample) == 100, "a book smaller than the sample is kept whole"
    assert entry.evaluation == {
        "high": Rate(55, 100),
        "medium": Rate(36, 200),
        "low": Rate(20, 500),
    }
    assert log.entries(DAY, DAY) == [entry]
    assert log.latest() == entry
    unhealthy = meta(DAY + dt.timedelta(days=1), healthy=False)
    assert log.record_snapshot(unhealthy, iter(cards()), spec=spec()) is None, "never served"
    assert log.latest() == entry


def test_entries_older_than_three_horizons_are_dropped(
    redis_client: redis.Redis,  # noqa: F811
    key_prefix: str,  # noqa: F811
) -> None:
    log = FlagLog(redis_client, prefix=key_prefix)
    old = DAY - dt.timedelta(days=271)
    log.record_snapshot(meta(old), iter(cards()), spec=spec())
    log.record_snapshot(meta(DAY - dt.timedelta(days=270)), iter(cards()), spec=spec())
    assert len(log.entries(old, DAY)) == 2
    log.record_snapshot(meta(DAY), iter(cards()), spec=spec())
    assert [e.as_of for e in log.entries(old, DAY)] == [DAY - dt.timedelta(days=270), DAY]
    assert not redis_client.exists(f"{key_prefix}:{{default}}:flags:{meta(old).snapshot_id}")


def test_the_track_summary_counts_real_outcomes_and_is_cached(
    real_redis: redis.Redis, real_prefix: str
) -> None:
    today = DAY + dt.timedelta(days=100)
    settings = load_settings({"CHURNBOT_CONFIG": str(CONFIG)})
    deps = build_deps(
        settings,
        client=real_redis,
        prefix=real_prefix,
        clock=lambda: dt.datetime.combine(today, dt.time(9), tzinfo=dt.UTC),
    )
    FlagLog(real_redis, prefix=real_prefix).record_snapshot(
        meta(DAY), iter(cards()), spec=settings.spec, calibration=CALIBRATION
    )
    seen = DAY + dt.timedelta(days=95)
    churned = DAY + dt.timedelta(days=30)
    outcomes = {f"A{i}": Outcome(churned if i < 8 or i == 60 else None, seen) for i in range(100)}
    feedback_store(deps).set_outcomes(outcomes)

    summary = track_summary(deps)

    assert summary.record.flagged == 20
    assert summary.record.flagged_rate == Rate(8, 20)
    assert summary.record.base_rate == Rate(9, 100)
    assert not summary.record.enough, "20 flagged outcomes are below the 30 needed"
    assert summary.levels["low"].source == "live"
    assert summary.levels["low"].rate == Rate(1, 49)
    assert summary.levels["high"].source == "evaluation"
    assert summary.levels["high"].rate == Rate(55, 100)
    assert TrackSummary.from_json(summary.to_json()) == summary
    feedback_store(deps).set_outcomes({})
    assert track_summary(deps) == summary, "the day's summary is reused for an hour"


def test_the_publish_hook_reads_the_published_snapshot(
    real_redis: redis.Redis, real_prefix: str
) -> None:
    """What the hook at the end of a scoring run does: read the cards back from the store."""
    store = SnapshotStore(real_redis, prefix=real_prefix)
    book = [
        make_card(f"A{i}", f"Account {i}", risk)
        for i, risk in enumerate([0.8, 0.5, 0.31, 0.2, 0.05])
    ]
    book[1]["abstain"] = {"missing": ["Seats used"]}
    published = meta(DAY, n=len(book))
    store.publish_cards(published, book)

    entry = FlagLog(real_redis, prefix=real_prefix).record_snapshot(
        published, store.iter_cards(snapshot_id=published.snapshot_id), spec=spec()
    )

    assert entry is not None
    assert entry.flagged == ("A0", "A2"), "abstained A1 is not flagged"
    assert entry.bands == {"high": 2, "medium": 1, "low": 1, ABSTAINED: 1}


def test_a_missing_summary_is_computed_once_after_the_answer(
    real_redis: redis.Redis, real_prefix: str
) -> None:
    settings = load_settings({"CHURNBOT_CONFIG": str(CONFIG)})
    moment = dt.datetime.combine(DAY + dt.timedelta(days=100), dt.time(9), tzinfo=dt.UTC)
    deps = build_deps(settings, client=real_redis, prefix=real_prefix, clock=lambda: moment)
    FlagLog(real_redis, prefix=real_prefix).record_snapshot(
        meta(DAY), iter(cards()), spec=settings.spec
    )
    try:
        sid = meta(DAY).snapshot_id
        assert cached_summary(deps, sid) is None, "not computed on the answer's path"
        assert not FlagLog(real_redis, prefix=real_prefix).claim_computing(
            f"{deps.clock().date().isoformat()}:{meta(DAY).snapshot_id}"
        ), "the first reader holds the claim: nobody computes it twice"
        wait_until(lambda: cached_summary(deps, sid), "the summary computed after", timeout=10)
        assert cached_summary(deps, sid) == track_summary(deps)
    finally:
        deps.background.shutdown(wait=True)


def test_a_tally_in_batches_is_one_pass_over_the_book() -> None:
    """A scoring run tallies its flags chunk by chunk: counts, flagged ids and the book's
    hash sample must be what one pass over the whole book gives."""
    book = [
        (f"ACC-{i:05d}", ABSTAINED if i % 97 == 0 else "high" if i % 7 == 0 else "low")
        for i in range(1_000)
    ]
    tally = FlagTally(meta(DAY, n=len(book)), sample_size=50, batch=100)
    for start in range(0, len(book), 64):  # chunks that do not fall on batch bounds
        part = book[start : start + 64]
        tally.add([account_id for account_id, _ in part], [band for _, band in part])
    tally.add([], [])  # a run's last chunk may be empty
    evaluation = {"high": Rate(5, 10)}

    whole = flag_entry(
        snapshot_id=meta(DAY).snapshot_id,
        as_of=DAY,
        model_version="v1",
        account_ids=[account_id for account_id, _ in book],
        bands=[band for _, band in book],
        sample_size=50,
        evaluation=evaluation,
    )

    assert tally.entry(evaluation) == whole
    assert len(whole.sample) == 50
    assert whole.bands[ABSTAINED] == 11


def test_the_band_is_read_where_the_scorer_writes_it() -> None:
    """The tally reads the band byte without numpy (the web process imports the flag log);
    the scorer writes the header with numpy (models/packing.py): same place."""
    fields = HEADER_ROW.fields
    assert fields is not None
    assert fields["band"][1] == BAND_AT


def test_a_summary_read_once_is_kept_in_the_process(
    real_redis: redis.Redis, real_prefix: str
) -> None:
    """The worker computed the summary; a web process reads it from Redis once, then never
    again for that day and snapshot (a `/churn` card costs no Redis call for it)."""
    settings = load_settings({"CHURNBOT_CONFIG": str(CONFIG)})
    moment = dt.datetime.combine(DAY + dt.timedelta(days=100), dt.time(9), tzinfo=dt.UTC)
    worker = build_deps(settings, client=real_redis, prefix=real_prefix, clock=lambda: moment)
    FlagLog(real_redis, prefix=real_prefix).record_snapshot(
        meta(DAY), iter(cards()), spec=settings.spec
    )
    refresh_summary(worker)
    web_client = redis.Redis(connection_pool=real_redis.connection_pool)
    web = build_deps(settings, client=web_client, prefix=real_prefix, clock=lambda: moment)
    later = moment + dt.timedelta(days=1)
    tomorrow = build_deps(settings, client=web_client, prefix=real_prefix, clock=lambda: later)
    sid = meta(DAY).snapshot_id
    try:
        first = cached_summary(web, sid)
        assert first == track_summary(worker), "computed by the worker, read from Redis"
        keys = list(real_redis.scan_iter(match=f"{real_prefix}:*:summary:*", count=1_000))
        assert keys, "the worker's summary is in Redis"
        real_redis.unlink(*keys)
        assert cached_summary(web, sid) == first, "kept in the process: Redis not asked"
        assert cached_summary(tomorrow, sid) is None, "a new day computes it again"
    finally:
        for deps in (worker, web, tomorrow):
            deps.background.shutdown(wait=True)
