"""Fuzz the web process at the scale of issue 11: 10,000 `/churn` texts and 3,000 malformed
interactions, signed and unsigned, into the real app (real Redis, the Web API emulator).

Prints the HTTP statuses, the number of 5xx answers, of tracebacks written to the log, and the
answer times (p50, p99, max, and how many took 3 s or more: Slack's limit). The requests come
from ``bot.emulator.fuzz.SlackFuzzer`` with a fixed seed, like ``tests/test_fuzz_web.py``.

Usage: ``.venv/bin/python bench/fuzz_web.py [--texts 10000] [--interactions 3000] [--seed 11]``
(REDIS_URL from ``TEST_REDIS_URL``, default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _common import delete_prefix

from bot.app import build_app
from bot.deps import build_deps
from bot.emulator import SlackEmulator
from bot.emulator.fuzz import FuzzRequest, SlackFuzzer
from bot.loopback import LoopbackServer
from bot.settings import load_settings
from bot.state import connect
from bot.web import build_wsgi

CONFIG = Path(__file__).resolve().parent.parent / "config"
SECRET = "bench-signing-secret"


class Tracebacks(logging.Handler):
    """Counts log records that carry a traceback; everything else is dropped."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None:
            self.count += 1
            if len(self.first) < 5:
                self.first.append(f"{record.name}: {record.getMessage()[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    tracebacks = Tracebacks()
    root = logging.getLogger()
    root.handlers[:] = [tracebacks]  # the log is counted, not printed
    root.setLevel(logging.INFO)

    client = connect(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    prefix = f"bench-{uuid.uuid4().hex}"
    with SlackEmulator() as emulator:
        settings = load_settings(
            {
                "CHURNBOT_CONFIG": str(CONFIG),
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_BOT_TOKEN": emulator.token,
                "SLACK_API_URL": emulator.base_url,
            }
        )
        deps = build_deps(settings, client=client, prefix=prefix)
        fuzzer = SlackFuzzer(SECRET, seed=args.seed, response_url=emulator.response_url("fuzz"))
        requests = [fuzzer.churn_text() for _ in range(args.texts)]
        requests += [fuzzer.interaction() for _ in range(args.interactions)]
        statuses: collections.Counter[int] = collections.Counter()
        seconds: list[float] = []
        try:
            with (
                LoopbackServer(build_wsgi(build_app(deps), deps)) as server,
                httpx.Client(timeout=30) as http,
            ):

                def send(request: FuzzRequest) -> None:
                    started = time.perf_counter()
                    url = f"{server.url}/slack/events"
                    response = http.post(url, content=request.body, headers=request.headers)
                    seconds.append(time.perf_counter() - started)
                    statuses[response.status_code] += 1

                started = time.perf_counter()
                with ThreadPoolExecutor(args.concurrency) as pool:
                    list(pool.map(send, requests))
                wall = time.perf_counter() - started
            deps.background.shutdown(wait=True)
        finally:
            delete_prefix(client, prefix)
    q = statistics.quantiles(seconds, n=100)
    errors = sum(count for status, count in statuses.items() if status >= 500)
    print(
        f"{len(requests):,} requests ({args.texts:,} /churn texts, {args.interactions:,} "
        f"interactions), seed {args.seed}, {args.concurrency} at a time, {wall:.1f} s"
    )
    print(f"statuses: {dict(sorted(statuses.items()))}")
    print(f"HTTP 5xx: {errors}   tracebacks in the log: {tracebacks.count}")
    for line in tracebacks.first:
        print(f"  {line}")
    print(
        f"answer time: p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
        f"max {max(seconds):.2f} s, >= 3 s: {sum(s >= 3 for s in seconds)}"
    )


if __name__ == "__main__":
    main()
