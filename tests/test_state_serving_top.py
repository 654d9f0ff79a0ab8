"""``SnapshotStore.serving_top``: the kill switch, the snapshot it serves and its top lists, read
in one call, alone or queued on a caller's pipeline (a digest run sends it with its claim).

Whatever the switch says, the answer is what reading the three apart gives (``serving`` and
``top`` of the snapshot it chose), on the real server and on the embedded store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import redis

from bot.state import KillSwitch, SnapshotStore
from bot.state.snapshots import ServingTop, TopList
from tests.slack_harness import make_card
from tests.test_state_snapshots import make_meta

ANA, BEN = "ana@example.com", "ben@example.com"


def book(risk: float) -> list[dict[str, Any]]:
    return [
        make_card(f"ACC-{i:03d}", f"Account {i}", round(risk - i / 100, 4), owner=owner)
        for i, owner in enumerate([ANA, BEN] * 6)
    ]


def apart(
    store: SnapshotStore, switch: KillSwitch, n: int, owner: str | None
) -> tuple[dict[str, str], str | None, list[dict[str, Any]]]:
    """What the three reads give one at a time."""
    record, served = store.serving(switch.key)
    if served is None:
        return record, None, []
    return record, served.snapshot_id, store.top(n, owner=owner, snapshot_id=served.snapshot_id)


def seen(read: ServingTop) -> tuple[dict[str, str], str | None, list[dict[str, Any]]]:
    sid = read.meta.snapshot_id if read.meta is not None else None
    return read.switch, sid, [row.card() for row in read.rows]


def queued(
    client: redis.Redis, store: SnapshotStore, switch: KillSwitch, n: int, lists: Sequence[TopList]
) -> ServingTop:
    """``serving_top`` sent with another command in one pipeline, as the claim sends it (by
    the script's SHA, errors handed to the answer: a server without the script reads again)."""
    pipe = client.pipeline(transaction=False)
    pipe.ping()
    answer = store.queue_serving_top(pipe, switch.key, n, lists)
    pong, raw = pipe.execute(raise_on_error=False)
    assert pong
    return answer(raw)


@pytest.mark.parametrize("owner", [None, ANA])
def test_serving_top_reads_what_the_switch_serves(
    redis_client: redis.Redis,
    key_prefix: str,
    owner: str | None,
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix)
    switch = KillSwitch(redis_client, prefix=key_prefix)
    for read in (
        store.serving_top(switch.key, 5, [(owner, None)]),
        queued(redis_client, store, switch, 5, [(owner, None)]),
    ):
        assert seen(read) == ({}, None, []), "nothing published: nothing to show"

    store.publish_cards(make_meta("good", 12), book(0.8))
    store.publish_cards(make_meta("bad", 12, healthy=False), book(0.99))
    for on in (False, True):
        if on:
            switch.trip("bad data", who="U0ADMIN", source="admin")
        expected = apart(store, switch, 5, owner)
        assert expected[1] == ("good" if on else "bad")
        assert len(expected[2]) == 5
        assert seen(store.serving_top(switch.key, 5, [(owner, None)])) == expected
        assert seen(queued(redis_client, store, switch, 5, [(owner, None)])) == expected


def test_a_fresh_store_decodes_a_queued_read(
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    """A process that has not read the snapshot before gets its layout with the reply."""
    SnapshotStore(redis_client, prefix=key_prefix).publish_cards(make_meta("s1", 12), book(0.8))
    store = SnapshotStore(redis_client, prefix=key_prefix)
    switch = KillSwitch(redis_client, prefix=key_prefix)
    read = queued(redis_client, store, switch, 3, [(BEN, None)])
    assert [row.card()["owner"] for row in read.rows] == [BEN] * 3
    assert seen(read) == apart(store, switch, 3, BEN)


def test_serving_top_refuses_more_than_a_top_list_holds(
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix)
    with pytest.raises(ValueError, match=r"SnapshotStore\.serving_top"):
        store.serving_top(KillSwitch(redis_client, prefix=key_prefix).key, 1_001)


def test_serving_top_reads_every_list_asked_for_in_one_call(
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    """A digest merging several owners or segments reads all their lists with the snapshot:
    one reply entry per list, in the order asked, each as :meth:`top` reads it alone."""
    store = SnapshotStore(redis_client, prefix=key_prefix)
    switch = KillSwitch(redis_client, prefix=key_prefix)
    store.publish_cards(make_meta("s1", 12), book(0.8))
    lists: list[TopList] = [(ANA, None), (BEN, None), ("nobody@example.com", None), (None, None)]
    for read in (
        store.serving_top(switch.key, 3, lists),
        queued(redis_client, store, switch, 3, lists),
    ):
        assert [[row.card() for row in rows] for rows in read.lists] == [
            store.top(3, owner=owner, segment=segment) for owner, segment in lists
        ]
        assert [row.card()["owner"] for row in read.rows] == [ANA] * 3
        assert read.lists[2] == []
    with pytest.raises(ValueError, match="at least one top list"):
        store.serving_top(switch.key, 3, [])
