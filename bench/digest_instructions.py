"""Instructions per digest, churnbot's poster against the bare one, counted by callgrind.

``bench/digests.py`` times 500 digests on 100 threads: the wall-clock figure the target is
set in, which moves with the machine's speed (the same code measured 1.05x / 1.24x on one
machine and 1.67x / 1.61x on one 2-4x slower) and with whatever else runs. This script
counts what each side executes instead, which neither moves: each poster runs in a process of
its own under valgrind's callgrind, one thread, on the same scored book and the same Web API
emulator settings as ``bench/digests.py`` (its functions build both); ten digests warm it up,
then collection is switched on (``callgrind_control``) for ``--digests`` more and off again.
The emulator runs in its own process, outside valgrind, and so do Redis and the training.

Prints the instructions per digest of each (min and median of ``--runs`` alternating runs)
and churnbot's ratio to the bare poster. Needs valgrind (``apt-get install valgrind``); a run
of both takes a minute or two, most of it the interpreter starting under valgrind.

Usage: ``.venv/bin/python bench/digest_instructions.py [--digests 30] [--runs 3]
[--redis-url URL]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import statistics
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from _callgrind import collect, counted, require_valgrind
from _common import add_redis_url, delete_prefix, say, versus_floor
from digests import (
    TOKEN,
    bare_post,
    bench_settings,
    emulator_process,
    planned_messages,
    publish_book,
    scored_book,
)
from score import REPO, train_champion
from slack_sdk import WebClient

from bot.digest.channels import DigestConfig
from bot.digest.metrics import WorkerMetrics
from bot.digest.poster import build_poster
from bot.digest.sender import DigestSender
from bot.logs import configure_logging
from bot.state import connect

WARM_UP = 10
MODES = {"bare poster": "bare", "churnbot": "churnbot"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digests", type=int, default=30, help="digests counted per run")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each (>= 3)")
    add_redis_url(parser)
    parser.add_argument("--child", choices=sorted(MODES.values()), help=argparse.SUPPRESS)
    parser.add_argument("--registry", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        post_counted(args.child, args.registry, args.digests, args.redis_url)
        return
    require_valgrind()
    per_digest: dict[str, list[float]] = {label: [] for label in MODES}
    with tempfile.TemporaryDirectory() as registry:
        say("training the champion")
        train_champion(Path(registry))
        for run in range(args.runs):
            for label, mode in MODES.items():
                count = instructions(mode, Path(registry), args)
                per_digest[label].append(count / args.digests)
                say(f"run {run + 1}: {label}: {count / args.digests / 1e6:.2f}M a digest")
    print(
        f"instructions per digest (callgrind, one thread, {args.digests} digests after "
        f"{WARM_UP} to warm up, {args.runs} alternating runs):"
    )
    for label, counts in per_digest.items():
        print(
            f"  {label:<12} min {min(counts) / 1e6:.2f}M  "
            f"median {statistics.median(counts) / 1e6:.2f}M"
        )
    low, mid = versus_floor(per_digest["churnbot"], per_digest["bare poster"])
    print(f"  churnbot / bare poster: min {low:.2f}x  median {mid:.2f}x")


def instructions(mode: str, registry: Path, args: argparse.Namespace) -> int:
    """What callgrind counted while the child ``mode`` posted its counted digests."""
    with tempfile.TemporaryDirectory() as out:
        count, _ = counted(
            [
                __file__,
                "--child",
                mode,
                "--registry",
                str(registry),
                "--digests",
                str(args.digests),
                "--redis-url",
                args.redis_url,
            ],
            Path(out) / "callgrind.out",
            f"the {mode} poster",
            cwd=REPO,
        )
    return count


def post_counted(mode: str, registry: Path, counted: int, redis_url: str) -> None:
    """The child: warm up, then post ``counted`` digests with collection on."""
    configure_logging()  # as `churnbot worker` sets it up (bench/digests.py does the same)
    client = connect(redis_url)
    now = dt.datetime.now(dt.UTC)
    settings = bench_settings(WARM_UP + counted)
    book = scored_book(WARM_UP + counted, registry)
    plans = planned_messages(client, settings, book, now)
    warm, measured = settings.channels.digests[:WARM_UP], settings.channels.digests[WARM_UP:]
    prefix = f"bench-{uuid.uuid4().hex}"
    with emulator_process(seed=7) as (base_url, finish):
        web = WebClient(token=TOKEN, base_url=base_url, retry_handlers=[], timeout=30)
        try:
            deps = publish_book(client, settings, book, prefix, now)
            poster = build_poster(deps, DigestSender(web), metrics=WorkerMetrics())

            def post(digests: Sequence[DigestConfig]) -> None:
                if mode == "bare":
                    bare_post(web, {d.channel: plans[d.channel] for d in digests}, 1)
                    return
                for digest in digests:
                    outcome = poster.run(digest, now)
                    if outcome.status != "posted":
                        raise SystemExit(f"{digest.name}: {outcome.status}, not posted")

            post(warm)
            gc.collect()
            gc.freeze()  # as `churnbot worker` does once it has loaded
            collect("on")
            post(measured)
            collect("off")
        finally:
            delete_prefix(client, prefix)
        finish({channel: len(messages) for channel, messages in plans.items()})


if __name__ == "__main__":
    main()
