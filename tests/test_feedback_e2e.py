"""Feedback buttons and the correction modal, driven exactly as Slack drives them.

Signed interactions go into the real app on loopback, its Web API calls and response_url
posts reach the emulator, and the events land in the real Redis under the test's prefix.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk import WebClient

from bot.emulator import view_problems
from bot.feedback import feedback_store
from bot.feedback.capture import Recorder
from bot.feedback.store import FeedbackStore
from bot.render import DigestContent, FeedbackRef, digest_messages
from bot.state import SnapshotMeta
from tests.polling import wait_until
from tests.slack_harness import BOOK, CSM, Harness, publish
from tests.test_web_gate import metric_lines

OMAR = "U0OMAR0001"
CHANNEL = "C0DIGEST01"


@dataclass
class Digest:
    meta: SnapshotMeta
    ts: str
    message: dict[str, Any]

    def value(self, account_id: str) -> str:
        """The feedback button value the digest carries for one account."""
        for block in self.message["blocks"]:
            if block.get("block_id") == f"fb:{account_id}":
                return block["elements"][0]["value"]
        raise AssertionError(f"no feedback buttons for {account_id}")


@pytest.fixture
def digest(harness: Harness) -> Digest:
    return post_digest(harness)


def post_digest(harness: Harness) -> Digest:
    """A published snapshot and its digest, posted to the emulator's channel."""
    meta = publish(harness.deps, BOOK)
    message = digest_messages(
        DigestContent(
            title="Churn risk this week",
            channel_label="#cs-smb",
            freshness="Data as of 2026-11-23",
            banner=None,
            cards=BOOK[:3],
            snapshot_id=meta.snapshot_id,
        )
    )[0]
    client = WebClient(token=harness.emulator.token, base_url=harness.emulator.base_url)
    posted = client.chat_postMessage(channel=CHANNEL, text=message.text, blocks=message.blocks)
    return Digest(meta, posted["ts"], posted["message"])


@pytest.fixture
def store(harness: Harness) -> FeedbackStore:
    return feedback_store(harness.deps)


