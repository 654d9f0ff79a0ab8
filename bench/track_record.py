"""What the track record costs a `/churn` answer and a digest, against a Redis round trip.

A book of --accounts accounts scored weekly for 26 weeks (a fifth of them high, a fixed fifth
churned) leaves one flag entry per week (``FlagLog.record_snapshot``, as the publish hook
does); the outcomes are stored as `churnbot feedback outcomes` stores them. Then, against a
real Redis under a throwaway prefix, alternating (min and median of --runs rounds):

* the floor: one ``GET`` round trip;
* ``track_summary`` from its cache (what every `/churn` card and digest pays once computed);
* ``track_summary`` computed (the first reader of the day: a quarter of flag entries and the
  outcomes of their accounts), its cache deleted before each call.

Also prints the Redis bytes of one flag entry per account (``MEMORY USAGE``).

Usage: ``.venv/bin/python bench/track_record.py [--accounts 5000] [--runs 3]
[--redis-url URL]``. Progress goes to stderr, figures to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
from _common import add_redis_url, delete_prefix, say, versus_floor

from bot.deps import Deps, build_deps
from bot.feedback import feedback_store
from bot.feedback.outcomes import Outcome
from bot.feedback.track_record import TrackSummary, track_summary
from bot.settings import load_settings
from bot.state import SnapshotMeta, connect
from bot.state.flag_log import FlagLog

REPO = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 23)
WEEKS = 26


def per_call(action: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        action()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    add_redis_url(parser)
    args = parser.parse_args()
    client = connect(args.redis_url)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = load_settings({"CHURNBOT_CONFIG": str(REPO / "config")})
    deps = build_deps(
        settings,
        client=client,
        prefix=prefix,
        clock=lambda: dt.datetime.combine(TODAY, dt.time(9), tzinfo=dt.UTC),
    )
    try:
        run(deps, client, prefix, args.accounts, args.runs)
    finally:
        delete_prefix(client, prefix)


def run(deps: Deps, client: redis.Redis, prefix: str, n: int, runs: int) -> None:
    log = FlagLog(client, prefix=prefix)
    ids = [f"ACC-{i:07d}" for i in range(n)]
    say(f"recording {WEEKS} weekly flag entries of {n:,} accounts")
    for week in range(WEEKS, 0, -1):
        day = TODAY - dt.timedelta(weeks=week)
        meta = SnapshotMeta(
            snapshot_id=f"{day:%Y%m%d}T060000-bench",
            as_of=day.isoformat(),
            model_version="bench",
            created_at=f"{day.isoformat()}T06:00:00+00:00",
            healthy=True,
            n_accounts=n,
            health=[],
        )
        cards = (
            {"account_id": a, "band": "high" if (i + week) % 5 == 0 else "low"}
            for i, a in enumerate(ids)
        )
        log.record_snapshot(meta, cards, spec=deps.settings.spec)
    entry_key = f"{prefix}:{{default}}:flags:{meta.snapshot_id}"
    entry_bytes = client.memory_usage(entry_key, samples=0) or 0
    seen = TODAY - dt.timedelta(days=1)
    churn = TODAY - dt.timedelta(days=200)
    feedback_store(deps).set_outcomes(
        {
            a: Outcome(churn + dt.timedelta(days=i % 150) if i % 5 == 1 else None, seen)
            for i, a in enumerate(ids)
        }
    )

    cache_key = f"{prefix}:{{default}}:flags:summary:{TODAY.isoformat()}:{meta.snapshot_id}"

    def uncached() -> TrackSummary:
        """As the day's first reader in a new process: the Redis cache deleted, and a client
        of its own (on the same connections), so the decoded copy this process keeps per
        client is not found either."""
        client.delete(cache_key)
        fresh = redis.Redis(connection_pool=client.connection_pool)
        return track_summary(dataclasses.replace(deps, redis=fresh))

    summary = uncached()
    say(f"track record: {summary.record}")
    reads: dict[str, list[float]] = {"floor GET": [], "cached": [], "computed": []}
    for round_ in range(runs):
        say(f"round {round_ + 1} of {runs}")
        reads["floor GET"].append(per_call(lambda: client.get(f"{prefix}:floor"), 200))
        reads["cached"].append(per_call(lambda: track_summary(deps), 200))
        reads["computed"].append(per_call(uncached, 5))
    floor = reads["floor GET"]
    print(
        f"accounts: {n:,}; flag entries: {WEEKS} weekly; one entry in Redis: "
        f"{entry_bytes:,} B ({entry_bytes / n:.1f} B/account)"
    )
    print(
        f"{'read':<10} {'min ms':>9} {'median ms':>10} {'x floor min':>12} {'x floor median':>15}"
    )
    for name, times in reads.items():
        low, mid = min(times), statistics.median(times)
        low_x, mid_x = versus_floor(times, floor)
        print(f"{name:<10} {low * 1e3:>9.3f} {mid * 1e3:>10.3f} {low_x:>12.1f} {mid_x:>15.1f}")


if __name__ == "__main__":
    main()
