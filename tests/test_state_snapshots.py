"""Snapshot store against the real Redis and the embedded store, plus connecting to Redis."""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.state import (
    SnapshotExists,
    SnapshotMeta,
    SnapshotNotFound,
    SnapshotStore,
    StoreError,
    StoreUnavailable,
    connect,
    ping,
)
from bot.state.snapshot_format import BLOCK
from bot.state.snapshots import STAGING_TTL_S
from models.errors import ConfigError, DataContractError

OWNERS = ("ana", "bo", "chen")
SEGMENTS = ("smb", "mid", "ent")


def make_meta(sid: str, n: int, *, healthy: bool = True) -> SnapshotMeta:
    return SnapshotMeta(
        snapshot_id=sid,
        as_of="2026-05-01",
        model_version="m-1",
        created_at="2026-05-01T06:00:00+00:00",
        healthy=healthy,
        n_accounts=n,
        health=[{"check": "freshness", "ok": healthy}],
    )


def make_cards(sid: str, n: int, *, shift: float = 0.0) -> list[dict[str, Any]]:
    """``n`` cards tagged with their snapshot id, so a test can tell which snapshot answered."""
    return [
        {
            "account_id": f"acc-{i:05d}",
            "account_name": f"Account {i}",
            "owner": OWNERS[i % 3],
            "segment": SEGMENTS[(i // 3) % 3],
            "risk": round(((i * 37) % 1000) / 1000 * (1 - shift) + shift / 2, 6),
            "snap": sid,
        }
        for i in range(n)
    ]


def as_read(card: dict[str, Any], previous: float | None = None) -> dict[str, Any]:
    """A published card as the store reads it back: with the change since ``previous``."""
    change = None if previous is None else round(card["risk"] - previous, 6)
    return {**card, "previous_risk": previous, "change": change}


def keys_of(client: redis.Redis, prefix: str) -> list[str]:
    return sorted(client.scan_iter(match=f"{prefix}:*", count=1_000))


def snapshot_ids_in_keys(client: redis.Redis, prefix: str) -> set[str]:
    return {m[1] for k in keys_of(client, prefix) if (m := re.search(r":snap:([^:]+):", k))}


def test_publish_then_read_card(redis_client: redis.Redis, key_prefix: str) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix)
    assert store.latest() is None
    assert store.card("acc-00001") is None
    assert store.top(5) == []

    cards = make_cards("s1", 10)
    meta = make_meta("s1", 10)
    store.publish_cards(meta, iter(cards))

    assert store.latest() == meta
    assert store.last_good() == meta
    assert store.list_ids() == ["s1"]
    assert store.card("acc-00003") == as_read(cards[3])
    assert store.card("acc-00003", snapshot_id="s1") == as_read(cards[3])
    assert store.card("nope") is None


def test_top_n_with_owner_and_segment_filters(redis_client: redis.Redis, key_prefix: str) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix)
    cards = make_cards("s1", 300)
    store.publish_cards(make_meta("s1", 300), cards)

    def expected(n: int, keep: Any = lambda c: True, min_risk: float = 0.0) -> list[float]:
        chosen = [c["risk"] for c in cards if keep(c) and c["risk"] >= min_risk]
        return sorted(chosen, reverse=True)[:n]

    assert [c["risk"] for c in store.top(10)] == expected(10)
    by_owner = store.top(10, owner="bo")
    assert {c["owner"] for c in by_owner} == {"bo"}
    assert [c["risk"] for c in by_owner] == expected(10, lambda c: c["owner"] == "bo")
    by_segment = store.top(7, segment="ent")
    assert [c["risk"] for c in by_segment] == expected(7, lambda c: c["segment"] == "ent")
    both = store.top(5, owner="chen", segment="mid")
    assert {(c["owner"], c["segment"]) for c in both} == {("chen", "mid")}
    assert [c["risk"] for c in both] == expected(
        5, lambda c: (c["owner"], c["segment"]) == ("chen", "mid")
    )
    assert [c["risk"] for c in store.top(1_000, min_risk=0.9)] == expected(1_000, min_risk=0.9)
    assert store.top(10, owner="nobody") == []
    assert store.top(0) == []
    with pytest.raises(ValueError, match=r"'n' parameter of SnapshotStore.top .* Got 1001"):
        store.top(1_001)