def click(
    h: Harness,
    action_id: str,
    value: str,
    *,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> httpx.Response:
    """Send the click of :func:`click_body`, signed now."""
    return h.sender.post(click_body(h, action_id, value, **options), headers=headers)


def click_body(
    h: Harness,
    action_id: str,
    value: str,
    *,
    user: str = CSM,
    digest: Digest | None = None,
    account_id: str = "ACC-000001",
    response_url: str | None = None,
    action_ts: str | None = None,
    trigger_id: str | None = None,
) -> str:
    """A block_actions payload as Slack sends it: from a channel message (``digest``) or from
    an ephemeral ``/churn`` card (no ``message`` field, ``is_ephemeral``)."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T0CHURNBOT", "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0CHURNBOT"},
        "api_app_id": "A0CHURNBOT",
        "token": "legacy-unused",
        "trigger_id": trigger_id or f"trig.{uuid.uuid4().hex}",
        "response_url": response_url or h.emulator.response_url(uuid.uuid4().hex),
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": f"fb:{account_id}",
                "value": value,
                "action_ts": action_ts or f"{uuid.uuid4().int % 10**9}.000100",
            }
        ],
    }
    if digest is not None:
        payload["container"] = {
            "type": "message",
            "message_ts": digest.ts,
            "channel_id": CHANNEL,
            "is_ephemeral": False,
        }
        payload["channel"] = {"id": CHANNEL, "name": "cs-smb"}
        payload["message"] = digest.message
    else:
        payload["container"] = {
            "type": "message",
            "message_ts": "1795424400.000200",
            "channel_id": "C0GENERAL1",
            "is_ephemeral": True,
        }
        payload["channel"] = {"id": "C0GENERAL1", "name": "general"}
    return urlencode({"payload": json.dumps(payload)})


def drain(h: Harness) -> None:
    """Wait for the work queued after the acks: the refreshes the harness's drain thread
    draws from Redis, and the notes left on the executor (FIFO), both bounded."""
    stream = feedback_store(h.deps).refresh_stream
    wait_until(lambda: h.deps.redis.xlen(stream) == 0, "the refresh queue to empty", timeout=10)
    h.deps.background.submit(lambda: None).result(timeout=10)


def lines(message: dict[str, Any]) -> dict[str, str]:
    """The feedback context lines of a message: account id -> text."""
    return {
        block["block_id"].removeprefix("fbc:"): block["elements"][0]["text"]
        for block in message.get("blocks", [])
        if str(block.get("block_id", "")).startswith("fbc:")
    }


def test_a_digest_click_is_stored_with_everything_and_shown_to_the_channel(
    harness: Harness, digest: Digest, store: FeedbackStore
) -> None:
    response = click(harness, "feedback_helpful", digest.value("ACC-000001"), digest=digest)
    assert response.status_code == 200
    [event] = list(store.events())
    assert event.kind == "helpful"
    assert (event.ref.account_id, event.ref.snapshot_id) == ("ACC-000001", digest.meta.snapshot_id)
    assert event.ref.model_version == "20261123-abcdef0123"
    assert (event.ref.risk, event.ref.action_rule, event.ref.surface) == (
        0.81,
        "usage-drop",
        "digest",
    )
    assert (event.user, event.consent, event.segment, event.as_of) == (
        CSM,
        "identified",
        "smb",
        "2026-11-23",
    )
    assert event.event_id
    assert event.idem
    assert event.at == harness.deps.clock()

    harness.emulator.wait_for("chat.update")
    [message] = harness.emulator.history(CHANNEL)
    assert lines(message) == {"ACC-000001": f"👍 <@{CSM}>"}
    # The buttons stay for everyone else, and the message has not grown a block.
    assert any(b.get("block_id") == "fb:ACC-000001" for b in message["blocks"])
    assert len(message["blocks"]) == len(digest.message["blocks"])

    click(harness, "feedback_action_done", digest.value("ACC-000001"), user=OMAR, digest=digest)
    harness.emulator.wait_for("chat.update", count=2)
    [message] = harness.emulator.history(CHANNEL)
    assert lines(message) == {"ACC-000001": f"👍 <@{CSM}> · ✅ <@{OMAR}>"}


def test_double_click_slack_retry_and_two_tabs_count_once(
    harness: Harness, digest: Digest, store: FeedbackStore
) -> None:
    value = digest.value("ACC-000002")
    first = click(harness, "feedback_not_helpful", value, digest=digest, account_id="ACC-000002")
    assert first.status_code == 200
    # Slack retrying the same delivery, and a double click (a new action_ts).
    retry = click(
        harness,
        "feedback_not_helpful",
        value,
        digest=digest,
        account_id="ACC-000002",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    double = click(harness, "feedback_not_helpful", value, digest=digest, account_id="ACC-000002")
    assert retry.status_code == double.status_code == 200
    # Two tabs clicking at the same instant.
    start = threading.Barrier(6)

    def tab() -> int:
        start.wait(timeout=10)
        return click(
            harness, "feedback_not_helpful", value, digest=digest, account_id="ACC-000002"
        ).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(lambda _: tab(), range(6))) == {200}
    events = list(store.events())
    assert len(events) == 1
    raw = harness.deps.redis.xlen(store.stream)
    assert raw == 1, "the stream itself holds one entry, not only the reader's view"
    drain(harness)
    [message] = harness.emulator.history(CHANNEL)
    assert lines(message) == {"ACC-000002": f"👎 <@{CSM}>"}
    metrics = httpx.get(f"{harness.url}/metrics").text
    assert (
        'churnbot_duplicate_deliveries_total{handler="action:feedback_not_helpful"} 8.0' in metrics
    )


def test_a_card_click_replaces_the_ephemeral_card_through_its_response_url(
    harness: Harness, store: FeedbackStore
) -> None:
    publish(harness.deps, BOOK)
    card = harness.sender.command("/churn", "acme corp").json()
    [actions] = [b for b in card["blocks"] if b.get("block_id") == "fb:ACC-000001"]
    url = harness.emulator.response_url("card")
    click(harness, "feedback_helpful", actions["elements"][0]["value"], response_url=url)
    [call] = harness.emulator.wait_for("response_url")
    assert call.body["replace_original"] is True
    text = json.dumps(call.body["blocks"], ensure_ascii=False)
    assert "Acme Corp" in text
    assert "Invite the team to an enablement webinar" in text
    assert lines(call.body) == {"ACC-000001": f"👍 <@{CSM}>"}
    [event] = list(store.events())
    assert event.ref.surface == "card"


def test_an_opted_out_user_is_stored_without_identity_until_they_opt_in(
    harness: Harness, digest: Digest, store: FeedbackStore
) -> None:
    answer = harness.sender.command("/churn", "optout").json()
    assert "without your name" in answer["text"]
    click(harness, "feedback_helpful", digest.value("ACC-000001"), digest=digest)
    harness.emulator.wait_for("chat.update")
    [message] = harness.emulator.history(CHANNEL)
    assert lines(message) == {"ACC-000001": "👍 1"}, "counted, never named"
    assert "opted in" in harness.sender.command("/churn", "optin").json()["text"]
    click(harness, "feedback_action_done", digest.value("ACC-000001"), digest=digest)
    anonymous, named = list(store.events())
    assert (anonymous.user, anonymous.consent) == (None, "anonymous")
    assert (named.user, named.consent) == (CSM, "identified")
    raw = harness.deps.redis.xrange(store.stream)
    assert CSM not in json.dumps(raw[0]), "not even inside the idempotency field"


def test_an_unreadable_button_is_refused_plainly_and_stores_nothing(
    harness: Harness, digest: Digest, store: FeedbackStore
) -> None:
    url = harness.emulator.response_url("forged")
    response = click(harness, "feedback_helpful", '{"a":"x"}', digest=digest, response_url=url)
    assert response.status_code == 200
    [call] = harness.emulator.wait_for("response_url")
    assert "could not be read, so nothing was saved" in call.body["text"]
    assert call.body["replace_original"] is False
    assert list(store.events()) == []


def test_a_button_carries_a_short_key_and_a_click_stores_the_score_it_showed(
    harness: Harness, digest: Digest, store: FeedbackStore
) -> None:
    value = digest.value("ACC-000003")
    assert value == f"d|{digest.meta.snapshot_id}"
    click(harness, "feedback_helpful", value, digest=digest, account_id="ACC-000003")
    [event] = list(store.events())
    assert event.ref == FeedbackRef(
        "ACC-000003", digest.meta.snapshot_id, "20261123-abcdef0123", 0.35, "usage-drop", "digest"
    )


def test_buttons_posted_before_short_keys_still_count(
    harness: Harness, digest: Digest, store: FeedbackStore
) -> None:
    old = FeedbackRef(
        "ACC-000002", digest.meta.snapshot_id, "20261116-0ld0ld0ld0", 0.4, "renewal-prep", "digest"
    )
    response = click(
        harness, "feedback_action_done", old.to_value(), digest=digest, account_id="ACC-000002"
    )
    assert response.status_code == 200
    [event] = list(store.events())
    assert (event.kind, event.ref) == ("action_done", old)
    harness.emulator.wait_for("chat.update")


def test_a_button_whose_scores_are_no_longer_kept_says_so_and_stores_nothing(
    harness: Harness, digest: Digest, store: FeedbackStore
) -> None:
    url = harness.emulator.response_url("gone")
    response = click(
        harness, "feedback_helpful", "d|20251101T060000-gone00", digest=digest, response_url=url
    )
    assert response.status_code == 200
    [call] = harness.emulator.wait_for("response_url")
    assert "no longer kept" in call.body["text"]
    assert "`/churn ACC-000001`" in call.body["text"]
    assert call.body["replace_original"] is False
    assert list(store.events()) == []


def test_a_replayed_click_is_refused_and_changes_nothing(
    harness: Harness, digest: Digest, store: FeedbackStore
) -> None:
    """The same signed request sent again (the signature is claimed in the click's write,
    not in a round trip of its own) is refused, stores nothing and redraws nothing."""
    body = click_body(harness, "feedback_helpful", digest.value("ACC-000001"), digest=digest)
    captured_ts = str(int(time.time()))
    assert harness.sender.post(body, timestamp=captured_ts).status_code == 200
    harness.emulator.wait_for("chat.update")
    replay = harness.sender.post(body, timestamp=captured_ts)
    assert replay.status_code == 401
    assert "replayed" in replay.text
    drain(harness)
    assert len(harness.emulator.calls("chat.update")) == 1
    assert len(list(store.events())) == 1
    # The same body signed at another second (a new request) is answered, and counts once.
    assert harness.sender.post(body, timestamp=str(int(captured_ts) + 1)).status_code == 200
    assert len(list(store.events())) == 1
    assert 'churnbot_requests_total{handler="replayed",outcome="http_401"} 1.0' in metric_lines(
        harness
    )


def test_a_replayed_click_that_stored_nothing_is_refused_without_a_second_note(
    harness: Harness, digest: Digest, store: FeedbackStore
) -> None:
    url = harness.emulator.response_url("forged-twice")
    body = click_body(harness, "feedback_helpful", '{"a":"x"}', digest=digest, response_url=url)
    captured_ts = str(int(time.time()))
    assert harness.sender.post(body, timestamp=captured_ts).status_code == 200
    assert harness.sender.post(body, timestamp=captured_ts).status_code == 401
    drain(harness)
    assert len(harness.emulator.calls("response_url")) == 1
    assert list(store.events()) == []


def test_two_copies_of_a_click_whose_listener_fails_tell_the_user_once(
    harness: Harness, digest: Digest, store: FeedbackStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that makes a click's listener fail before its write (injected: the event cannot
    be built) with the same signed request in flight twice: both fail, and only the first
    says so; the copy is refused as replayed (the error handler settles the replay guard
    before it tells the user)."""
    both_failing = threading.Barrier(2, timeout=10)

    def fail(*_: Any, **__: Any) -> None:
        both_failing.wait()  # both copies are inside the listener before either fails
        raise RuntimeError("injected bug")

    monkeypatch.setattr(Recorder, "button_event", fail)
    url = harness.emulator.response_url("in-flight-twice")
    body = click_body(
        harness, "feedback_helpful", digest.value("ACC-000001"), digest=digest, response_url=url
    )
    captured_ts = str(int(time.time()))
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: harness.sender.post(body, timestamp=captured_ts), "ab"))

    assert sorted(a.status_code for a in answers) == [200, 401]
    drain(harness)
    [note] = harness.emulator.calls("response_url")
    assert "Something went wrong on our side" in note.body["text"]
    assert list(store.events()) == []


