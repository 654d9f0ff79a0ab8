"""The compact snapshot's guarantees: bytes per account, small hashes, bounded top lists, change
computed at publish, and reads that take the kill switch in the same call."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import redis

from bot.state import KillSwitch, SnapshotStore
from bot.state import snapshot_format as fmt
from bot.state.card_json import SPEC
from bot.state.snapshot_format import bucket_of, buckets_for, normalize_name
from bot.state.snapshots import MAX_TOP, cards_as_chunks
from models.cards import Packed, ScoredChunk, Texts
from tests.test_state_snapshots import as_read, keys_of, make_cards, make_meta

#: Bytes of a scored record today (bench/state_read.py: 63 on the sample book), with margin.
RECORD_BYTES = 80
WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne")
SUFFIXES = ("Inc", "GmbH", "Ltd")
NOUNS = ("Labs", "Logistics", "Systems", "Foods", "Media", "Energy", "Health", "Robotics")


def realistic_chunks(n: int, *, size: int = 1_000, seed: int = 5) -> Iterator[ScoredChunk]:
    """A book like the sample one: "Word Noun N Suffix" names, 40 owners, 3 segments."""
    rng = random.Random(seed)
    for start in range(0, n, size):
        ids = range(start, min(start + size, n))
        yield ScoredChunk(
            account_id=Texts.of([f"ACC-{i:07d}" for i in ids]),
            account_name=Texts.of(
                [
                    f"{rng.choice(WORDS)} {rng.choice(NOUNS)} {i // 64 + 1} {rng.choice(SUFFIXES)}"
                    for i in ids
                ]
            ),
            owner=Texts.of([f"csm{rng.randrange(40):02d}@example.com" for _ in ids]),
            segment=Texts.of([rng.choice(("smb", "mid_market", "enterprise")) for _ in ids]),
            risk=np.array([rng.random() for _ in ids]),
            records=Packed.of([rng.randbytes(RECORD_BYTES) for _ in ids]),
        )


def snapshot_bytes(client: redis.Redis, prefix: str, sid: str) -> int:
    keys = client.scan_iter(match=f"{prefix}:{{default}}:snap:{sid}:*", count=1_000)
    return sum(client.memory_usage(key, samples=0) or 0 for key in keys)


def test_a_snapshot_takes_at_most_300_bytes_an_account(
    real_redis: redis.Redis,  # MEMORY USAGE: the real server only
) -> None:
    prefix, n = f"test-{uuid.uuid4().hex}", 5_000
    store = SnapshotStore(real_redis, prefix=prefix)
    try:
        store.publish(make_meta("s1", n), SPEC, realistic_chunks(n))
        store.publish(make_meta("s2", n), SPEC, realistic_chunks(n, seed=6))
        per_account = snapshot_bytes(real_redis, prefix, "s2") / n
        print(f"{per_account:.0f} B/account with {RECORD_BYTES}-byte records")
        assert per_account <= 300
        buckets = list(real_redis.scan_iter(match=f"{prefix}:{{default}}:snap:s2:i:*"))
        assert buckets
        # Small enough for listpack under Redis' defaults (128 entries, 64-byte values).
        assert max(real_redis.hlen(key) for key in buckets) <= 128
        assert {real_redis.object("encoding", key) for key in buckets} == {"listpack"}
    finally:
        keys = keys_of(real_redis, prefix)
        if keys:
            real_redis.unlink(*keys)


def test_top_lists_hold_at_most_max_top_riskiest_first(
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix)
    n = MAX_TOP + 60
    cards = make_cards("s1", n)
    store.publish_cards(make_meta("s1", n), cards)
    top = store.top(MAX_TOP)
    assert [c["risk"] for c in top] == sorted((c["risk"] for c in cards), reverse=True)[:MAX_TOP]
    stored = redis_client.hstrlen(f"{key_prefix}:{{default}}:snap:s1:top", "")
    assert stored == 4 * MAX_TOP  # one u32 position each, never the whole book


def test_change_is_computed_from_the_previous_snapshot(
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix, batch_size=3)
    first = make_cards("s1", 10)
    store.publish_cards(make_meta("s1", 10), first)
    second = [dict(card, risk=round(card["risk"] / 2, 6)) for card in make_cards("s2", 12)[2:]]
    store.publish_cards(make_meta("s2", 10), second)

    kept = store.card("acc-00005")
    assert kept == as_read(second[3], previous=first[5]["risk"])
    assert kept is not None
    assert kept["change"] == round(second[3]["risk"] - first[5]["risk"], 6)
    assert store.card("acc-00011") == as_read(second[-1])  # new: no previous risk
    assert store.card("acc-00000") is None  # gone from the book
    assert sorted(store.risk_table("s1").risks.tolist()) == sorted(c["risk"] for c in first)


def test_reads_take_the_kill_switch_in_the_same_call(
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix)
    switch = KillSwitch(redis_client, prefix=key_prefix)
    assert store.serving(switch.key) == ({}, None)
    good, bad = make_meta("good", 3), make_meta("bad", 3, healthy=False)
    store.publish_cards(good, make_cards("good", 3))
    store.publish_cards(bad, make_cards("bad", 3, shift=0.5))

    record, meta = store.serving(switch.key)
    assert (record, meta) == ({}, bad)
    assert store.lookup("Account 1", limit=5, switch_key=switch.key).meta == bad
    switch.trip("drift", who="health-check", source="health_check")
    record, meta = store.serving(switch.key)
    assert record["on"] == "1"
    assert meta == good
    found = store.lookup("acc-00001", limit=5, switch_key=switch.key)
    assert found.meta == good
    assert found.switch["reason"] == "drift"
    assert found.by_id is not None
    assert found.by_id.card()["snap"] == "good"
    assert [m.snapshot_id for m, _ in found.history] == ["good", "bad"]


def test_a_snapshot_with_one_odd_account_still_flips(
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    """An empty name indexes nothing; an id hash no account fell in still exists."""
    store = SnapshotStore(redis_client, prefix=key_prefix)
    card: dict[str, Any] = {"account_id": "x", "account_name": "", "owner": "", "segment": ""}
    store.publish_cards(make_meta("s1", 1), [{**card, "risk": 0.25}])
    assert store.card("x") == as_read({**card, "risk": 0.25})
    assert store.find("anything") == []
    assert [c["account_id"] for c in store.top(5, owner="", segment="")] == ["x"]
    # 60 accounts make 2 id hashes; these ids all fall in the first, the second stays empty.
    ids = [a for a in (f"id-{i}" for i in range(1_000)) if bucket_of(a, buckets_for(60)) == 0]
    book = [{**card, "account_id": a, "risk": 0.5} for a in ids[:60]]
    store.publish_cards(make_meta("s2", 60), book)
    assert store.card(ids[59]) is not None


def test_the_name_index_is_every_word_suffix_in_byte_order() -> None:
    """The numpy build of the index equals the plain definition, accents and scripts
    included: each name from each word start, cut to SUFFIX_CHARS bytes, sorted as bytes."""
    rng = random.Random(1)
    words = ["acme", "acmé", "zürich", "a", "b*c", "[fan]", "x-1", "société", "ΑΒΓ", "日本"]
    names = [
        normalize_name(" ".join(rng.choice(words) for _ in range(rng.randint(0, 5))))
        for _ in range(2_000)
    ]
    width = fmt.pos_width(len(names))
    blocks, fences = fmt.name_index(names, width)

    def code(position: int) -> str:
        return "".join(fmt.DIGITS[position // 64**i % 64] for i in reversed(range(width)))

    expected = sorted(
        name[start:].encode()[: fmt.SUFFIX_CHARS]
        + (fmt.WHOLE if start == 0 else fmt.LATER).encode()
        + code(position).encode()
        for position, name in enumerate(names)
        for start in fmt.word_starts(name)
    )
    assert [entry for block in blocks for entry in block.split(b"\n")] == expected
    assert all(len(block.split(b"\n")) <= fmt.NAME_BLOCK for block in blocks)
    assert sorted(fences) == [
        block.split(b"\n")[0] + fmt.FENCE.encode() + str(k).encode()
        for k, block in enumerate(blocks)
    ]
    assert fmt.word_starts("star*wars [fan] club") == [0, 4, 5, 10, 11, 14, 16]


def test_change_comes_from_the_latest_snapshot_whatever_risk_table_the_caller_read(
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    """A scoring run reads the previous risks once (drift check) and hands them to publish; if
    another run published in between, publish reads the newer snapshot's risks instead."""
    store = SnapshotStore(redis_client, prefix=key_prefix, batch_size=4)
    books = {
        sid: [dict(c, risk=round(c["risk"] / k, 6)) for c in make_cards(sid, 6)]
        for k, sid in enumerate(("s1", "s2", "s3", "s4"), 2)
    }
    for sid in ("s1", "s2"):
        store.publish_cards(make_meta(sid, 6), books[sid])
    stale = store.risk_table("s1")
    store.publish(make_meta("s3", 6), SPEC, cards_as_chunks(books["s3"], 4), previous=stale)
    assert store.card("acc-00002")["previous_risk"] == books["s2"][2]["risk"]
    fresh = store.risk_table("s3")
    assert fresh.snapshot_id == "s3"
    store.publish(make_meta("s4", 6), SPEC, cards_as_chunks(books["s4"], 4), previous=fresh)
    assert store.card("acc-00002")["previous_risk"] == books["s3"][2]["risk"]