def test_readers_see_the_old_or_the_new_snapshot_never_a_mix(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix, batch_size=100)
    store.publish_cards(make_meta("old", 2_000), make_cards("old", 2_000))
    new_n, new_only = 3_000, "acc-02500"
    mid_publish, reader_checked, published = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    seen: list[str] = []

    def new_cards() -> Iterator[dict[str, Any]]:
        for i, card in enumerate(make_cards("new", new_n, shift=0.2)):
            if i == new_n // 2:  # half of the new snapshot is in Redis: let the reader look
                mid_publish.set()
                assert reader_checked.wait(30), "the reader never checked mid-publish"
            yield card

    def publisher() -> None:
        try:
            store.publish_cards(make_meta("new", new_n), new_cards())
        except BaseException as exc:
            errors.append(exc)
        finally:
            published.set()

    def check_once() -> str:
        meta = store.latest()
        assert meta is not None
        sid = meta.snapshot_id
        card = store.card("acc-00010", snapshot_id=sid)
        assert card is not None
        assert card["snap"] == sid
        pinned_top = store.top(20, snapshot_id=sid)
        assert len(pinned_top) == 20
        assert {c["snap"] for c in pinned_top} == {sid}
        assert len({c["snap"] for c in store.top(20, owner="ana")}) == 1
        fresh = store.card(new_only)
        assert fresh is None or fresh["snap"] == "new"
        seen.append(sid)
        return sid

    def reader() -> None:
        try:
            while not published.is_set():
                check_once()
                if mid_publish.is_set() and not reader_checked.is_set():
                    assert check_once() == "old"
                    assert store.card(new_only) is None
                    reader_checked.set()
            check_once()
        except BaseException as exc:
            errors.append(exc)
            reader_checked.set()

    threads = [threading.Thread(target=reader), threading.Thread(target=publisher)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert reader_checked.is_set()
    assert seen[0] == "old"
    assert seen[-1] == "new"
    first_new = seen.index("new")
    assert set(seen[first_new:]) == {"new"}, "a reader went back to the old snapshot"
    assert store.card(new_only) == as_read(make_cards("new", new_n, shift=0.2)[2_500])


def test_retention_keeps_the_window_and_deletes_older_keys(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix, retention=3, batch_size=7)
    for k in range(5):
        store.publish_cards(make_meta(f"s{k}", 40), make_cards(f"s{k}", 40))

    assert store.list_ids() == ["s2", "s3", "s4"]
    assert snapshot_ids_in_keys(redis_client, key_prefix) == {"s2", "s3", "s4"}
    assert all(redis_client.ttl(k) == -1 for k in keys_of(redis_client, key_prefix))
    with pytest.raises(SnapshotNotFound, match=r"snapshot 's0' .* stored: \['s2', 's3', 's4'\]"):
        store.card("acc-00001", snapshot_id="s0")
    card = make_cards("s2", 40)[1]
    assert store.card("acc-00001", snapshot_id="s2") == as_read(card, previous=card["risk"])


def test_unhealthy_publishes_move_latest_only_and_last_good_is_never_deleted(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix, retention=2)
    store.publish_cards(make_meta("a", 5), make_cards("a", 5))
    for sid in ("b", "c", "d"):
        store.publish_cards(make_meta(sid, 5, healthy=False), make_cards(sid, 5))

    assert store.latest() == make_meta("d", 5, healthy=False)
    assert store.last_good() == make_meta("a", 5)
    assert store.list_ids() == ["c", "d"]
    assert snapshot_ids_in_keys(redis_client, key_prefix) == {"a", "c", "d"}
    assert store.card("acc-00002", snapshot_id="a") == as_read(make_cards("a", 5)[2])

    store.publish_cards(make_meta("e", 5), make_cards("e", 5))
    assert store.last_good() == make_meta("e", 5)
    assert snapshot_ids_in_keys(redis_client, key_prefix) == {"d", "e"}


def test_publishing_an_id_twice_is_refused_and_changes_nothing(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix)
    store.publish_cards(make_meta("s1", 3), make_cards("s1", 3))
    with pytest.raises(SnapshotExists, match=r"snapshot 's1' .* already published"):
        store.publish_cards(make_meta("s1", 4, healthy=False), make_cards("other", 4))
    assert store.list_ids() == ["s1"]
    assert store.latest() == make_meta("s1", 3)
    assert store.card("acc-00000") == as_read(make_cards("s1", 3)[0])
    assert store.card("acc-00003") is None


@pytest.mark.parametrize(
    ("cards", "n_accounts", "error", "match"),
    [
        ([], 0, DataContractError, "has no cards"),
        (
            make_cards("x", 3) + make_cards("x", 1),
            4,
            DataContractError,
            r"3 distinct .* \(4 cards streamed",
        ),
        (make_cards("x", 3), 2, DataContractError, "n_accounts is 2 but 3 distinct"),
        (
            [*make_cards("x", 3), {"account_id": "acc-9", "account_name": "N"}],
            4,
            DataContractError,
            r"card #3 \(account_id='acc-9'\) lacks \['owner', 'segment', 'risk'\]",
        ),
        (
            [{**make_cards("x", 1)[0], "risk": float("nan")}],
            1,
            DataContractError,
            "'risk' must be a finite number; got nan",
        ),
    ],
)
def test_a_refused_publish_keeps_readers_on_the_old_snapshot_and_leaves_no_keys(
    redis_client: redis.Redis,
    key_prefix: str,
    cards: list[dict[str, Any]],
    n_accounts: int,
    error: type[Exception],
    match: str,
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix, batch_size=2)
    store.publish_cards(make_meta("old", 2), make_cards("old", 2))
    with pytest.raises(error, match=match):
        store.publish_cards(make_meta("bad", n_accounts), cards)
    assert store.latest() == make_meta("old", 2)
    assert snapshot_ids_in_keys(redis_client, key_prefix) == {"old"}


def test_a_publish_that_dies_half_way_can_be_retried(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix, batch_size=10)

    def dying() -> Iterator[dict[str, Any]]:
        yield from make_cards("s1", 25)
        raise OSError("scoring worker lost its input")

    with pytest.raises(OSError, match="lost its input"):
        store.publish_cards(make_meta("s1", 30), dying())
    assert store.latest() is None
    assert keys_of(redis_client, key_prefix) == []

    store.publish_cards(make_meta("s1", 30), make_cards("s1", 30))
    assert store.card("acc-00029") == as_read(make_cards("s1", 30)[29])


def test_history_gives_the_trend_oldest_first(redis_client: redis.Redis, key_prefix: str) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix, retention=3)
    risks = {"s0": 0.1, "s1": 0.2, "s2": None, "s3": 0.4}
    for sid, risk in risks.items():
        cards = make_cards(sid, 3)
        if risk is None:
            cards = cards[1:]  # the account is missing from this snapshot
        else:
            cards[0]["risk"] = risk
        store.publish_cards(make_meta(sid, len(cards)), cards)

    points = store.history("acc-00000")
    assert [(meta.snapshot_id, risk) for meta, risk in points] == [("s1", 0.2), ("s3", 0.4)]
    assert [m.snapshot_id for m, _ in store.history("acc-00000", n=1)] == ["s3"]
    assert store.history("unknown") == []


