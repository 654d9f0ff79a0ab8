"""One `/churn` text costs one Redis round trip and a bounded amount of work, whatever its
length and whatever the size of the book; a whole `/churn` hit through the real app costs
two on a warm process (the lookup and the signature replay guard).

Counted, not timed, on a private redis-server (its command statistics are this test's alone):
round trips by the client's connection, work by the server's command counts (commands a Lua
script runs count too). Before the name index, a text that matched nothing scanned the whole
name index up to three times: 156 round trips and 677 ms on a 100,000-name book.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bot.app import build_app
from bot.deps import build_deps
from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.feedback.track_record import refresh_summary
from bot.lookup import MAX_PROBES, PICK_CANDIDATES, resolve
from bot.loopback import LoopbackServer
from bot.settings import load_settings
from bot.state import KillSwitch, SnapshotMeta, SnapshotStore
from bot.state.flag_log import FlagLog
from bot.web import build_wsgi
from tests.slack_harness import BOOK, CONFIG, NOW, SECRET, Harness, RedisServer, make_card, publish
from tests.test_e2e_churn import churn, mrkdwn_texts
from tests.test_track_record_e2e import CALIBRATION, old_flags

#: Commands the server may run for one text: pointers, meta, shape, id hashes, the name index
#: (per probe: two lookups in its block index and a few blocks), the card and its trend ...
MOST_COMMANDS = 20 + 8 * MAX_PROBES
#: ... plus five reads per candidate row of a pick list.
ROW_COMMANDS = 5


class CountingConnection(redis.Connection):
    """A connection that counts the requests it sends (a pipeline is one)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def commands_run(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(
        int(value["calls"])
        for name, value in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))
    )


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    pool = redis.ConnectionPool.from_url(
        redis_server.url, connection_class=CountingConnection, decode_responses=True, protocol=2
    )
    client = redis.Redis(connection_pool=pool)
    for book, size in (("small", 500), ("large", 5_000)):
        cards = [make_card(f"ACC-{i:06d}", f"Company {i} Holdings", 0.5) for i in range(size)]
        cards += [make_card("ACC-X1", "Gamma Logistics", 0.4)]
        meta = SnapshotMeta(
            snapshot_id="s1",
            as_of="2026-11-23",
            model_version="20261123-abcdef0123",
            created_at="2026-11-23T09:00:00+00:00",
            healthy=True,
            n_accounts=len(cards),
            health=[],
        )
        SnapshotStore(client, prefix="bounds", book=book).publish_cards(meta, cards)
    yield client
    client.close()


@pytest.mark.parametrize("book", ["small", "large"])
@pytest.mark.parametrize(
    ("text", "kind", "trips"),
    [
        (" ".join(f"q{i:02d}" for i in range(50)), "too_long", 0),  # more words than any name
        (" ".join(f"zz{i:02d}" for i in range(12)), "none", 1),
        ("z" * 200, "none", 1),
        ("nothing like it", "none", 1),
        ("Gama Logistic", "none", 1),
        ("gamma logistics", "card", 1),
        ("acc-000042", "card", 1),
        ("company 4", "pick", 1),
    ],
)
def test_one_text_costs_one_round_trip_and_bounded_work(
    client: redis.Redis, book: str, text: str, kind: str, trips: int
) -> None:
    store = SnapshotStore(client, prefix="bounds", book=book)
    switch = KillSwitch(client, prefix="bounds", book=book)
    store.latest()  # the snapshot's layout is read once per process, not per text
    before, sent = commands_run(client), CountingConnection.sent
    found = resolve(store, text, switch_key=switch.key)
    sent = CountingConnection.sent - sent
    work = commands_run(client) - before
    print(f"{book}: {text[:30]!r}: {sent} round trips, {work} commands -> {found.kind}")
    assert found.kind == kind
    assert sent == trips
    rows = PICK_CANDIDATES + 1 if kind == "pick" else 0
    assert work <= MOST_COMMANDS + ROW_COMMANDS * rows
    if kind == "card":
        assert found.history is not None, "the card's trend came with the lookup"
    if text == "Gama Logistic":
        assert "Gamma Logistics" in found.suggestions


@pytest.fixture
def counted(redis_server: RedisServer, emulator: SlackEmulator) -> Iterator[Harness]:
    """The real app on a private redis-server, through a client that counts its requests."""
    settings = load_settings(
        {
            "CHURNBOT_CONFIG": str(CONFIG),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": emulator.token,
            "SLACK_API_URL": emulator.base_url,
        }
    )
    pool = redis.ConnectionPool.from_url(
        redis_server.url, connection_class=CountingConnection, decode_responses=True, protocol=2
    )
    client = redis.Redis(connection_pool=pool)
    deps = build_deps(settings, client=client, clock=lambda: NOW)
    with LoopbackServer(build_wsgi(build_app(deps), deps)) as server:
        sender = SlackSender(server.url, SECRET)
        yield Harness(deps, emulator, sender, server.url)
        sender.close()
    deps.background.shutdown(wait=True)
    client.close()


def test_a_churn_hit_on_a_warm_process_costs_two_round_trips(
    counted: Harness, redis_server: RedisServer
) -> None:
    """The lookup (switch, snapshot, card and trend in one call) and the replay guard; the
    track record line comes from the process (keyed by the served snapshot the lookup read),
    computed by the worker after its scoring run and read from Redis by the first card."""
    old_flags(counted)
    served = publish(counted.deps, BOOK)
    worker_client = redis.Redis.from_url(redis_server.url, decode_responses=True, protocol=2)
    worker = build_deps(counted.deps.settings, client=worker_client, clock=lambda: NOW)
    # What the scoring run and then the worker do after publishing it.
    FlagLog(worker_client).record_snapshot(
        served, iter(BOOK), spec=worker.settings.spec, calibration=CALIBRATION
    )
    refresh_summary(worker)
    worker_client.close()
    line = "Accounts at high risk churned 35% of the time within 90 days"

    first = churn(counted, "acme corp")
    sent = CountingConnection.sent
    warm = churn(counted, "acme corp")
    trips = CountingConnection.sent - sent

    assert line in mrkdwn_texts(first["blocks"]), "the worker's summary, on the first card"
    assert line in mrkdwn_texts(warm["blocks"])
    assert "81%" in mrkdwn_texts(warm["blocks"])
    assert trips <= 2, f"a warm /churn hit cost {trips} Redis round trips"
