"""Posting digests for 500 channels of 10 accounts, against a bare poster on the same emulator.

The Slack emulator runs in a process of its own: every call takes 50 ms, 10% of
``chat.postMessage`` calls are answered 429 with ``Retry-After: 1``, and it allows one message
per second per channel. Two posters take turns, each on a fresh emulator, --runs times each:

* **the floor**, a bare poster: a plain slack_sdk ``WebClient`` posting the same messages (the
  same parts, the first in the channel and the rest in its thread) on the same number of
  threads, one channel per task, waiting exactly ``Retry-After`` after a 429. No Redis, no
  claims, no composing: what any poster pays for the latency and the 429s.
* **churnbot**: the real path (claims in Redis, compose from a published snapshot, the
  sender's pacing and retries, the record of every part, the worker's metrics), one
  ``DigestPoster.run`` per channel, built as ``churnbot worker`` builds it.

``--processes N`` runs each poster in N processes sharing the threads, as N workers on a
machine of N cores would: the bare poster's channels are shared out among them; every
churnbot process runs every digest, as N ``churnbot worker`` processes on one Redis do, and
each digest is posted by whichever claims it first (the others find it taken). The processes
are forked once the book and the code are loaded, and timed from the moment all are ready.

The book is scored as `churnbot score` scores one: a champion trained once on the sample book
(``bench/score.py``'s), the accounts tiled from it, ten per owner, published as the codec's
packed records, so each digest decodes its cards and words their reasons on read, as in
production (JSON card fixtures decode about 2-5x faster and would flatter churnbot).

Logging is set up as ``churnbot worker`` sets it up (``bot.logs.configure_logging``), for both
posters: slack-sdk's client loggers get a level of their own, so neither formats a debug line
of every request and response (left at slack-sdk's default, that costs a bare post about a
quarter of its instructions, and churnbot's post the same), and churnbot's runs log what the
worker logs, written to ``var/bench/digests-worker.log`` rather than the terminal.

The emulator counts what reached each channel: messages posted, lost and doubled (both must be
0). Prints min and median wall time of each, the CPU per digest of each poster's processes
and of the emulator's, and churnbot's ratio to the floor (target <= 1.2x).

Usage: ``.venv/bin/python bench/digests.py [--channels 500] [--threads 100] [--runs 3]
[--processes 1] [REDIS_URL]`` (default redis://127.0.0.1:6379/0). Works under a unique key
prefix per run and deletes its keys afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import gc
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TextIO

import redis
from _common import delete_prefix, say, versus_floor
from score import REPO, make_rows, train_champion
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.deps import Deps, build_deps
from bot.digest.channels import ChannelsConfig, DigestConfig
from bot.digest.claims import SlotClaims
from bot.digest.compose import plan_now
from bot.digest.metrics import WorkerMetrics
from bot.digest.poster import build_poster
from bot.digest.sender import DIGEST_EVENT, DigestSender, PartMarker
from bot.emulator import SlackEmulator
from bot.logs import configure_logging
from bot.publish import build_scorer
from bot.render import Message
from bot.settings import Settings, load_settings
from bot.state import SnapshotMeta, connect
from models.cards import ScoredChunk
from models.registry import Registry

ACCOUNTS_PER_CHANNEL = 10
LATENCY_S = 0.05
RATE_LIMITED_SHARE = 0.10
PER_CHANNEL_RATE = 1.0  # messages per second per channel, as Slack allows
#: redis-py 8's pool refuses a 101st connection ("Too many connections").
MAX_THREADS = 100
TOKEN = "xoxb-bench"
#: Where churnbot's runs log (as the worker would, one line per digest).
WORKER_LOG = REPO / "var" / "bench" / "digests-worker.log"
#: A scored book: its codec spec and its chunks (:func:`scored_book`).
Book = tuple[str, list[ScoredChunk]]


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


def scored_book(n_channels: int, registry: Path) -> tuple[str, list[ScoredChunk]]:
    """Ten accounts per owner, scored by a champion trained as `churnbot train` would: the
    records the digests decode are the production codec's (reasons worded on read, the
    playbook's action), as `churnbot score` publishes them. Returns the codec spec and the
    chunks."""
    settings = load_settings({"CHURNBOT_CONFIG": str(REPO / "config")})
    scorer = build_scorer(settings, Registry(registry).load())
    rows = make_rows(n_channels * ACCOUNTS_PER_CHANNEL)
    rows[settings.schema.owner_column] = [
        f"csm-{i // ACCOUNTS_PER_CHANNEL:04d}@example.com" for i in range(len(rows))
    ]
    return scorer.codec().spec(), list(scorer.column_chunks(rows))


def bench_settings(n: int) -> Settings:
    settings = load_settings({"SLACK_BOT_TOKEN": TOKEN})
    return dataclasses.replace(settings, channels=ChannelsConfig(digests=digests(n)))


# --- the emulator, in its own process ---------------------------------------------------------


@dataclass(frozen=True)
class Counted:
    """What reached the channels, counted by the emulator."""

    posted: int
    lost: int
    doubled: int
    post_calls: int
    answered_429: int
    lookups: int
    #: CPU seconds the emulator's process spent serving this poster (its start excluded).
    emulator_cpu: float


def _serve_emulator(conn: Connection, seed: int) -> None:
    with SlackEmulator(
        token=TOKEN, latency=LATENCY_S, rate_limit_per_channel=PER_CHANNEL_RATE
    ) as emulator:
        emulator.fail_randomly("chat.postMessage", RATE_LIMITED_SHARE, retry_after=1, seed=seed)
        conn.send(emulator.base_url)
        started = time.process_time()
        expected: dict[str, int] = conn.recv()
        conn.send(_count(emulator, expected, time.process_time() - started))


def _count(emulator: SlackEmulator, expected: dict[str, int], cpu: float) -> Counted:
    posted = lost = doubled = 0
    for channel, parts in expected.items():
        seen = Counter(
            m["metadata"]["event_payload"]["part"]
            for m in emulator.history(channel)
            if m.get("metadata", {}).get("event_type") == DIGEST_EVENT
        )
        posted += sum(seen.values())
        lost += sum(1 for part in range(1, parts + 1) if part not in seen)
        doubled += sum(count - 1 for count in seen.values())
    calls = emulator.calls("chat.postMessage")
    lookups = len(emulator.calls("conversations.history")) + len(
        emulator.calls("conversations.replies")
    )
    return Counted(
        posted, lost, doubled, len(calls), sum(1 for c in calls if c.status == 429), lookups, cpu
    )


@contextlib.contextmanager
def emulator_process(seed: int) -> Iterator[tuple[str, Callable[[dict[str, int]], Counted]]]:
    """A fresh emulator in a child process: its base URL, and a function that ends it and
    returns what it counted."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_emulator, args=(child, seed), daemon=True
    )
    process.start()
    try:
        base_url: str = parent.recv()

        def finish(expected: dict[str, int]) -> Counted:
            parent.send(expected)
            counted: Counted = parent.recv()
            return counted

        yield base_url, finish
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()


