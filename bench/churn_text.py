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

from state_read import META, cards

from bot.lookup import resolve
from bot.state import SnapshotStore, connect

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
    try:
        store.publish(META, cards(random.Random(7)))
        for name, text in TEXTS.items():
            start = time.perf_counter()
            found = resolve(store, text, snapshot_id=META.snapshot_id)
            elapsed = time.perf_counter() - start
            print(f"{name:<28} {len(text):4d} chars {elapsed:6.2f} s  -> {found.kind}")
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1_000))
        for start in range(0, len(keys), 1_000):
            client.unlink(*keys[start : start + 1_000])
        client.close()


if __name__ == "__main__":
    main(sys.argv[1:])
