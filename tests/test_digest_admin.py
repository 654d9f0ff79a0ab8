"""`/churn-admin digest now CHANNEL [preview]`, driven exactly as Slack drives it."""

from __future__ import annotations

import json

import pytest

from bot.cli.score import tell_admins
from bot.digest.sender import DIGEST_EVENT
from bot.digest.upcoming import record_upcoming
from bot.emulator import block_kit_problems
from bot.publish import RunResult
from models.health import CheckResult
from tests.slack_harness import ADMIN, BOOK, CSM, NOW, Harness, make_card, publish

pytestmark = pytest.mark.clock

EAST = "C0CSEAST01"


def admin_command(h: Harness, text: str, user: str = ADMIN) -> dict:
    response = h.sender.command(
        "/churn-admin", text, user_id=user, response_url=h.emulator.response_url("admin")
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_digest_now_is_refused_to_others_and_audited(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    answer = admin_command(harness, "digest now cs-east", user=CSM)
    assert "admins only" in answer["text"]
    entry = harness.deps.audit.recent(1)[0]
    assert (entry.who, entry.what, entry.outcome) == (CSM, "digest now", "refused")
    harness.deps.background.submit(lambda: None).result(timeout=5)  # drain the executor
    assert harness.emulator.messages(EAST) == []


def test_digest_now_posts_to_the_channel_and_reports_back(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    answer = admin_command(harness, "digest now #cs-east")
    assert "Posting the digest cs-east" in answer["text"]
    [post] = harness.emulator.wait_for(
        lambda c: c.method == "chat.postMessage" and c.body.get("channel") == EAST
    )
    assert post.body["metadata"]["event_type"] == DIGEST_EVENT
    assert "Acme Corp" in json.dumps(post.body["blocks"])
    [report] = harness.emulator.wait_for("response_url")
    assert "Posted the digest cs-east" in report.body["text"]
    whats = [(e.who, e.what) for e in harness.deps.audit.recent(5)]
    assert (ADMIN, "digest now") in whats
    assert (ADMIN, "digest posted") in whats

    admin_command(harness, "digest now cs-east")  # the same minute: a double submit
    [again] = harness.emulator.wait_for("response_url", count=2)[1:]
    assert "nothing doubled" in again.body["text"]
    assert len(harness.emulator.messages(EAST)) == 1


def test_digest_now_preview_shows_the_admin_only(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    answer = admin_command(harness, f"digest now <#{EAST}|cs-east> preview")
    assert answer["response_type"] == "ephemeral"
    assert "Nothing was posted" in answer["text"]
    blocks = answer["blocks"]
    assert block_kit_problems(blocks) == []
    assert "Preview of the digest cs-east" in blocks[0]["elements"][0]["text"]
    assert "Acme Corp" in json.dumps(blocks)
    assert harness.deps.audit.recent(1)[0].detail == {"channel": EAST, "preview": True}
    harness.deps.background.submit(lambda: None).result(timeout=5)
    assert harness.emulator.messages(EAST) == []


def test_a_long_preview_sends_its_later_parts_through_the_response_url(harness: Harness) -> None:
    wordy = {"code": "usage_decline", "text": "Logins down " + "a lot " * 100, "impact": 1}
    book = [make_card(f"ACC-{i:06d}", f"Account {i}", 0.9, reasons=[wordy] * 2) for i in range(10)]
    publish(harness.deps, book)  # too long for one message
    answer = admin_command(harness, "digest now cs-east preview")
    assert "2 message(s)" in answer["text"]
    [rest] = harness.emulator.wait_for("response_url")
    assert rest.body["response_type"] == "ephemeral"
    assert "(continued, 2 of 2)" in json.dumps(rest.body["blocks"], ensure_ascii=False)
    assert harness.emulator.messages(EAST) == []


def test_digest_now_for_an_unknown_channel_lists_the_digests(harness: Harness) -> None:
    answer = admin_command(harness, "digest now #nowhere")
    assert "No digest matches '#nowhere'" in answer["text"]
    assert "cs-east, cs-west, enterprise" in answer["text"]


def test_status_lists_the_next_digests_the_worker_recorded(harness: Harness) -> None:
    digest = harness.deps.settings.channels.by_name("cs-east")
    assert digest is not None
    record_upcoming(harness.deps.redis, harness.deps.prefix, [(digest, NOW.replace(hour=14))])
    status = admin_command(harness, "status")["text"]
    assert "*Next digests:*" in status
    assert "cs-east → C0CSEAST01: Mon 23 Nov 09:00 EST" in status


def test_an_automatic_trip_is_told_to_the_admins_with_the_reason(harness: Harness) -> None:
    result = RunResult(
        checks=(CheckResult("freshness", False, "Input data is 12 days old (limit 8)"),),
        snapshot=None,
        tripped=True,
    )
    tell_admins(harness.deps, result)
    [notice] = harness.emulator.messages(ADMIN)
    assert "kill switch is on" in notice.body["text"]
    assert "Input data is 12 days old (limit 8)" in notice.body["text"]


def test_a_passing_run_while_an_automatic_trip_holds_is_told_to_the_admins(
    harness: Harness,
) -> None:
    """Before, nobody heard: live scores stayed paused until an admin happened to look."""
    healthy = (CheckResult("freshness", True, "ok"),)
    switch = harness.deps.switch
    tripped = switch.trip("Scores drifted: PSI 0.31", who="health-check", source="health_check")
    tell_admins(harness.deps, RunResult(healthy, None, tripped=False, paused=tripped))
    [notice] = harness.emulator.messages(ADMIN)
    assert "passed every health check, but live scores are still paused" in notice.body["text"]
    assert "Scores drifted: PSI 0.31" in notice.body["text"]
    assert "`/churn-admin killswitch off`" in notice.body["text"]

    switch.reset(who="U_ADMIN")
    by_hand = switch.trip("checking the Q4 import", who="U_ADMIN", source="admin")
    tell_admins(harness.deps, RunResult(healthy, None, tripped=False, paused=by_hand))
    tell_admins(harness.deps, RunResult(healthy, None, tripped=False))
    assert len(harness.emulator.messages(ADMIN)) == 1, "an admin's own pause is theirs to end"
