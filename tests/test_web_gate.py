"""The door of the web process: what is refused before any listener runs, and how.

Signed and unsigned requests go into the real app on loopback (real Redis, the Web API
emulator); each test reads the HTTP status, the log and /metrics as an operator would.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from urllib.parse import urlencode

import httpx
import pytest

from bot.app import build_app
from bot.deps import build_deps
from bot.settings import load_settings
from tests.polling import wait_until
from tests.slack_harness import ADMIN, BOOK, CONFIG, CSM, SECRET, Harness, publish


def metric_lines(h: Harness) -> list[str]:
    response = httpx.get(f"{h.url}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text.splitlines()


def unsigned(h: Harness, body: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{h.url}/slack/events",
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        timeout=10,
    )


def test_unsigned_requests_do_not_grow_metrics(harness: Harness) -> None:
    unsigned(harness, "command=/warm-up")  # the first refusal creates its one series
    # The app's own collectors (the feedback figures) are registered when its Bolt app is
    # built, in a thread of its own, which may end after the door refused the first request:
    # counted before that, their series would look like growth.
    wait_until(
        lambda: any(line.startswith("churnbot_feedback_up") for line in metric_lines(harness)),
        "the app's collectors on /metrics",
        timeout=30,
    )
    before_lines = metric_lines(harness)
    before = len(before_lines)
    with httpx.Client(timeout=10) as http:
        for i in range(1_000):
            body = urlencode({"command": f"/x{i}", "type": f"t{i}", "payload": f"{{{i}"})
            response = http.post(f"{harness.url}/slack/events", content=body.encode())
            assert response.status_code == 401
    after = metric_lines(harness)
    print(f"/metrics lines: {before} before, {len(after)} after 1,000 unsigned requests")
    assert len(after) == before, sorted(set(after) - set(before_lines))
    assert 'churnbot_requests_total{handler="unauthenticated",outcome="http_401"} 1001.0' in after


def app_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the app logged at INFO or above (the test's own HTTP client logs too)."""
    return [
        r for r in caplog.records if r.levelno >= logging.INFO and not r.name.startswith("http")
    ]


def form(**fields: str) -> str:
    return urlencode(fields)


# (name, how it is sent, expected status); "signed" bodies carry a valid signature.
MALFORMED = [
    ("no timestamp", {"unsigned": form(command="/churn"), "headers": {}}, 401),
    (
        "non-numeric timestamp",
        {"unsigned": form(command="/churn"), "headers": {"X-Slack-Request-Timestamp": "abc"}},
        401,
    ),
    (
        "timestamp with underscores",
        {"unsigned": form(command="/churn"), "headers": {"X-Slack-Request-Timestamp": "1_000"}},
        401,
    ),
    (
        "huge timestamp",
        {"unsigned": form(command="/churn"), "headers": {"X-Slack-Request-Timestamp": "9" * 400}},
        401,
    ),
    ("bad signature", {"forged": form(command="/churn", user_id=CSM)}, 401),
    ("stale timestamp", {"stale": form(command="/churn", user_id=CSM)}, 401),
    ("not form-encoded", {"signed": "just some words"}, 400),
    ("payload not json", {"signed": "payload=%7Bnot-json"}, 400),
    ("payload is a list", {"signed": form(payload="[1, 2]")}, 400),
    ("payload is a string", {"signed": form(payload='"hello"')}, 400),
    ("json body not an object", {"signed": "[1]", "json": True}, 400),
    ("json body broken", {"signed": '{"type": ', "json": True}, 400),
    ("command without user", {"signed": form(command="/churn", text="acme")}, 400),
    ("action without actions", {"signed": form(payload='{"type": "block_actions"}')}, 400),
    (
        "action with a list for user",
        {
            "signed": form(
                payload='{"type": "block_actions", "user": [], "actions": [{"action_id": 5}]}'
            )
        },
        400,
    ),
    (
        "team of the wrong type",
        {"signed": form(payload='{"type": "block_actions", "team": 5, "actions": 1}')},
        400,
    ),
    ("event without event", {"signed": '{"type": "event_callback"}', "json": True}, 400),
    ("not utf-8", {"signed_bytes": b"command=/churn&text=\xff\xfe"}, 400),
    ("over 1 MiB", {"signed": form(command="/churn", user_id=CSM, text="x" * (1 << 20))}, 413),
]