# --- the two posters --------------------------------------------------------------------------


def bare_post(web: WebClient, plans: dict[str, tuple[Message, ...]], threads: int) -> None:
    """The floor: each channel's parts in order, the rest in the first one's thread; after a
    429, wait exactly what Slack asks and post again."""

    def post(channel: str, message: Message, marker: PartMarker, thread_ts: str | None) -> str:
        while True:
            try:
                response = web.chat_postMessage(
                    channel=channel,
                    text=message.text,
                    blocks=message.blocks,
                    thread_ts=thread_ts,
                    metadata=marker.metadata(),
                    unfurl_links=False,
                    unfurl_media=False,
                )
                return str(response["ts"])
            except SlackApiError as exc:
                if exc.response.status_code != 429:
                    raise
                time.sleep(float(exc.response.headers.get("Retry-After", 1)))

    def channel_task(channel: str) -> None:
        messages = plans[channel]
        first: str | None = None
        for part, message in enumerate(messages, start=1):
            ts = post(channel, message, PartMarker("bare", part, len(messages)), first)
            first = first or ts

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(channel_task, plans))


def churnbot_run(
    web: WebClient,
    client: redis.Redis,
    settings: Settings,
    prefix: str,
    threads: int,
    now: dt.datetime,
    log: TextIO,
) -> Callable[[], Counter[str]]:
    """One churnbot worker process's digest run for every channel, built as ``churnbot
    worker`` builds its poster on the snapshot under ``prefix``; returns what runs them and
    counts their outcomes. Several such processes race for every slot, as several workers on
    one Redis do: each digest is posted by one of them, the others find it taken."""
    deps = build_deps(settings, client=client, prefix=prefix)
    poster = build_poster(deps, DigestSender(web), metrics=WorkerMetrics())

    def run() -> Counter[str]:
        with contextlib.redirect_stderr(log), ThreadPoolExecutor(threads) as pool:
            outcomes = list(pool.map(lambda d: poster.run(d, now), settings.channels.digests))
        return Counter(outcome.status for outcome in outcomes)

    return run


