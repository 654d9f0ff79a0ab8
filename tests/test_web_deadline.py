"""A hung or dead Redis, met by real processes: the user still gets churnbot's own answer in time.

Each test runs the real app against its own ``redis-server``, then freezes it (SIGSTOP: the
kernel accepts connections, nothing answers) or stops it. HTTP waits are bounded by client
timeouts far above Slack's 3 s, so a regression shows as a wrong answer, not a hung test; the
time taken is printed as a share of Slack's 3 s, and the assertions are on what is answered.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
import redis

from bot.render.feedback import FeedbackKey
from tests.slack_harness import BOOK, CSM, Harness, RedisServer, publish

SLACK_WINDOW_S = 3.0
HONEST = "cannot reach its data"


def timed(what: str, send: object) -> httpx.Response:
    started = time.perf_counter()
    response = send()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    print(f"{what}: answered in {elapsed:.2f} s ({elapsed / SLACK_WINDOW_S:.0%} of Slack's 3 s)")
    return response


@pytest.fixture
def frozen(private_harness: Harness, redis_server: RedisServer) -> Harness:
    publish(private_harness.deps, BOOK)
    private_harness.sender.http.timeout = httpx.Timeout(30)
    redis_server.freeze()
    return private_harness


def test_churn_with_redis_frozen_gets_the_honest_answer_in_time(frozen: Harness) -> None:
    response = timed("/churn acme, Redis frozen", lambda: frozen.sender.command("/churn", "acme"))
    assert response.status_code == 200
    assert HONEST in response.json()["text"]
    # A second request meets the same hung server: again an answer, not a pile-up.
    again = timed("/churn mine, Redis frozen", lambda: frozen.sender.command("/churn", "mine"))
    assert HONEST in again.json()["text"]


def test_churn_admin_with_redis_frozen_says_nothing_changed(frozen: Harness) -> None:
    response = timed(
        "/churn-admin killswitch on, Redis frozen",
        lambda: frozen.sender.command("/churn-admin", "killswitch on x", user_id="U0ADMIN001"),
    )
    assert response.status_code == 200
    assert "nothing changed" in response.json()["text"]


def test_show_button_with_redis_frozen_answers_the_user(frozen: Harness) -> None:
    url = frozen.emulator.response_url("show")
    payload = {
        "type": "block_actions",
        "user": {"id": CSM},
        "team": {"id": "T0CHURNBOT"},
        "trigger_id": f"trig.{uuid.uuid4().hex}",
        "response_url": url,
        "container": {"type": "message", "is_ephemeral": True},
        "actions": [{"action_id": "show_account", "value": "ACC-000001", "type": "button"}],
    }
    response = timed("Show button, Redis frozen", lambda: frozen.sender.interaction(payload))
    assert response.status_code == 200
    (call,) = frozen.emulator.wait_for("response_url", timeout=10)
    assert HONEST in call.body["text"]


def test_app_home_with_redis_frozen_shows_an_honest_view(frozen: Harness) -> None:
    event = {"type": "app_home_opened", "user": CSM, "tab": "home"}
    response = timed("app_home_opened, Redis frozen", lambda: frozen.sender.event(event))
    assert response.status_code == 200
    (call,) = frozen.emulator.wait_for("views.publish", timeout=10)
    view = call.body["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert HONEST in json.dumps(view)


def test_probes_and_metrics_with_redis_frozen(frozen: Harness) -> None:
    with httpx.Client(timeout=30) as http:
        health = timed("/healthz", lambda: http.get(f"{frozen.url}/healthz"))
        ready = timed("/readyz", lambda: http.get(f"{frozen.url}/readyz"))
        metrics = timed("/metrics", lambda: http.get(f"{frozen.url}/metrics"))
    assert health.status_code == 200
    assert (ready.status_code, ready.json()["redis"]) == (503, False)
    assert metrics.status_code == 200
    assert "churnbot_redis_up 0.0" in metrics.text


def test_probes_metrics_and_churn_with_redis_stopped(
    private_harness: Harness, redis_server: RedisServer
) -> None:
    publish(private_harness.deps, BOOK)
    redis_server.stop()
    with httpx.Client(timeout=30) as http:
        assert http.get(f"{private_harness.url}/healthz").status_code == 200
        assert http.get(f"{private_harness.url}/readyz").status_code == 503
        metrics = http.get(f"{private_harness.url}/metrics")
    assert metrics.status_code == 200
    assert "churnbot_redis_up 0.0" in metrics.text
    answer = private_harness.sender.command("/churn", "acme")
    assert HONEST in answer.json()["text"]


def test_a_feedback_click_with_redis_frozen_is_answered_in_time(
    private_harness: Harness, redis_server: RedisServer
) -> None:
    """The click cannot be saved: Slack gets its answer in time and the user is told."""
    meta = publish(private_harness.deps, BOOK)
    private_harness.sender.http.timeout = httpx.Timeout(30)
    redis_server.freeze()
    url = private_harness.emulator.response_url("click")
    key = FeedbackKey("ACC-000001", meta.snapshot_id, "digest")
    payload = {
        "type": "block_actions",
        "user": {"id": CSM},
        "team": {"id": "T0CHURNBOT"},
        "response_url": url,
        "container": {"type": "message", "channel_id": "C0GENERAL1", "message_ts": "1.2"},
        "actions": [
            {"action_id": "feedback_helpful", "block_id": "fb:ACC-000001", "value": key.to_value()}
        ],
    }
    response = timed(
        "feedback click, Redis frozen", lambda: private_harness.sender.interaction(payload)
    )
    assert response.status_code == 200
    (call,) = private_harness.emulator.wait_for("response_url", timeout=15)
    assert "saved" in call.body["text"]


class FakeClock:
    """Stands in for the ``time`` module inside bot.state.deadline: monotonic() is set by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_time_spent_in_a_paused_block_does_not_count_against_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.state import deadline as budget

    clock = FakeClock()
    monkeypatch.setattr(budget, "time", clock)
    with budget.deadline(1.5):
        clock.now += 0.5
        with budget.paused():
            clock.now += 5.0  # a first import on a busy machine
        assert budget.remaining() == pytest.approx(1.0)
        clock.now += 1.0
        with pytest.raises(redis.TimeoutError):
            budget.remaining()
    assert budget.remaining() is None