# --- the correction modal ---------------------------------------------------------------------


def open_modal(h: Harness, digest: Digest, account_id: str = "ACC-000001") -> dict[str, Any]:
    trigger = f"trig.{uuid.uuid4().hex}"
    response = click(
        h,
        "feedback_correct",
        digest.value(account_id),
        digest=digest,
        account_id=account_id,
        trigger_id=trigger,
    )
    assert response.status_code == 200
    [opened] = h.emulator.wait_for("views.open")
    assert opened.body["trigger_id"] == trigger
    assert "Loading" in json.dumps(opened.body["view"])
    [updated] = h.emulator.wait_for("views.update")
    assert updated.ok, updated.response
    assert updated.body["view_id"] == opened.response["view"]["id"]
    return {**updated.response["view"]}


def submit(
    h: Harness, view: dict[str, Any], values: dict[str, Any], user: str = CSM
) -> httpx.Response:
    state = {block_id: {"value": value} for block_id, value in values.items()}
    payload = {
        "type": "view_submission",
        "team": {"id": "T0CHURNBOT", "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0CHURNBOT"},
        "api_app_id": "A0CHURNBOT",
        "token": "legacy-unused",
        "trigger_id": f"trig.{uuid.uuid4().hex}",
        "view": {**view, "state": {"values": state}},
    }
    return h.sender.interaction(payload)


