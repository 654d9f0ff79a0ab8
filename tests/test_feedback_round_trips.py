"""What a feedback click costs in Redis round trips: one on a warm process (the script that
claims the request's signature, stores the click and queues its refresh)."""

from __future__ import annotations

import time

from bot.feedback import feedback_store
from tests.slack_harness import Harness
from tests.test_feedback_e2e import click, click_body, post_digest
from tests.test_web_lookup_bounds import CountingConnection, counted

__all__ = ["counted"]  # the fixture, shared with the /churn round-trip tests


def test_a_warm_click_costs_one_round_trip_and_a_replay_one_more(counted: Harness) -> None:
    digest = post_digest(counted)
    value = digest.value("ACC-000001")
    click(counted, "feedback_helpful", value, digest=digest)  # warms the card and the message
    body = click_body(counted, "feedback_not_helpful", value, digest=digest)
    captured_ts = str(int(time.time()))

    sent = CountingConnection.sent
    assert counted.sender.post(body, timestamp=captured_ts).status_code == 200
    warm = CountingConnection.sent - sent
    sent = CountingConnection.sent
    assert counted.sender.post(body, timestamp=captured_ts).status_code == 401
    replayed = CountingConnection.sent - sent

    assert warm == 1, f"a warm click cost {warm} Redis round trips"
    assert replayed == 1, f"a replayed click cost {replayed} Redis round trips"
    assert counted.deps.redis.xlen(feedback_store(counted.deps).stream) == 2
