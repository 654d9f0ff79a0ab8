"""Kill switch and the snapshot it makes readers see, on the real Redis and the embedded store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis

from bot.state import KillSwitch, KillSwitchState, SnapshotMeta, SnapshotStore, serving_snapshot

pytestmark = pytest.mark.clock


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def meta(sid: str, *, healthy: bool) -> SnapshotMeta:
    return SnapshotMeta(
        snapshot_id=sid,
        as_of="2026-05-04",
        model_version="m-1",
        created_at="2026-05-04T06:00:00+00:00",
        healthy=healthy,
        n_accounts=1,
        health=[],
    )


def card() -> dict[str, object]:
    return {"account_id": "a1", "account_name": "A", "owner": "o", "segment": "s", "risk": 0.5}


def test_a_switch_nobody_touched_is_off(redis_client: redis.Redis, key_prefix: str) -> None:
    assert KillSwitch(redis_client, prefix=key_prefix).state() == KillSwitchState(
        on=False, reason="", who="", when="", source="none"
    )


def test_trip_keeps_the_first_reason_and_reset_records_who(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    clock = Clock()
    switch = KillSwitch(redis_client, prefix=key_prefix, clock=clock)
    other_process = KillSwitch(redis_client, prefix=key_prefix, clock=clock)

    first = switch.trip("AUC 0.58 below floor 0.65", who="health-check", source="health_check")
    tripped = KillSwitchState(
        on=True,
        reason="AUC 0.58 below floor 0.65",
        who="health-check",
        when="2026-05-04T09:30:00+00:00",
        source="health_check",
    )
    assert first == tripped
    assert other_process.state() == tripped

    clock.advance(minutes=5)
    assert other_process.trip("data looks odd", who="U123", source="admin") == tripped

    clock.advance(hours=1)
    off = switch.reset(who="U123")
    assert off == KillSwitchState(
        on=False, reason="", who="U123", when="2026-05-04T10:35:00+00:00", source="admin"
    )
    assert other_process.state() == off
    assert other_process.trip("again", who="U9", source="admin").reason == "again"


def test_concurrent_trips_leave_one_whole_record(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    switch = KillSwitch(redis_client, prefix=key_prefix)
    start = threading.Barrier(8)
    results: list[KillSwitchState] = []

    def trip(i: int) -> None:
        start.wait(timeout=30)
        results.append(switch.trip(f"reason {i}", who=f"who {i}", source="admin"))

    threads = [threading.Thread(target=trip, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    final = switch.state()
    assert final.on
    assert final.who == final.reason.replace("reason", "who")
    assert results == [final] * 8


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.trip(" ", who="U1", source="admin"), r"'reason' parameter of KillSwitch.trip"),
        (lambda s: s.trip("r", who="", source="admin"), r"'who' parameter of KillSwitch.trip"),
        (
            lambda s: s.trip("r", who="U1", source="none"),
            r"'source' parameter of KillSwitch.trip must be one of \['admin', 'health_check'\]",
        ),
        (lambda s: s.reset(who=""), r"'who' parameter of KillSwitch.reset"),
    ],
)
def test_bad_arguments_are_refused(
    redis_client: redis.Redis, key_prefix: str, call: object, match: str
) -> None:
    switch = KillSwitch(redis_client, prefix=key_prefix)
    with pytest.raises(ValueError, match=match):
        call(switch)  # type: ignore[operator]
    assert not switch.state().on


def test_a_naive_clock_is_refused(redis_client: redis.Redis, key_prefix: str) -> None:
    switch = KillSwitch(redis_client, prefix=key_prefix, clock=lambda: datetime(2026, 5, 4))
    with pytest.raises(ValueError, match="'clock' of KillSwitch must return an aware datetime"):
        switch.trip("r", who="U1", source="admin")


def test_serving_snapshot_follows_the_switch(redis_client: redis.Redis, key_prefix: str) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix)
    switch = KillSwitch(redis_client, prefix=key_prefix)
    assert serving_snapshot(store, switch) == (None, switch.state())

    store.publish_cards(meta("bad-only", healthy=False), [card()])
    switch.trip("drift", who="health-check", source="health_check")
    shown, state = serving_snapshot(store, switch)
    assert shown is None  # no good snapshot yet: the caller says so honestly
    assert state.on

    switch.reset(who="U1")
    store.publish_cards(meta("good", healthy=True), [card()])
    store.publish_cards(meta("bad", healthy=False), [card()])
    assert serving_snapshot(store, switch) == (meta("bad", healthy=False), switch.state())

    switch.trip("drift", who="health-check", source="health_check")
    shown, state = serving_snapshot(store, switch)
    assert shown == meta("good", healthy=True)
    assert state.reason == "drift"