def test_find_by_id_and_by_partial_accent_and_case_insensitive_name(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix)
    names = {
        "acc-1": "Société Générale",
        "acc-2": "ACME Corp",
        "acc-3": "Acme",
        "acc-4": "Zürich Versicherung",
        "acc-5": "Big  acme Holdings",
        "acc-6": "Star*Wars [Fan] Club",
        "acc-7": "Named acc-1 oddly",
    }
    cards = [
        {"account_id": a, "account_name": n, "owner": "ana", "segment": "smb", "risk": 0.5}
        for a, n in names.items()
    ]
    store.publish_cards(make_meta("s1", len(cards)), cards)

    def ids(query: str, **kwargs: Any) -> list[str]:
        return [c["account_id"] for c in store.find(query, **kwargs)]

    assert ids("acme") == ["acc-3", "acc-2", "acc-5"]  # exact, prefix, then inside
    assert ids("SOCIETE gen") == ["acc-1"]
    assert ids("générale") == ["acc-1"]
    assert ids("zurich") == ["acc-4"]
    assert ids("acc-1") == ["acc-1", "acc-7"]  # the exact id first, then names
    assert ids("acme", limit=2) == ["acc-3", "acc-2"]
    assert ids("*") == ["acc-6"]
    assert ids("[fan]") == ["acc-6"]
    assert ids("star?wars") == []  # glob characters are literal
    assert ids("s*s") == []
    assert ids("   ") == []
    assert ids("nothing like it") == []


