"""Read latency of the snapshot store against a real Redis, for a 100,000-account book.

Usage: ``.venv/bin/python bench/state_read.py [REDIS_URL]`` (default redis://127.0.0.1:6379/0).
Prints p50/p99 per read; works under a unique prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bot.state import SnapshotMeta, SnapshotStore, connect

N_ACCOUNTS = 100_000
N_READS = 5_000
OWNERS = [f"csm-{i:02d}" for i in range(40)]
SEGMENTS = ["smb", "mid-market", "enterprise", "strategic"]
WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Société", "Zürich", "Stark"]
META = SnapshotMeta(
    snapshot_id="bench-1",
    as_of="2026-05-01",
    model_version="m-2026-05-01",
    created_at="2026-05-01T06:00:00+00:00",
    healthy=True,
    n_accounts=N_ACCOUNTS,
    health=[],
)


def cards(rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(N_ACCOUNTS):
        yield {
            "account_id": f"acc-{i:07d}",
            "account_name": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}",
            "owner": rng.choice(OWNERS),
            "segment": rng.choice(SEGMENTS),
            "risk": rng.random(),
            "band": "high",
            "reasons": [{"feature": "logins_30d", "text": "logins down 60% in 30 days"}] * 3,
            "action": "Book an executive business review",
            "model_version": "m-2026-05-01",
        }


def measure(name: str, call: Callable[[], object]) -> None:
    timings = []
    for _ in range(N_READS):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1_000)
    q = statistics.quantiles(timings, n=100)
    print(f"{name:<34} p50 {q[49]:6.3f} ms   p99 {q[98]:6.3f} ms   ({N_READS} calls)")


def main(argv: list[str]) -> None:
    url = argv[0] if argv else "redis://127.0.0.1:6379/0"
    client = connect(url)
    prefix = f"bench-{uuid.uuid4().hex}"
    rng = random.Random(7)
    store = SnapshotStore(client, prefix=prefix)
    try:
        start = time.perf_counter()
        store.publish(META, cards(rng))
        print(f"publish {N_ACCOUNTS:,} accounts: {time.perf_counter() - start:.2f} s")
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1_000))
        used = sum(client.memory_usage(k, samples=0) or 0 for k in keys)
        per_account = used / N_ACCOUNTS
        print(f"Redis memory, one snapshot: {used / 2**20:.1f} MiB ({per_account:.0f} B/account)")

        ids = [f"acc-{rng.randrange(N_ACCOUNTS):07d}" for _ in range(N_READS)]
        it = iter(ids)
        measure("card(account_id)", lambda: store.card(next(it)))
        measure("top(10, owner=...)", lambda: store.top(10, owner=rng.choice(OWNERS)))
        measure(
            "top(10, owner=..., segment=...)",
            lambda: store.top(10, owner=rng.choice(OWNERS), segment=rng.choice(SEGMENTS)),
        )
        measure("top(10)", lambda: store.top(10))
        measure("latest()", store.latest)
        start = time.perf_counter()
        found = store.find("zurich acme", limit=10)
        print(
            f"find('zurich acme') full name scan: {(time.perf_counter() - start) * 1e3:.1f} ms "
            f"({len(found)} shown)"
        )
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1_000))
        if keys:
            client.unlink(*keys)


if __name__ == "__main__":
    main(sys.argv[1:])