def radio(value: str) -> dict[str, Any]:
    return {"type": "radio_buttons", "selected_option": {"value": value}}


def text_input(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def test_correct_opens_loading_at_once_then_the_form_from_the_card(
    harness: Harness, digest: Digest
) -> None:
    view = open_modal(harness, digest)
    assert view_problems(view) == []
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    states = [o["value"] for o in blocks["real_state"]["element"]["options"]]
    assert states == ["at_risk", "not_at_risk", "churned", "renewed"]
    reasons = [o["value"] for o in blocks["wrong_reasons"]["element"]["options"]]
    assert reasons == ["usage_decline", "renewal"]
    actions = [o["value"] for o in blocks["better_action"]["element"]["options"]]
    assert actions[0] == "renewal-at-risk-ebr"
    assert actions[-1] == "default-check-in"
    assert {"better_action_text", "note"} <= set(blocks)
    shown = view["blocks"][0]["text"]["text"]
    assert "Acme Corp" in shown
    assert "recommended action: Invite the team to an enablement webinar" in shown
    assert "usage-drop" not in shown, "the rule's internal name means nothing to a CSM"


def test_an_expired_trigger_tells_the_user_to_click_again(harness: Harness, digest: Digest) -> None:
    trigger = "trig.too-late"
    harness.emulator.expire_trigger(trigger)
    url = harness.emulator.response_url("late")
    click(
        harness,
        "feedback_correct",
        digest.value("ACC-000001"),
        digest=digest,
        trigger_id=trigger,
        response_url=url,
    )
    [call] = harness.emulator.wait_for("response_url")
    assert "click Correct… again" in call.body["text"]
    assert harness.emulator.calls("views.update") == []


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        ({}, {"real_state"}),
        ({"real_state": radio("at_risk")}, {"real_state"}),
        (
            {
                "real_state": radio("not_at_risk"),
                "wrong_reasons": {
                    "type": "checkboxes",
                    "selected_options": [{"value": "made_up"}],
                },
            },
            {"wrong_reasons"},
        ),
        (
            {
                "real_state": radio("not_at_risk"),
                "better_action": {
                    "type": "static_select",
                    "selected_option": {"value": "escalations"},
                },
                "better_action_text": text_input("Call the CFO"),
            },
            {"better_action_text"},
        ),
        ({"real_state": radio("bankrupt")}, {"real_state"}),
    ],
    ids=["nothing", "agrees-without-detail", "forged-reason", "action-twice", "unknown-state"],
)
def test_a_bad_submission_is_answered_with_field_errors_and_stores_nothing(
    harness: Harness,
    digest: Digest,
    store: FeedbackStore,
    values: dict[str, Any],
    errors: set[str],
) -> None:
    view = open_modal(harness, digest)
    response = submit(harness, view, values)
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == errors
    assert list(store.events()) == []