@pytest.mark.parametrize(("name", "how", "status"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_every_malformed_request_gets_4xx_one_log_line_and_no_traceback(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    name: str,
    how: dict,
    status: int,
) -> None:
    caplog.set_level(logging.INFO)
    if "unsigned" in how:
        response = unsigned(harness, how["unsigned"], **how["headers"])
    elif "forged" in how:
        response = harness.sender.post(how["forged"], secret="not-the-secret")
    elif "stale" in how:
        response = harness.sender.post(how["stale"], timestamp=str(int(time.time()) - 6 * 60))
    elif "signed_bytes" in how:
        ts = str(int(time.time()))
        raw = how["signed_bytes"]
        digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256)
        response = httpx.post(
            f"{harness.url}/slack/events",
            content=raw,
            headers={
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": "v0=" + digest.hexdigest(),
            },
        )
    else:
        content_type = "application/json" if how.get("json") else None
        kwargs = {"content_type": content_type} if content_type else {}
        response = harness.sender.post(how["signed"], **kwargs)
    assert response.status_code == status, (name, response.text)
    records = app_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].exc_info is None
    assert "Traceback" not in caplog.text


def test_bad_signatures_are_logged_without_the_body(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "private-note-do-not-log"
    response = harness.sender.post(form(command="/churn", text=marker), secret="wrong")
    assert response.status_code == 401
    assert marker not in caplog.text
    assert "signature" in caplog.text.lower()


def test_a_replayed_admin_command_is_refused_and_changes_nothing(harness: Harness) -> None:
    """A captured `killswitch off`, replayed after a later `killswitch on`, leaves it on."""
    off = form(
        command="/churn-admin",
        text="killswitch off",
        user_id=ADMIN,
        team_id="T0CHURNBOT",
        response_url="https://hooks.example/commands/1",
    )
    captured_ts = str(int(time.time()))
    first = harness.sender.post(off, timestamp=captured_ts)
    assert first.status_code == 200
    on = harness.sender.command("/churn-admin", "killswitch on bad import", user_id=ADMIN)
    assert "Kill switch ON" in on.json()["text"]
    replay = harness.sender.post(off, timestamp=captured_ts)
    assert replay.status_code == 401
    assert harness.deps.switch.state().on
    assert 'churnbot_requests_total{handler="replayed",outcome="http_401"} 1.0' in metric_lines(
        harness
    )


def test_slack_retries_carry_a_new_signature_and_still_work(harness: Harness) -> None:
    """Slack re-signs a retry with the time it sends it: the same event id under a new
    timestamp passes the replay check, and the event de-duplication drops it."""
    publish(harness.deps, BOOK)
    event = {"type": "app_home_opened", "user": CSM, "tab": "home"}
    ts = int(time.time())
    harness.sender.clock = lambda: ts
    assert harness.sender.event(event, event_id="Ev0RETRY002").status_code == 200
    harness.emulator.wait_for("views.publish")
    harness.sender.clock = lambda: ts + 1
    again = harness.sender.event(event, event_id="Ev0RETRY002", retry_num=1)
    assert again.status_code == 200
    harness.deps.background.submit(lambda: None).result(timeout=5)
    assert len(harness.emulator.calls("views.publish")) == 1
    # A command sent twice by a person (two signatures) is answered twice.
    for _ in range(2):
        status = harness.sender.command("/churn-admin", "status", user_id=ADMIN)
        assert "Kill switch" in status.json()["text"]


def test_no_token_warning_when_the_bot_token_is_in_the_environment(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", harness.emulator.token)
    caplog.set_level(logging.DEBUG)
    settings = load_settings(
        {
            "CHURNBOT_CONFIG": str(CONFIG),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": harness.emulator.token,
            "SLACK_API_URL": harness.emulator.base_url,
        }
    )
    deps = build_deps(settings, client=harness.deps.redis, prefix=harness.deps.prefix)
    build_app(deps)
    deps.background.shutdown(wait=True)
    assert "will be unused" not in caplog.text


def test_healthz_is_liveness_and_readyz_checks_redis(harness: Harness) -> None:
    health = httpx.get(f"{harness.url}/healthz", timeout=10)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = httpx.get(f"{harness.url}/readyz", timeout=10)
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "redis": True})
    assert "churnbot_redis_up 1.0" in metric_lines(harness)
