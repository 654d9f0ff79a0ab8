"""What the bench scripts share: progress on stderr, the Redis they run against, the timing of
a call, the figure against the floor, and removing what a run wrote.

Imported as ``from _common import ...``: a script run as ``.venv/bin/python bench/NAME.py``
has bench/ first on its import path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import redis


def say(text: str) -> None:
    """Progress, on stderr: stdout carries only the figures."""
    print(text, file=sys.stderr, flush=True)


def add_redis_url(parser: argparse.ArgumentParser) -> None:
    """``--redis-url``: the real Redis the run writes to under a prefix of its own (default
    ``REDIS_URL``, else 127.0.0.1:6379/0)."""
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )


def median_ms(call: Callable[[], object], calls: int) -> float:
    """Median milliseconds of one call over ``calls`` calls."""
    timings = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1e3


def versus_floor(times: list[float], floor: list[float]) -> tuple[float, float]:
    """How many floors: min over the floor's min, median over the floor's median (``times``
    and ``floor`` measured alternately in the same run)."""
    return min(times) / min(floor), statistics.median(times) / statistics.median(floor)


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    """Remove every key the run wrote under ``prefix`` (a few thousand at a time)."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=5_000))
    for start in range(0, len(keys), 5_000):
        client.unlink(*keys[start : start + 5_000])
