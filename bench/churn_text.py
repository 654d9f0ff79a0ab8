"""Worst-case `/churn` texts against a 100,000-account book: the work one request can cost.

Publishes the book of ``bench/state_read.py`` into the real Redis (under a throwaway prefix),
then times ``bot.lookup.resolve`` (what `/churn TEXT` runs) on texts chosen to be expensive:
many short words that match nothing (each word can cost full scans of the name index), one
long word, a name that is not there. Prints the seconds each text costs.

Usage: ``.venv/bin/python bench/churn_text.py [REDIS_URL]`` (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import random
import sys
import time
import uuid

from state_read import N_ACCOUNTS, cards

from bot.lookup import resolve
from bot.state import SnapshotMeta, SnapshotStore, connect

TEXTS = {
    "50 short words, no match": " ".join(f"q{i:02d}" for i in range(50)),
    "16 words, no match": " ".join(f"zz{i:02d}" for i in range(16)),
    "12 words, no match": " ".join(f"zz{i:02d}" for i in range(12)),
    "one 200-character word": "z" * 200,
    "a name not in the book": "Acme Globex 4242",
    "a partial name (pick list)": "Initech Hooli",
}


def main(argv: list[str]) -> None:
    url = argv[0] if argv else "redis://127.0.0.1:6379/0"
    client = connect(url)
    prefix = f"bench-{uuid.uuid4().hex}"
    store = SnapshotStore(client, prefix=prefix)
    meta = SnapshotMeta(
        snapshot_id="bench-1",
        as_of="2026-05-01",
        model_version="m-2026-05-01",
        created_at="2026-05-01T06:00:00+00:00",
        healthy=True,
        n_accounts=N_ACCOUNTS,
        health=[],
    )
    try:
        store.publish(meta, cards(random.Random(7)))
        for name, text in TEXTS.items():
            start = time.perf_counter()
            found = resolve(store, text, snapshot_id="bench-1")
            elapsed = time.perf_counter() - start
            print(f"{name:<28} {len(text):4d} chars {elapsed:6.2f} s  -> {found.kind}")
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1_000))
        for start in range(0, len(keys), 1_000):
            client.unlink(*keys[start : start + 1_000])
        client.close()


if __name__ == "__main__":
    main(sys.argv[1:])
