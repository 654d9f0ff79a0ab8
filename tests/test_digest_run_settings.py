"""The holdout (and track record) of a run are read once, by its first digest.

A run is every digest of one scheduled time (hundreds of channels at Monday 09:00); reading
the holdout and the track record once for all of them saves two Redis round trips per digest
and makes one run apply one holdout. The next run, or the same one resumed after
``RUN_SETTINGS_FOR``, reads them again. Real Redis, the emulator, a hand-moved clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bot.digest.exposures import ExposureLog
from bot.digest.holdout import HoldoutStore, is_held_out
from bot.digest.poster import RUN_SETTINGS_FOR
from tests.slack_harness import ADMIN, make_card, publish
from tests.test_digest_posting import DUE, WEEK, Rig, make_rig

pytestmark = pytest.mark.clock

OWNERS = {"cs-a": "ana@example.com", "cs-b": "ben@example.com", "cs-d": "dee@example.com"}
SHARE = 0.2


def one_run(max_accounts: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Three digests on the same schedule (one run), one owner each, 10 accounts unless
    ``max_accounts`` says otherwise."""
    return [
        {
            "name": name,
            "channel": f"C0{name.upper().replace('-', '')}0001",
            "owners": [owner],
            "schedule": "0 9 * * mon",
            "timezone": "America/New_York",
            "max_accounts": (max_accounts or {}).get(name, 10),
        }
        for name, owner in OWNERS.items()
    ]


@pytest.fixture
def rig(real_redis: redis.Redis) -> Iterator[Rig]:
    with make_rig(real_redis, {"digests": one_run()}) as made:
        yield made


def book() -> list[dict[str, Any]]:
    return [
        make_card(f"ACC-{name[-1]}{i:05d}", f"Account {name} {i}", 0.9 - i / 100, owner=owner)
        for name, owner in OWNERS.items()
        for i in range(12)
    ]


def held_out(rig: Rig, digest: str) -> set[str]:
    log = ExposureLog(rig.deps.redis, prefix=rig.deps.prefix)
    return {e.account_id for _, name, e in log.read() if name == digest and e.held_out}


def test_a_run_applies_the_holdout_its_first_digest_read(rig: Rig) -> None:
    cards = book()
    publish(rig.deps, cards)
    would_hold = {
        name: {
            c["account_id"]
            for c in cards[12 * n : 12 * n + 10]
            if is_held_out(c["account_id"], SHARE)
        }
        for n, name in enumerate(OWNERS)
    }
    assert all(would_hold.values()), "each digest's top 10 must have accounts to hold out"
    digest = rig.deps.settings.channels.by_name
    assert rig.poster.run(digest("cs-a"), DUE).status == "posted"  # reads: holdout off
    HoldoutStore(rig.deps.redis, prefix=rig.deps.prefix).set(SHARE, who=ADMIN, at=rig.clock())

    assert rig.poster.run(digest("cs-b"), DUE).status == "posted"
    assert held_out(rig, "cs-b") == set(), "the same run: the holdout its first digest read"

    rig.clock.now += RUN_SETTINGS_FOR  # the same run, resumed later: read again
    assert rig.poster.run(digest("cs-d"), DUE).status == "posted"
    assert held_out(rig, "cs-d") == would_hold["cs-d"]

    rig.clock.now = DUE + WEEK  # the next run
    assert rig.poster.run(digest("cs-a"), DUE + WEEK).status == "posted"
    assert held_out(rig, "cs-a") == would_hold["cs-a"]
