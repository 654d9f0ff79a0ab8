"""What one digest costs in Redis round trips, and the audit entry that goes with its finish.

A digest of one part is three round trips once its run's settings are read (the first digest
of a run reads the holdout and the track record for all of them): the claim with everything
the plan reads (kill switch, serving snapshot, the top rows of every owner and segment the
digest merges); the plan's save with
the switch read before part 1; the finish with the exposures, the Slack-outage take and the
"digest posted" audit entry. Each further part adds one (its record with the switch read
before the next), and one more when the channel's pace makes it wait (the lease is renewed
before every wait). Counted by the client's connections (a pipeline is one request), on the
real Redis, the emulator, a hand-moved clock.

The audit entry goes out in the finish's round trip, after it: a run whose claim ran out
before its finish takes its entry back, and the run that holds the slot writes its own, so the
log says once that the digest was posted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from slack_sdk import WebClient

from bot.digest.claims import SlotClaims
from bot.digest.slots import scheduled_slot
from bot.state.store import StoreError
from tests.slack_harness import make_card, publish
from tests.test_digest_posting import DUE, Rig, expire_claims, make_rig
from tests.test_digest_run_settings import OWNERS, one_run

pytestmark = pytest.mark.clock


class CountingConnection(redis.Connection):
    """A connection that counts the requests the test's own thread sends (a pipeline is one;
    background threads of the app are not the digest's)."""

    counting: int | None = None  # the thread counted
    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if threading.get_ident() == CountingConnection.counting:
            CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def counted(real_redis: redis.Redis) -> Iterator[redis.Redis]:
    kwargs = real_redis.connection_pool.connection_kwargs
    pool = redis.ConnectionPool(
        connection_class=CountingConnection,
        **{k: kwargs[k] for k in ("host", "port", "db", "decode_responses", "protocol")},
    )
    client = redis.Redis(connection_pool=pool)
    yield client
    client.close()


#: A team channel: one digest merging two owners' lists.
TEAM = {
    "name": "cs-team",
    "channel": "C0CSTEAM0001",
    "owners": [OWNERS["cs-a"], OWNERS["cs-b"]],
    "schedule": "0 9 * * mon",
    "timezone": "America/New_York",
    "max_accounts": 10,
}


@pytest.fixture
def rig(counted: redis.Redis) -> Iterator[Rig]:
    """Three digests on one schedule (one run), one owner each; ``cs-d`` shows enough
    accounts for two parts; and ``cs-team`` merging two owners."""
    with make_rig(counted, {"digests": [*one_run({"cs-d": 15}), TEAM]}) as made:
        publish(
            made.deps,
            [
                make_card(f"ACC-{name[-1]}{i:05d}", f"Account {name} {i}", 0.9 - i / 100, owner=o)
                for name, o in OWNERS.items()
                for i in range(15)
            ],
        )
        yield made


def trips(run: Any) -> tuple[Any, int]:
    """What ``run()`` returns, and the round trips it made from this thread."""
    CountingConnection.counting, CountingConnection.sent = threading.get_ident(), 0
    try:
        return run(), CountingConnection.sent
    finally:
        CountingConnection.counting = None


def digest(rig: Rig, name: str) -> Any:
    return rig.deps.settings.channels.by_name(name)


def posted_entries(rig: Rig, name: str) -> list[Any]:
    return [
        e
        for e in rig.deps.audit.recent(50)
        if e.what == "digest posted" and e.detail["digest"] == name
    ]


def test_a_digest_is_three_round_trips_and_a_part_more_is_one(rig: Rig) -> None:
    first, _ = trips(lambda: rig.poster.run(digest(rig, "cs-a"), DUE))  # reads the settings
    assert first.status == "posted"

    outcome, sent = trips(lambda: rig.poster.run(digest(rig, "cs-b"), DUE))
    assert outcome.status == "posted"
    assert len(outcome.ts) == 1
    assert sent == 3, "claim + plan reads; plan + switch; finish + exposures + outage + audit"

    waits = len(rig.clock.sleeps)
    outcome, sent = trips(lambda: rig.poster.run(digest(rig, "cs-d"), DUE))
    assert outcome.status == "posted"
    assert len(outcome.ts) == 2
    paced = len(rig.clock.sleeps) - waits  # 1 message/s per channel: the lease is renewed first
    assert paced == 1
    assert sent == 4 + paced, "one more: part 1's record with the switch read before part 2"

    team, sent = trips(lambda: rig.poster.run(digest(rig, "cs-team"), DUE))
    assert team.status == "posted"
    assert sent == 3, "both owners' lists come with the claim"
    (message,) = rig.emulator.history("C0CSTEAM0001")
    shown = [b for b in message["blocks"] if b.get("block_id", "").startswith("fb:")]
    assert len(shown) == 10, "the riskiest ten of both owners' thirty accounts"

    again, sent = trips(lambda: rig.poster.run(digest(rig, "cs-b"), DUE))
    assert again.status == "already_done"
    assert sent == 1
    for name in OWNERS:
        entries = posted_entries(rig, name)
        assert len(entries) == 1
        slot = scheduled_slot(name, digest(rig, name).channel, digest(rig, name).zone, DUE)
        record = SlotClaims(rig.redis, prefix=rig.deps.prefix).claim(slot, "t").record
        # by part: a record's fields come back in the hash's order, which Redis does not keep
        assert entries[0].detail["ts"] == [ts for _, ts in sorted(record.ts.items())]


class LeaseLosingClient(WebClient):
    """A client whose process stalls past its lease right after Slack accepted its last
    post: another worker may hold the slot by the time the run finishes."""

    def __init__(self, *args: Any, rig: Rig, last: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rig = rig
        self.last = last
        self.posts = 0

    def chat_postMessage(self, **kwargs: Any) -> Any:
        response = super().chat_postMessage(**kwargs)
        self.posts += 1
        if self.posts == self.last:
            expire_claims(self.rig)
        return response


def test_a_finish_that_lost_its_claim_takes_its_audit_entry_back(rig: Rig) -> None:
    late = LeaseLosingClient(
        token=rig.emulator.token, base_url=rig.emulator.base_url, retry_handlers=[], rig=rig, last=2
    )
    lost = rig.new_poster(late).run(digest(rig, "cs-d"), DUE)
    assert lost.status == "busy", "its finish came after its lease"
    assert posted_entries(rig, "cs-d") == [], "the entry sent with the refused finish is gone"

    resumed = rig.new_poster().run(digest(rig, "cs-d"), DUE)
    assert resumed.status == "posted"
    assert len(rig.emulator.messages("C0CSD0001")) == 2, "part 2 was found, not posted again"
    entries = posted_entries(rig, "cs-d")
    assert len(entries) == 1
    assert entries[0].detail["ts"] == list(resumed.ts)


def test_a_failed_plan_read_releases_the_claim(rig: Rig) -> None:
    """The plan's reads go out with the claim; when they fail, the run still gives the slot up
    (as when they were a call of their own), so the next run need not wait for the lease."""
    switch_key = rig.deps.switch.key
    rig.redis.set(switch_key, "not a hash")
    with pytest.raises(StoreError, match="WRONGTYPE"):
        rig.poster.run(digest(rig, "cs-b"), DUE)
    assert not list(rig.redis.scan_iter(match=f"{rig.deps.prefix}:*:claim:*")), "released"
    assert rig.emulator.messages("C0CSB0001") == []

    rig.redis.delete(switch_key)
    assert rig.poster.run(digest(rig, "cs-b"), DUE).status == "posted"