def test_a_correction_is_redacted_stored_and_shown_on_the_digest(
    harness: Harness, digest: Digest, store: FeedbackStore
) -> None:
    view = open_modal(harness, digest)
    note = (
        "Spoke to jane.doe+renewals@acme.co.uk, call her on +44 20 7946 0958 ext. 12. "
        "ARR 120000, renewal 2026-11-23, usage -15%, see ACC-000123."
    )
    response = submit(
        harness,
        view,
        {
            "real_state": radio("renewed"),
            "wrong_reasons": {"type": "checkboxes", "selected_options": [{"value": "renewal"}]},
            "better_action": {"type": "static_select", "selected_option": {"value": "reconnect"}},
            "note": text_input(note),
        },
    )
    assert response.status_code == 200
    assert response.text in ("", "null") or "errors" not in response.json()
    [event] = list(store.events())
    assert event.kind == "correction"
    assert event.correction is not None
    assert event.correction.real_state == "renewed"
    assert event.correction.wrong_reasons == ("renewal",)
    assert event.correction.better_action == "reconnect"
    assert event.correction.note == (
        "Spoke to [email], call her on [phone]. "
        "ARR 120000, renewal 2026-11-23, usage -15%, see ACC-000123."
    )
    raw = json.dumps(harness.deps.redis.xrange(store.stream))
    assert "jane.doe" not in raw
    assert "7946" not in raw
    harness.emulator.wait_for("chat.update")
    [message] = harness.emulator.history(CHANNEL)
    assert lines(message) == {"ACC-000001": f"✏️ <@{CSM}>"}
    # Submitting the same view again (a double click on Save) counts once.
    submit(harness, view, {"real_state": radio("renewed"), "note": text_input("again")})
    assert len(list(store.events())) == 1


# --- figures ----------------------------------------------------------------------------------


def test_metrics_export_this_weeks_feedback_figures(harness: Harness, digest: Digest) -> None:
    click(harness, "feedback_helpful", digest.value("ACC-000001"), digest=digest)
    click(
        harness,
        "feedback_not_helpful",
        digest.value("ACC-000002"),
        digest=digest,
        account_id="ACC-000002",
    )
    click(
        harness,
        "feedback_action_done",
        digest.value("ACC-000002"),
        digest=digest,
        account_id="ACC-000002",
    )
    drain(harness)
    metrics = httpx.get(f"{harness.url}/metrics").text
    assert "churnbot_feedback_up 1.0" in metrics
    assert 'churnbot_feedback_acceptance_ratio{action="all",segment="all"} 0.5' in metrics
    assert 'churnbot_feedback_action_done_ratio{action="all",segment="all"} 0.5' in metrics
    assert 'churnbot_feedback_answers{action="usage-drop",segment="all"} 3.0' in metrics
    assert 'churnbot_feedback_adoption_ratio{segment="all"} 1.0' in metrics