def bare_run(
    web: WebClient, plans: dict[str, tuple[Message, ...]], threads: int
) -> Callable[[], Counter[str]]:
    """One bare poster process's share of the channels (:func:`bare_post`)."""

    def run() -> Counter[str]:
        bare_post(web, plans, threads)
        return Counter(posted=len(plans))

    return run


#: What one posting process is given: its number, and builds (before the clock starts) what
#: it runs (after).
Prepare = Callable[[int], Callable[[], Counter[str]]]


def _posting_process(conn: Connection, prepare: Prepare, number: int) -> None:
    run = prepare(number)
    conn.send("ready")
    conn.recv()
    started = time.process_time()
    statuses = run()
    conn.send((time.process_time() - started, statuses))


def timed_processes(prepare: Prepare, processes: int) -> tuple[Timing, Counter[str]]:
    """Wall time from the moment every posting process is ready to the moment the last one is
    done, the CPU all of them spent, and their outcomes added up. The processes are forked
    from this one, with the book, the settings and the code already loaded, as long-running
    workers have them; what they build before they are ready is not timed."""
    context = multiprocessing.get_context("fork")
    pipes, children = [], []
    for number in range(processes):
        parent, child = context.Pipe()
        process = context.Process(target=_posting_process, args=(child, prepare, number))
        process.start()
        pipes.append(parent)
        children.append(process)
    try:
        for pipe in pipes:
            pipe.recv()
        timing = Timing()
        started = time.perf_counter()
        for pipe in pipes:
            pipe.send("go")
        statuses: Counter[str] = Counter()
        for pipe in pipes:
            cpu, counted = pipe.recv()
            timing.cpu += cpu
            statuses += counted
        timing.wall = time.perf_counter() - started
        return timing, statuses
    finally:
        for process in children:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()


@contextlib.contextmanager
def worker_log() -> Iterator[TextIO]:
    """The file churnbot's runs log to (appended to, one line per digest)."""
    WORKER_LOG.parent.mkdir(parents=True, exist_ok=True)
    with WORKER_LOG.open("a", encoding="utf-8") as log:
        yield log


@dataclass
class Timing:
    """Wall time of a run, and the CPU time its posting processes spent (the posters, their
    Web API and Redis clients; the emulator runs elsewhere)."""

    wall: float = 0.0
    cpu: float = 0.0


def publish_book(
    client: redis.Redis, settings: Settings, book: Book, prefix: str, now: dt.datetime
) -> Deps:
    """The app's state under ``prefix``, with a snapshot of every channel's accounts."""
    deps = build_deps(settings, client=client, prefix=prefix)
    spec, chunks = book
    meta = SnapshotMeta(
        snapshot_id="bench-1",
        as_of=now.date().isoformat(),
        model_version="bench-model",
        created_at=now.isoformat(),
        healthy=True,
        n_accounts=sum(len(chunk) for chunk in chunks),
    )
    deps.store.publish(meta, spec, chunks)
    return deps


def planned_messages(
    client: redis.Redis, settings: Settings, book: Book, now: dt.datetime
) -> dict[str, tuple[Message, ...]]:
    """The messages churnbot composes for each channel (what the bare poster posts too)."""
    prefix = f"bench-{uuid.uuid4().hex}"
    try:
        deps = publish_book(client, settings, book, prefix, now)
        claims = SlotClaims(client, prefix=prefix)
        return {
            d.channel: plan_now(
                deps.store,
                deps.switch,
                settings.spec,
                d,
                claims.previous(d.name),
                moved_sharply=settings.channels.moved_sharply,
                now=now,
            ).messages
            for d in settings.channels.digests
        }
    finally:
        delete_prefix(client, prefix)