def test_meta_and_store_parameters_are_checked(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match=r"'snapshot_id' parameter of SnapshotMeta .* 'a b'"):
        make_meta("a b", 1)
    with pytest.raises(ValueError, match=r"'book' parameter of SnapshotStore .* 'x\{y\}'"):
        SnapshotStore(redis_client, book="x{y}")
    with pytest.raises(ValueError, match=r"'retention' parameter of SnapshotStore .* Got 0"):
        SnapshotStore(redis_client, retention=0)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://churn:s3cr3t-pw@127.0.0.1:{port}/0", "redis://churn:***@127.0.0.1:{port}/0"),
        ("redis://:s3cr3t-pw@127.0.0.1:{port}/2", "redis://:***@127.0.0.1:{port}/2"),
        (
            "redis://127.0.0.1:{port}/0?password=s3cr3t-pw",
            "redis://127.0.0.1:{port}/0?password=***",
        ),
    ],
)
def test_connection_errors_name_the_server_but_never_the_password(url: str, shown: str) -> None:
    port = closed_port()
    with pytest.raises(StoreUnavailable) as caught:
        connect(url.format(port=port))
    message = str(caught.value)
    assert message.startswith(f"Redis at {shown.format(port=port)} is not reachable: ")
    assert "s3cr3t" not in message


def test_a_malformed_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError, match=r"REDIS_URL must be a redis://.* 'http://u:\*\*\*@h'"):
        connect("http://u:s3cr3t-pw@h")


def test_no_url_gives_the_embedded_store_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.state.store"):
        client = connect(None)
    assert "Nothing persists" in caplog.text
    assert ping(client)
    assert client.eval("return redis.call('PING')", 0) == "PONG"  # Lua works


def test_redis_lost_after_start_is_store_unavailable() -> None:
    port = closed_port()
    client = redis.Redis(port=port, decode_responses=True, retry=Retry(NoBackoff(), 0))
    assert not ping(client)
    with pytest.raises(
        StoreUnavailable, match=rf"Redis at redis://localhost:{port}/0 is not reach"
    ):
        SnapshotStore(client).latest()


def test_staged_keys_expire_until_the_flip_and_an_expired_one_blocks_it(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix, batch_size=5)
    store.publish_cards(make_meta("old", 2), make_cards("old", 2))
    staged = f"{key_prefix}:{{default}}:snap:new:k:0"  # the first block, written mid-stream
    n = BLOCK + 10

    def cards_then_lose_a_key() -> Iterator[dict[str, Any]]:
        yield from make_cards("new", n)
        assert 0 < redis_client.ttl(staged) <= STAGING_TTL_S
        redis_client.unlink(staged)  # as if the staging TTL had run out

    with pytest.raises(StoreError, match=r"snapshot 'new' was not published .*STAGING_EXPIRED"):
        store.publish_cards(make_meta("new", n), cards_then_lose_a_key())
    assert store.latest() == make_meta("old", 2)
    leftovers = [k for k in keys_of(redis_client, key_prefix) if ":snap:new:" in k]
    assert leftovers
    assert all(0 < redis_client.ttl(k) <= STAGING_TTL_S for k in leftovers)


def test_iter_cards_reads_every_card_of_a_snapshot(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix, batch_size=7)
    assert list(store.iter_cards()) == []
    store.publish_cards(make_meta("s1", 25), make_cards("s1", 25))
    store.publish_cards(make_meta("s2", 25), make_cards("s2", 25, shift=0.1))
    latest = {card["account_id"]: card["risk"] for card in store.iter_cards()}
    older = {card["account_id"]: card["risk"] for card in store.iter_cards(snapshot_id="s1")}
    assert len(latest) == len(older) == 25
    assert latest != older
    with pytest.raises(SnapshotNotFound):
        list(store.iter_cards(snapshot_id="nope"))
