"""Posting digests for 500 channels of 10 accounts through the Slack emulator.

Every call takes 50 ms (emulator latency), 10% of ``chat.postMessage`` calls are answered 429
with ``Retry-After: 1``, and the emulator also enforces one message per second per channel.
Digests run through the real path (claims in Redis, compose from a published snapshot, the
sender's pacing and retries) on a bounded thread pool: Slack's limit is per channel, so
channels go in parallel while each channel's parts wait for one another.

Usage: ``.venv/bin/python bench/digests.py [--channels 500] [--threads 100] [REDIS_URL]``
(default redis://127.0.0.1:6379/0). Prints wall time, messages posted, lost and duplicated
(both must be 0) beside the floors set by the per-channel rule and by the latency. Works under
a unique key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient

from bot.deps import build_deps
from bot.digest.channels import ChannelsConfig, DigestConfig
from bot.digest.claims import SlotClaims
from bot.digest.compose import plan_now
from bot.digest.poster import build_poster
from bot.digest.sender import DIGEST_EVENT, DigestSender
from bot.emulator import SlackEmulator
from bot.settings import Settings, load_settings
from bot.state import SnapshotMeta, connect

ACCOUNTS_PER_CHANNEL = 10
LATENCY_S = 0.05
RATE_LIMITED_SHARE = 0.10
PER_CHANNEL_INTERVAL_S = 1.0
#: redis-py 8's pool refuses a 101st connection ("Too many connections").
MAX_THREADS = 100


def digests(n: int) -> tuple[DigestConfig, ...]:
    return tuple(
        DigestConfig(
            name=f"bench-{i:04d}",
            channel=f"C{i:09d}",
            owners=(f"csm-{i:04d}@example.com",),
            schedule="0 9 * * mon",
            timezone="UTC",
            max_accounts=ACCOUNTS_PER_CHANNEL,
        )
        for i in range(n)
    )


def cards(n_channels: int) -> Iterator[dict[str, Any]]:
    """Ten accounts per owner, with the reasons and actions a real card carries."""
    for channel in range(n_channels):
        for k in range(ACCOUNTS_PER_CHANNEL):
            risk = round(0.95 - k * 0.05, 4)
            yield {
                "account_id": f"acc-{channel:04d}-{k:02d}",
                "account_name": f"Account {channel}-{k} Holdings",
                "owner": f"csm-{channel:04d}@example.com",
                "segment": "smb",
                "plan": "growth",
                "arr": 24_000.0,
                "risk": risk,
                "band": "high" if risk >= 0.3 else "medium",
                "reasons": [
                    {"code": "usage_decline", "text": "Logins down 48% on the previous 30 days"},
                    {"code": "renewal", "text": "Renewal in 48 days (Jan 10)"},
                    {"code": "escalations", "text": "3 open escalations, oldest 40 days"},
                ],
                "action": {
                    "rule": "usage-drop",
                    "action": "Invite the team to an enablement webinar",
                    "why": "Falling usage comes before churn",
                    "owner": "CSM",
                },
                "model_version": "bench-model",
                "change": 0.02,
            }


def bench_settings(emulator: SlackEmulator, n: int) -> Settings:
    settings = load_settings(
        {"SLACK_BOT_TOKEN": emulator.token, "SLACK_API_URL": emulator.base_url}
    )
    channels = ChannelsConfig(digests=digests(n))
    return dataclasses.replace(settings, channels=channels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("redis_url", nargs="?", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--threads", type=int, default=100)
    args = parser.parse_args()

    if not 0 < args.threads <= MAX_THREADS:
        parser.error(f"--threads must be 1-{MAX_THREADS}: redis-py's pool holds 100 connections")
    client = connect(args.redis_url)
    prefix = f"bench-{uuid.uuid4().hex}"
    now = dt.datetime.now(dt.UTC)
    try:
        with SlackEmulator(latency=LATENCY_S, rate_limit_per_channel=1.0) as emulator:
            settings = bench_settings(emulator, args.channels)
            deps = build_deps(settings, client=client, prefix=prefix)
            meta = SnapshotMeta(
                snapshot_id="bench-1",
                as_of=now.date().isoformat(),
                model_version="bench-model",
                created_at=now.isoformat(),
                healthy=True,
                n_accounts=args.channels * ACCOUNTS_PER_CHANNEL,
            )
            deps.store.publish_cards(meta, cards(args.channels))
            claims = SlotClaims(client, prefix=prefix)
            expected = {
                d.channel: len(
                    plan_now(
                        deps.store,
                        deps.switch,
                        settings.spec,
                        d,
                        claims.previous(d.name),
                        moved_sharply=settings.channels.moved_sharply,
                        now=now,
                    ).messages
                )
                for d in settings.channels.digests
            }
            emulator.fail_randomly("chat.postMessage", RATE_LIMITED_SHARE, retry_after=1, seed=7)
            web = WebClient(
                token=emulator.token, base_url=emulator.base_url, retry_handlers=[], timeout=30
            )
            poster = build_poster(deps, DigestSender(web))

            start, cpu = time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(args.threads) as pool:
                outcomes = list(pool.map(lambda d: poster.run(d, now), settings.channels.digests))
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            report(emulator, expected, outcomes, Timing(wall, cpu, args.threads))
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1_000))
        for chunk in range(0, len(keys), 1_000):
            client.unlink(*keys[chunk : chunk + 1_000])


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # this process: the sender, Redis client, and the emulator itself
    threads: int


def report(
    emulator: SlackEmulator, expected: dict[str, int], outcomes: list[Any], timing: Timing
) -> None:
    lost = duplicated = posted = 0
    for channel, parts in expected.items():
        seen = Counter(
            m["metadata"]["event_payload"]["part"]
            for m in emulator.history(channel)
            if m.get("metadata", {}).get("event_type") == DIGEST_EVENT
        )
        posted += sum(seen.values())
        lost += sum(1 for part in range(1, parts + 1) if part not in seen)
        duplicated += sum(count - 1 for count in seen.values())
    calls = emulator.calls("chat.postMessage")
    answered_429 = sum(1 for call in calls if call.status == 429)
    lookups = len(emulator.calls("conversations.history")) + len(
        emulator.calls("conversations.replies")
    )
    max_parts = max(expected.values())
    waves = math.ceil(len(expected) / timing.threads)
    rows = [
        ("channels", f"{len(expected)}"),
        ("messages expected", f"{sum(expected.values())}  ({max_parts} part(s) per digest)"),
        ("messages posted", f"{posted}"),
        ("lost", f"{lost}"),
        ("duplicated", f"{duplicated}"),
        ("chat.postMessage calls", f"{len(calls)}  ({answered_429} answered 429)"),
        ("lookups before re-posting", f"{lookups}"),
        ("outcomes", f"{dict(Counter(outcome.status for outcome in outcomes))}"),
        ("wall time", f"{timing.wall:.2f} s  ({timing.threads} threads)"),
        ("CPU time, this process", f"{timing.cpu:.2f} s  (sender, Redis client and emulator)"),
        (
            "floor: 1 msg/s per channel",
            f"{(max_parts - 1) * PER_CHANNEL_INTERVAL_S:.2f} s with every channel in parallel; "
            f"{waves * (max_parts - 1) * PER_CHANNEL_INTERVAL_S:.2f} s in {waves} waves "
            f"of {timing.threads}",
        ),
        (
            "floor: latency",
            f"{posted * LATENCY_S:.2f} s sequential ({posted} x {LATENCY_S * 1000:.0f} ms); "
            f"{posted * LATENCY_S / timing.threads:.2f} s over {timing.threads} threads",
        ),
    ]
    for label, value in rows:
        print(f"{label:<28}{value}")


if __name__ == "__main__":
    main()
