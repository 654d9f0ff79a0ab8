"""One `/churn` text costs a bounded number of scans of the name index, whatever its length.

Counted on a private redis-server (its command statistics are this test's alone), not timed:
before the bound, 50 short words that match nothing cost about 150 full scans (15-50 s on a
100,000-account book, bench/churn_text.py).
"""

from __future__ import annotations

import pytest
import redis

from bot.lookup import MAX_PROBES, resolve
from bot.state import SnapshotMeta, SnapshotStore, connect
from tests.slack_harness import RedisServer, make_card


def index_scans(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_zscan", {}).get("calls", 0))


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    client = connect(redis_server.url)
    book = [make_card(f"ACC-{i:06d}", f"Company {i} Holdings", 0.5) for i in range(500)]
    meta = SnapshotMeta(
        snapshot_id="s1",
        as_of="2026-11-23",
        model_version="20261123-abcdef0123",
        created_at="2026-11-23T09:00:00+00:00",
        healthy=True,
        n_accounts=len(book),
        health=[],
    )
    SnapshotStore(client, prefix="bounds").publish(meta, book)
    return client


@pytest.mark.parametrize(
    ("text", "most"),
    [
        (" ".join(f"q{i:02d}" for i in range(50)), 0),  # more words than any name: refused
        (" ".join(f"zz{i:02d}" for i in range(12)), 1 + MAX_PROBES),
        ("z" * 200, 1 + MAX_PROBES),
        ("nothing like it", 1 + MAX_PROBES),
    ],
)
def test_one_text_costs_a_bounded_number_of_index_scans(
    client: redis.Redis, text: str, most: int
) -> None:
    before = index_scans(client)
    found = resolve(SnapshotStore(client, prefix="bounds"), text, snapshot_id="s1")
    scans = index_scans(client) - before
    print(f"{len(text.split())} words, {len(text)} chars: {scans} index scans -> {found.kind}")
    assert found.kind in ("none", "too_long")
    assert scans <= most
