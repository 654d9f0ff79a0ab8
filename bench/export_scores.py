"""`churnbot export scores` on a large book: each target against reading the cards alone.

A snapshot of --accounts cards (the shape the publisher writes) is published to a real Redis
under a throwaway prefix; then, alternating (min and median of --runs rounds):

* the floor: ``SnapshotStore.iter_cards`` read to the end (what every export must do);
* the export to Parquet, to CSV, and (with --postgres-url) to a PostgreSQL table, through the
  same functions the command uses (``bot.cli.export``).

Usage: ``.venv/bin/python bench/export_scores.py [--accounts 100000] [--runs 3]
[--redis-url URL] [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]``. The
PostgreSQL figure writes a throwaway table in a database of its own, dropped afterwards.
Progress goes to stderr, figures to stdout.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import psycopg
from _common import add_redis_url, delete_prefix, say, versus_floor
from sqlalchemy import make_url

from bot.cli.export import frames, write_file, write_sql
from bot.state import SnapshotMeta, SnapshotStore, connect

SID = "20261123T060000-bench"


def card(i: int) -> dict[str, object]:
    return {
        "account_id": f"ACC-{i:07d}",
        "account_name": f"Northwind Apparel Holdings {i}",
        "owner": f"csm{i % 40}@example.com",
        "segment": ("smb", "mid_market", "enterprise")[i % 3],
        "as_of": "2026-11-23",
        "risk": round((i * 7919 % 10_000) / 10_000, 6),
        "band": "high",
        "reasons": [
            {"code": "escalations", "text": "5 open escalations, oldest 68 days", "impact": 2.1},
            {"code": "seats", "text": "Only 9 of 26 seats used (35%)", "impact": 1.3},
            {"code": "renewal", "text": "Renewal in 49 days (Jan 11)", "impact": 1.2},
        ],
        "healthy": None,
        "action": {
            "rule": "escalations",
            "action": "Loop in the support lead and agree a fix date",
            "why": "Open escalations are the strongest risk signal here",
            "owner": "Support lead",
        },
        "model_version": "bench",
        "previous_risk": None,
        "change": None,
    }


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    add_redis_url(parser)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    client = connect(args.redis_url)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    store = SnapshotStore(client, prefix=prefix)
    database = None
    try:
        say(f"publishing {args.accounts:,} cards")
        meta = SnapshotMeta(
            SID, "2026-11-23", "bench", "2026-11-23T06:00:00+00:00", True, args.accounts, []
        )
        store.publish_cards(meta, (card(i) for i in range(args.accounts)))
        targets: dict[str, Callable[[Path], object]] = {
            "floor: read cards": lambda _: sum(1 for _ in store.iter_cards(snapshot_id=SID)),
            "parquet": lambda d: write_file(
                frames(store.iter_cards(snapshot_id=SID), SID), d / "s.parquet"
            ),
            "csv": lambda d: write_file(
                frames(store.iter_cards(snapshot_id=SID), SID), d / "s.csv"
            ),
        }
        if args.postgres_url:
            database = f"churnbot_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.postgres_url, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{database}"')
            url = make_url(args.postgres_url).set(
                database=database, drivername="postgresql+psycopg"
            )
            targets["postgresql"] = lambda _: write_sql(
                frames(store.iter_cards(snapshot_id=SID), SID),
                url,
                "scores",
                replace=True,
                secrets=[],
            )
        times: dict[str, list[float]] = {name: [] for name in targets}
        with tempfile.TemporaryDirectory() as folder:
            for round_ in range(args.runs):
                say(f"round {round_ + 1} of {args.runs}")
                for name, target in targets.items():
                    times[name].append(timed(partial(target, Path(folder))))
        floor = times["floor: read cards"]
        print(f"accounts: {args.accounts:,}")
        print(
            f"{'target':<18} {'min s':>7} {'median s':>9} {'x floor min':>12} "
            f"{'x floor median':>15} {'rows/s (median)':>16}"
        )
        for name, values in times.items():
            low, mid = min(values), statistics.median(values)
            low_x, mid_x = versus_floor(values, floor)
            print(
                f"{name:<18} {low:>7.2f} {mid:>9.2f} {low_x:>12.2f} "
                f"{mid_x:>15.2f} {args.accounts / mid:>16,.0f}"
            )
    finally:
        delete_prefix(client, prefix)
        if database:
            with psycopg.connect(args.postgres_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
