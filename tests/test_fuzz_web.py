"""Fuzzing the web process: hostile `/churn` texts and malformed interactions, signed and not.

Requests from :class:`bot.emulator.fuzz.SlackFuzzer` (fixed seeds, so a failure replays) go
into the real app on loopback with the real Redis and the Web API emulator. Whatever comes in,
the app answers with no HTTP 5xx and writes no traceback to the log. ``bench/fuzz_web.py``
runs the same generator at the issue's scale (10,000 texts, 3,000 interactions) and prints
latencies.
"""

from __future__ import annotations

import collections
import logging

import httpx
import pytest

from bot.emulator.fuzz import FuzzRequest, SlackFuzzer
from tests.slack_harness import BOOK, SECRET, Harness, publish


def send_all(h: Harness, requests: list[FuzzRequest]) -> collections.Counter[int]:
    statuses: collections.Counter[int] = collections.Counter()
    with httpx.Client(timeout=30) as http:
        for request in requests:
            response = http.post(
                f"{h.url}/slack/events", content=request.body, headers=request.headers
            )
            statuses[response.status_code] += 1
    return statuses


def assert_clean(h: Harness, statuses: collections.Counter[int], log: pytest.LogCaptureFixture):
    h.deps.background.shutdown(wait=True)  # work after the ack logs too: let it finish
    errors = sum(count for status, count in statuses.items() if status >= 500)
    tracebacks = [r for r in log.records if r.exc_info is not None]
    print(f"statuses {dict(sorted(statuses.items()))}; 5xx {errors}; tracebacks {len(tracebacks)}")
    assert errors == 0, statuses
    assert tracebacks == [], [r.getMessage() for r in tracebacks[:5]]
    assert "Traceback" not in log.text


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzzed_requests_never_get_5xx_or_a_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture, seed: int
) -> None:
    publish(harness.deps, BOOK)
    caplog.set_level(logging.INFO)
    fuzzer = SlackFuzzer(SECRET, seed=seed, response_url=harness.emulator.response_url("fuzz"))
    requests = [fuzzer.churn_text() for _ in range(60)]
    requests += [fuzzer.interaction() for _ in range(150)]
    requests += [fuzzer.raw() for _ in range(40)]
    statuses = send_all(harness, requests)
    assert_clean(harness, statuses, caplog)
    assert min(statuses[200], statuses[400], statuses[401]) > 0  # every path was exercised


@pytest.mark.slow
def test_thousands_of_fuzzed_requests(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    publish(harness.deps, BOOK)
    caplog.set_level(logging.INFO)
    fuzzer = SlackFuzzer(SECRET, seed=11, response_url=harness.emulator.response_url("fuzz"))
    statuses = send_all(harness, [fuzzer.any() for _ in range(3_000)])
    assert_clean(harness, statuses, caplog)