# --- the run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("redis_url", nargs="?", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--threads", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each (>= 3)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="posting processes of each poster, sharing --threads (churnbot: workers racing for "
        "every slot, as several `churnbot worker` do; the bare poster: the channels shared out)",
    )
    args = parser.parse_args()
    if not 0 < args.processes <= args.threads:
        parser.error("--processes must be 1 to --threads")
    if not 0 < args.threads <= MAX_THREADS:
        parser.error(f"--threads must be 1-{MAX_THREADS}: redis-py's pool holds 100 connections")

    configure_logging()
    client = connect(args.redis_url)
    now = dt.datetime.now(dt.UTC)
    settings = bench_settings(args.channels)
    with tempfile.TemporaryDirectory() as registry:
        say("training the champion and scoring the book")
        train_champion(Path(registry))
        book = scored_book(args.channels, Path(registry))
    plans = planned_messages(client, settings, book, now)
    gc.freeze()  # as `churnbot worker` does once it has loaded; both posters run with it
    expected = {channel: len(messages) for channel, messages in plans.items()}
    walls: dict[str, list[float]] = {"bare poster": [], "churnbot": []}
    cpus: dict[str, list[float]] = {"bare poster": [], "churnbot": []}
    counted: dict[str, list[Counted]] = {"bare poster": [], "churnbot": []}
    for run in range(args.runs):
        for label in walls:
            with emulator_process(seed=7 + run) as (base_url, finish), worker_log() as log:
                timing, statuses = post_with(
                    label, base_url, args, client, settings, book, plans, log, now
                )
                counted[label].append(finish(expected))
            if statuses["posted"] != len(plans) or set(statuses) - TAKEN_ELSEWHERE:
                raise SystemExit(f"{label}'s runs ended {dict(statuses)}, not one post each")
            walls[label].append(timing.wall)
            cpus[label].append(timing.cpu)
            got = counted[label][-1]
            say(
                f"run {run + 1}: {label}: {timing.wall:.2f} s (CPU {timing.cpu:.2f} s), "
                f"{got.posted} posted, {got.lost} lost, {got.doubled} doubled, "
                f"{got.answered_429} answered 429; runs ended {dict(statuses)}"
            )
    report(args, expected, walls, cpus, counted)


#: What a racing worker's run ends as when another one posts the digest.
TAKEN_ELSEWHERE = {"posted", "busy", "already_done"}


def post_with(
    label: str,
    base_url: str,
    args: argparse.Namespace,
    client: redis.Redis,
    settings: Settings,
    book: Book,
    plans: dict[str, tuple[Message, ...]],
    log: TextIO,
    now: dt.datetime,
) -> tuple[Timing, Counter[str]]:
    """One timed run of the poster ``label`` on the emulator at ``base_url``, in
    ``args.processes`` processes sharing ``args.threads`` threads."""
    threads = args.threads // args.processes

    def web() -> WebClient:
        return WebClient(token=TOKEN, base_url=base_url, retry_handlers=[], timeout=30)

    if label == "bare poster":
        channels = sorted(plans)
        return timed_processes(
            lambda k: bare_run(
                web(), {c: plans[c] for c in channels[k :: args.processes]}, threads
            ),
            args.processes,
        )
    prefix = f"bench-{uuid.uuid4().hex}"
    try:
        publish_book(client, settings, book, prefix, now)
        return timed_processes(
            lambda _: churnbot_run(
                web(), connect(args.redis_url), settings, prefix, threads, now, log
            ),
            args.processes,
        )
    finally:
        delete_prefix(client, prefix)


def report(
    args: argparse.Namespace,
    expected: dict[str, int],
    walls: dict[str, list[float]],
    cpus: dict[str, list[float]],
    counted: dict[str, list[Counted]],
) -> None:
    parts = sum(expected.values())
    print(
        f"{len(expected)} channels x {ACCOUNTS_PER_CHANNEL} accounts: {parts} messages "
        f"({max(expected.values())} part(s) per digest); {LATENCY_S * 1000:.0f} ms per call, "
        f"{RATE_LIMITED_SHARE:.0%} of posts answered 429 (Retry-After 1 s), "
        f"{PER_CHANNEL_RATE:g} message/s per channel; {args.threads} threads in "
        f"{args.processes} process(es) a poster; {args.runs} runs"
    )
    for label in walls:
        runs = counted[label]
        print(
            f"  {label:<12} wall min {min(walls[label]):.2f} s  median "
            f"{statistics.median(walls[label]):.2f} s;  CPU of the poster's processes median "
            f"{statistics.median(cpus[label]) / len(expected) * 1000:.1f} ms per digest, "
            "the emulator's "
            f"{statistics.median(c.emulator_cpu for c in runs) / len(expected) * 1000:.1f} ms;  "
            f"posted {[c.posted for c in runs]}, "
            f"lost {sum(c.lost for c in runs)}, doubled {sum(c.doubled for c in runs)}, "
            f"429s {[c.answered_429 for c in runs]}, look-ups {sum(c.lookups for c in runs)}"
        )
    low_x, mid_x = versus_floor(walls["churnbot"], walls["bare poster"])
    print(
        f"  churnbot / bare poster: min {low_x:.2f}x  median {mid_x:.2f}x  (target <= 1.2x; "
        "0 lost, 0 doubled)"
    )


if __name__ == "__main__":
    main()
