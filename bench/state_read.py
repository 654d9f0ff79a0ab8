"""The snapshot store on a realistic book: Redis bytes per account, publish time, reads.

For each size N (default 100,000 and 1,000,000) a champion trained as `churnbot train` would
scores N live accounts (``bench/score.py``'s tiled book) into scored chunks, exactly what a
scoring run hands the store; then, against a real Redis, under a throwaway prefix:

* publishes two snapshots (the second sees the first for "change") and prints the Redis memory
  of the second: ``MEMORY USAGE`` of every key of that snapshot (``SAMPLES 0``: exact) over N,
  with the share of each kind of key and of the codec's records (target: <= 300 B/account);
* times reads against a floor measured in the same run, alternating (min and median of
  --runs rounds): a single ``GET`` round trip (the floor) against ``card``, ``top(10, owner)``,
  and `/churn` lookups (``bot.lookup.resolve`` with the kill switch: an exact name, a pick
  list, and texts that match nothing, with their "did you mean" suggestions).

Usage: ``.venv/bin/python bench/state_read.py [--sizes 100000,1000000] [--runs 3]
[--redis-url URL]``. Progress goes to stderr, figures to stdout. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import redis
from _common import add_redis_url, delete_prefix, median_ms, say
from score import REPO, make_rows, train_champion

from bot.lookup import resolve
from bot.publish import build_scorer
from bot.settings import load_settings
from bot.state import KillSwitch, SnapshotMeta, SnapshotStore, connect
from models.cards import ScoredChunk
from models.registry import Registry

CALLS = 200  # per read per round
NO_MATCH = ["Gama Logistc Holdngs", "zzqx", "nothing like it", "z" * 200]


def meta(sid: str, n: int) -> SnapshotMeta:
    return SnapshotMeta(
        snapshot_id=sid,
        as_of="2026-11-16",
        model_version="bench",
        created_at="2026-11-16T06:00:00+00:00",
        healthy=True,
        n_accounts=n,
        health=[],
    )


def snapshot_memory(client: redis.Redis, prefix: str, sid: str) -> Counter[str]:
    """Bytes per kind of key of one snapshot (``MEMORY USAGE ... SAMPLES 0``)."""
    kinds: Counter[str] = Counter()
    pattern = f"{prefix}:{{default}}:snap:{sid}:*"
    for key in client.scan_iter(match=pattern, count=5_000):
        kind = key.rsplit(":", 2)[1] if key.count(":") > 4 else key.rsplit(":", 1)[1]
        kinds[kind] += client.memory_usage(key, samples=0) or 0
    return kinds


def bench_size(n: int, client: redis.Redis, registry: Path, runs: int) -> None:
    settings = load_settings({"CHURNBOT_CONFIG": str(REPO / "config")})
    scorer = build_scorer(settings, Registry(registry).load())
    say(f"{n:,} accounts: building and scoring the book")
    rows = make_rows(n)
    start = time.perf_counter()
    chunks = list(scorer.column_chunks(rows))
    say(f"  scored in {time.perf_counter() - start:.1f} s")
    spec = scorer.codec().spec()
    record_bytes = sum(len(r) for chunk in chunks for r in chunk.records)
    prefix = f"bench-{uuid.uuid4().hex}"
    store = SnapshotStore(client, prefix=prefix)
    switch = KillSwitch(client, prefix=prefix)
    rng = np.random.default_rng(3)
    try:
        start = time.perf_counter()
        store.publish(meta("s1", n), spec, chunks)
        first = time.perf_counter() - start
        moved = [
            replace(c, risk=np.clip(c.risk + rng.normal(0, 0.02, len(c)), 0, 1)) for c in chunks
        ]
        start = time.perf_counter()
        store.publish(meta("s2", n), spec, moved)
        second = time.perf_counter() - start
        del moved
        kinds = snapshot_memory(client, prefix, "s2")
        total = sum(kinds.values())
        print(f"\n{n:,} accounts, one snapshot in Redis (MEMORY USAGE, SAMPLES 0):")
        print(f"  {total / n:.0f} B/account ({total / 2**20:.1f} MiB)  target <= 300 B/account")
        print(f"  codec records alone: {record_bytes / n:.0f} B/account")
        names = {"k": "risk + id blocks", "d": "data blocks (records, names, previous risk)",
                 "i": "id hashes", "n": "name index blocks", "nf": "name index fences",
                 "top": "top lists"}  # fmt: skip
        for kind, used in kinds.most_common():
            print(f"    {names.get(kind, kind):<44} {used / n:6.1f} B/account")
        print(f"  publish: {first:.1f} s (first), {second:.1f} s (with change from the first)")
        reads(store, switch, chunks, client, runs)
    finally:
        delete_prefix(client, prefix)


def reads(
    store: SnapshotStore,
    switch: KillSwitch,
    chunks: list[ScoredChunk],
    client: redis.Redis,
    runs: int,
) -> None:
    pick = np.random.default_rng(5)
    ids = [a for c in chunks[:1] for a in c.account_id]
    names = [a for c in chunks[:1] for a in c.account_name]
    owner = chunks[0].owner[0]
    cases: dict[str, Callable[[], object]] = {
        "GET round trip (floor)": lambda: client.get("bench:nothing"),
        "card(account_id)": lambda: store.card(ids[pick.integers(len(ids))]),
        "top(10, owner=...)": lambda: store.top(10, owner=owner),
        "/churn exact name": lambda: resolve(
            store, names[pick.integers(len(names))], switch_key=switch.key
        ),
        "/churn pick list (first word)": lambda: resolve(
            store, names[pick.integers(len(names))].split()[0], switch_key=switch.key
        ),
    }
    for text in NO_MATCH:
        cases[f"/churn no match {text[:20]!r}"] = partial(
            resolve, store, text, switch_key=switch.key
        )
    for text in NO_MATCH:
        assert resolve(store, text, switch_key=switch.key).kind == "none", text
    medians: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):  # alternate: every case once per round
        for name, call in cases.items():
            medians[name].append(median_ms(call, CALLS))
    floor = medians["GET round trip (floor)"]
    print(f"  reads, median ms per call over {CALLS} calls, {runs} alternating rounds:")
    for name, values in medians.items():
        ratio = [v / f for v, f in zip(values, floor, strict=True)]
        print(
            f"    {name:<36} min {min(values):7.3f}  median {statistics.median(values):7.3f} ms"
            f"   x floor: min {min(ratio):5.1f}  median {statistics.median(ratio):5.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    add_redis_url(parser)
    args = parser.parse_args()
    client = connect(args.redis_url)
    with tempfile.TemporaryDirectory() as tmp:
        say("training the champion")
        train_champion(Path(tmp))
        for n in (int(s) for s in args.sizes.split(",")):
            bench_size(n, client, Path(tmp), args.runs)


if __name__ == "__main__":
    main()
