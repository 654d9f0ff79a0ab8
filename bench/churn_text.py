"""Worst-case `/churn` texts against a large book: the work one request can cost.

Publishes a book of --accounts hand-written cards (random company names from a small word
list, so common words match many names) into a real Redis under a throwaway prefix, then times
``bot.lookup.resolve`` (what `/churn TEXT` runs, kill switch included) on texts chosen to be
expensive: many short words that match nothing, one long word, a name that is not there, a
partial name that matches thousands. Each text is timed against a floor measured in the same
run, alternating (a single GET round trip), --runs rounds of --calls calls; prints min and
median of the per-round medians and the ratio.

Usage: ``.venv/bin/python bench/churn_text.py [--accounts 100000] [--runs 3] [--calls 50]
[--redis-url URL]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

from _common import add_redis_url, delete_prefix, median_ms

from bot.lookup import resolve
from bot.state import KillSwitch, SnapshotMeta, SnapshotStore, connect

WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Société", "Zürich", "Stark"]
TEXTS = {
    "50 short words, no match": " ".join(f"q{i:02d}" for i in range(50)),
    "12 words, no match": " ".join(f"zz{i:02d}" for i in range(12)),
    "one 200-character word": "z" * 200,
    "a name not in the book": "Acme Globex 4242x",
    "a misspelt name": "Glubex Initek",
    "a partial name (pick list)": "Initech Hooli",
}


def cards(n: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "account_id": f"acc-{i:07d}",
            "account_name": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}",
            "owner": f"csm-{rng.randrange(40):02d}",
            "segment": rng.choice(["smb", "mid-market", "enterprise"]),
            "risk": rng.random(),
            "band": "high",
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=50)
    add_redis_url(parser)
    args = parser.parse_args()
    client = connect(args.redis_url)
    prefix = f"bench-{uuid.uuid4().hex}"
    store = SnapshotStore(client, prefix=prefix)
    switch = KillSwitch(client, prefix=prefix)
    meta = SnapshotMeta(
        snapshot_id="bench-1", as_of="2026-11-16", model_version="bench",
        created_at="2026-11-16T06:00:00+00:00", healthy=True, n_accounts=args.accounts,
    )  # fmt: skip
    try:
        store.publish_cards(meta, cards(args.accounts, random.Random(7)))
        kinds = {
            name: resolve(store, text, switch_key=switch.key).kind for name, text in TEXTS.items()
        }
        floor: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in TEXTS}
        for _ in range(args.runs):
            floor.append(median_ms(lambda: client.get(f"{prefix}:nothing"), args.calls))
            for name, text in TEXTS.items():
                times[name].append(
                    median_ms(partial(resolve, store, text, switch_key=switch.key), args.calls)
                )
        print(f"/churn TEXT on {args.accounts:,} names, median ms per call, {args.runs} rounds:")
        low, mid = min(floor), statistics.median(floor)
        print(f"  {'GET round trip (floor)':<30} min {low:7.3f}  median {mid:7.3f}")
        for name, values in times.items():
            ratios = [v / f for v, f in zip(values, floor, strict=True)]
            print(
                f"  {name:<30} min {min(values):7.3f}  median {statistics.median(values):7.3f}"
                f"  x floor {statistics.median(ratios):6.1f}  -> {kinds[name]}"
            )
    finally:
        delete_prefix(client, prefix)
        client.close()


if __name__ == "__main__":
    main()
