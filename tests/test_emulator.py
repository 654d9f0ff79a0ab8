"""The Slack Web API emulator, driven by the real slack_sdk WebClient over loopback HTTP.

Other tests trust the emulator to answer like Slack; these pin that it does, for the calls and
the failures (limits, 429, 5xx, response_url uses) the app must handle.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.emulator import SlackEmulator, SlackUser, block_kit_problems, message_rejection

DIGEST = "C0DIGEST"
OTHER = "C0OTHER"
NOT_JOINED = "C0NOTJOINED"
ADMIN = SlackUser("U0ADMIN", "ana", real_name="Ana Admin", email="ana@example.com", is_admin=True)


class FakeClock:
    """Monotonic seconds a test moves by hand, so rate limits and expiry need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[SlackEmulator]:
    with SlackEmulator(
        channels={DIGEST: "cs-digest", OTHER: "cs-other", NOT_JOINED: "exec"},
        non_member_channels=[NOT_JOINED],
        users=[ADMIN],
        clock=clock,
    ) as running:
        yield running


@pytest.fixture
def client(emulator: SlackEmulator) -> WebClient:
    return WebClient(base_url=emulator.base_url, token=emulator.token)


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(**overrides: object) -> dict:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": "Helpful"},
        "action_id": "feedback_helpful",
        "value": "acct-1",
        **overrides,
    }


def slack_error(call: object) -> SlackApiError:
    """Run ``call`` and return the SlackApiError it raised."""
    with pytest.raises(SlackApiError) as raised:
        call()  # type: ignore[operator]
    return raised.value


# -- auth ----------------------------------------------------------------------------------------


def test_auth_test_answers_what_bolt_needs(emulator: SlackEmulator, client: WebClient) -> None:
    answer = client.auth_test()

    assert answer["team_id"] == "T0CHURNBOT"
    assert answer["user_id"] == "U0CHURNBOT"
    assert answer["bot_id"] == "B0CHURNBOT"
    assert answer["url"].startswith("https://")
    (call,) = emulator.calls("auth.test")
    assert call.headers["authorization"] == f"Bearer {emulator.token}"


def test_bolt_app_built_on_the_emulator_calls_auth_test(emulator: SlackEmulator) -> None:
    client = WebClient(base_url=emulator.base_url, token=emulator.token)

    App(client=client, signing_secret="test-secret")

    assert [c.method for c in emulator.calls()] == ["auth.test"]


def test_wrong_token_is_invalid_auth_and_no_token_is_not_authed(emulator: SlackEmulator) -> None:
    wrong = WebClient(base_url=emulator.base_url, token="xoxb-stolen")
    anonymous = WebClient(base_url=emulator.base_url)

    assert slack_error(lambda: wrong.chat_postMessage(channel=DIGEST, text="hi")).response[
        "error"
    ] == ("invalid_auth")
    assert slack_error(anonymous.auth_test).response["error"] == "not_authed"
    assert emulator.messages() == []


# -- chat ----------------------------------------------------------------------------------------


def test_post_message_is_recorded_with_its_blocks(
    emulator: SlackEmulator, client: WebClient
) -> None:
    blocks = [section("*Acme* is at risk"), {"type": "actions", "elements": [button()]}]

    first = client.chat_postMessage(channel=DIGEST, text="Churn digest", blocks=blocks)
    second = client.chat_postMessage(channel=DIGEST, text="part 2", thread_ts=first["ts"])

    assert first["channel"] == DIGEST
    assert float(second["ts"]) > float(first["ts"])
    posted = emulator.messages(DIGEST)
    assert [c.response["ts"] for c in posted] == [first["ts"], second["ts"]]
    assert posted[0].body["blocks"] == blocks
    assert posted[0].headers["content-type"].startswith("application/json")
    assert posted[1].body["thread_ts"] == first["ts"]
    assert emulator.messages(OTHER) == []


def test_form_encoded_calls_are_understood(emulator: SlackEmulator, client: WebClient) -> None:
    blocks = [section("form-encoded")]
    posted = client.api_call(
        "chat.postMessage",
        params={"channel": DIGEST, "text": "fallback", "blocks": json.dumps(blocks)},
    )

    client.chat_delete(channel=DIGEST, ts=posted["ts"])

    (post,) = emulator.messages()
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.body["blocks"] == blocks
    (delete,) = emulator.calls("chat.delete")
    assert delete.ok
    assert emulator.history(DIGEST) == []


def test_blocks_given_as_json_text_in_a_json_body_are_the_same_blocks(
    emulator: SlackEmulator, client: WebClient
) -> None:
    """As churnbot posts a digest part (``Message.blocks_arg``); text that is not JSON is
    refused as Slack refuses it."""
    blocks = [section("*Acme* is at risk 🔥"), {"type": "actions", "elements": [button()]}]

    client.chat_postMessage(
        channel=DIGEST, text="Churn digest", blocks=json.dumps(blocks, ensure_ascii=False)
    )
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=DIGEST, text="Churn digest", blocks="[{not json")

    (post,) = emulator.messages(DIGEST)
    assert post.headers["content-type"].startswith("application/json")
    assert post.body["blocks"] == blocks
    assert [m["blocks"] for m in emulator.history(DIGEST)] == [blocks]
    assert refused.value.response["error"] == "invalid_blocks_format"
    assert [c.ok for c in emulator.calls("chat.postMessage")] == [True, False]


def test_post_ephemeral_answers_message_ts_and_is_not_a_channel_message(
    emulator: SlackEmulator, client: WebClient
) -> None:
    answer = client.chat_postEphemeral(channel=DIGEST, user=ADMIN.id, text="Only you see this")

    assert answer["message_ts"]
    assert emulator.calls("chat.postEphemeral")[0].body["user"] == ADMIN.id
    assert emulator.messages() == []


def test_update_needs_an_existing_ts_in_that_channel(
    emulator: SlackEmulator, client: WebClient
) -> None:
    posted = client.chat_postMessage(channel=DIGEST, text="Scoring...")

    updated = client.chat_update(
        channel=DIGEST, ts=posted["ts"], text="Done", blocks=[section("Done")]
    )

    assert updated["ts"] == posted["ts"]
    (message,) = emulator.history(DIGEST)
    assert message["text"] == "Done"
    assert message["blocks"] == [section("Done")]
    unknown = slack_error(lambda: client.chat_update(channel=DIGEST, ts="1.000001", text="x"))
    assert unknown.response["error"] == "message_not_found"
    elsewhere = slack_error(lambda: client.chat_update(channel=OTHER, ts=posted["ts"], text="x"))
    assert elsewhere.response["error"] == "message_not_found"


def test_history_lets_a_reconciler_find_its_message_by_metadata(
    emulator: SlackEmulator, client: WebClient
) -> None:
    metadata = {"event_type": "churn_digest", "event_payload": {"slot": "2026-05-11"}}
    ours = client.chat_postMessage(channel=DIGEST, text="digest", metadata=metadata)
    client.chat_postMessage(channel=DIGEST, text="reply", thread_ts=ours["ts"])
    client.chat_postMessage(channel=DIGEST, text="later")

    newest = client.conversations_history(channel=DIGEST, limit=1)
    rest = client.conversations_history(
        channel=DIGEST, cursor=newest["response_metadata"]["next_cursor"], include_all_metadata=True
    )
    replies = client.conversations_replies(channel=DIGEST, ts=ours["ts"])

    assert [m["text"] for m in newest["messages"]] == ["later"]
    assert newest["has_more"] is True
    assert [m["text"] for m in rest["messages"]] == ["digest"]
    assert rest["messages"][0]["metadata"] == metadata
    assert "metadata" not in newest["messages"][0]
    assert [m["text"] for m in replies["messages"]] == ["digest", "reply"]


# -- Block Kit and message limits ---------------------------------------------------------------


def _actions(elements: list[dict]) -> list[dict]:
    return [{"type": "actions", "elements": elements}]


BLOCK_CASES = {
    "51 blocks": ([section("x")] * 51, "invalid_blocks"),
    "section text 3001": ([section("x" * 3001)], "invalid_blocks"),
    "header text 151": (
        [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
        "invalid_blocks",
    ),
    "header in mrkdwn": (
        [{"type": "header", "text": {"type": "mrkdwn", "text": "*x*"}}],
        "invalid_blocks",
    ),
    "button value 2001": (_actions([button(value="v" * 2001)]), "invalid_blocks"),
    "action_id 256": (_actions([button(action_id="a" * 256)]), "invalid_blocks"),
    "block_id 256": ([{**section("x"), "block_id": "b" * 256}], "invalid_blocks"),
    "button text 76": (
        _actions([button(text={"type": "plain_text", "text": "t" * 76})]),
        "invalid_blocks",
    ),
    "context 11 elements": (
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
        "invalid_blocks",
    ),
    "actions 26 elements": (
        _actions([button(action_id=f"a{i}") for i in range(26)]),
        "invalid_blocks",
    ),
    "50 valid but long sections": ([section("x" * 2900)] * 50, "msg_blocks_too_long"),
}


@pytest.mark.parametrize(("blocks", "error"), BLOCK_CASES.values(), ids=BLOCK_CASES.keys())
def test_block_kit_limits_are_refused_like_slack(
    emulator: SlackEmulator, client: WebClient, blocks: list[dict], error: str
) -> None:
    refused = slack_error(lambda: client.chat_postMessage(channel=DIGEST, text="x", blocks=blocks))

    assert refused.response["error"] == error
    assert emulator.messages() == []


def test_invalid_blocks_point_at_the_offending_field(client: WebClient) -> None:
    refused = slack_error(
        lambda: client.chat_postMessage(
            channel=DIGEST, text="x", blocks=[section("ok"), section("x" * 3001)]
        )
    )

    (message,) = refused.response["response_metadata"]["messages"]
    assert message.startswith("[ERROR] must be at most 3000 characters")
    assert message.endswith("[json-pointer:/blocks/1/text/text]")


def test_text_limits_and_missing_content(client: WebClient) -> None:
    too_long = slack_error(lambda: client.chat_postMessage(channel=DIGEST, text="x" * 40_001))
    empty = slack_error(lambda: client.api_call("chat.postMessage", json={"channel": DIGEST}))

    assert too_long.response["error"] == "msg_too_long"
    assert empty.response["error"] == "no_text"


def test_block_kit_problems_accepts_every_limit_exactly() -> None:
    at_limits = [
        {**section("x" * 3000), "block_id": "b" * 255},
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        {"type": "context", "elements": [{"type": "plain_text", "text": "c"}] * 10},
        {
            "type": "actions",
            "elements": [
                button(action_id="a" * 255, value="v" * 2000),
                *(button(action_id=f"b{i}") for i in range(24)),
            ],
        },
    ]
    fifty = [section("x")] * 50

    assert block_kit_problems(at_limits) == []
    assert block_kit_problems(fifty) == []
    assert message_rejection(text="fallback", blocks=fifty) is None


def test_views_allow_100_blocks_and_messages_50() -> None:
    hundred = [section("x")] * 100

    assert block_kit_problems(hundred, surface="modal") == []
    assert block_kit_problems(hundred, surface="home") == []
    assert block_kit_problems(hundred) == [
        "must have at most 50 items, got 100 [json-pointer:/blocks]"
    ]
    with pytest.raises(ValueError, match=r"'surface' parameter .* Got 'dm' instead"):
        block_kit_problems(hundred, surface="dm")


def test_duplicate_ids_and_unknown_types_are_problems() -> None:
    problems = block_kit_problems(
        [
            {**section("a"), "block_id": "same"},
            {**section("b"), "block_id": "same"},
            {"type": "carousel"},
            _actions([button(), button()])[0],
        ]
    )

    assert problems == [
        "duplicate block_id 'same' [json-pointer:/blocks/1/block_id]",
        "unsupported block type 'carousel' [json-pointer:/blocks/2/type]",
        "duplicate action_id 'feedback_helpful' [json-pointer:/blocks/3/elements/1/action_id]",
    ]


# -- channels and users -------------------------------------------------------------------------


def test_missing_or_unknown_channel_is_channel_not_found(client: WebClient) -> None:
    missing = slack_error(lambda: client.api_call("chat.postMessage", json={"text": "x"}))
    unknown = slack_error(lambda: client.chat_postMessage(channel="C0NOSUCH", text="x"))
    info = slack_error(lambda: client.conversations_info(channel="C0NOSUCH"))

    assert missing.response["error"] == "channel_not_found"
    assert unknown.response["error"] == "channel_not_found"
    assert info.response["error"] == "channel_not_found"


def test_posting_where_the_bot_is_not_a_member_is_not_in_channel(
    emulator: SlackEmulator, client: WebClient
) -> None:
    refused = slack_error(lambda: client.chat_postMessage(channel=NOT_JOINED, text="x"))

    assert refused.response["error"] == "not_in_channel"
    assert client.conversations_info(channel=NOT_JOINED)["channel"]["is_member"] is False
    assert client.conversations_info(channel=DIGEST)["channel"]["name"] == "cs-digest"
    assert emulator.messages() == []


def test_without_a_channel_list_any_channel_exists() -> None:
    with SlackEmulator(non_member_channels=["C0OUT"]) as open_world:
        client = WebClient(base_url=open_world.base_url, token=open_world.token)

        client.chat_postMessage(channel="C0ANYTHING", text="x")
        refused = slack_error(lambda: client.chat_postMessage(channel="C0OUT", text="x"))

        assert len(open_world.messages("C0ANYTHING")) == 1
        assert refused.response["error"] == "not_in_channel"


def test_users_info_reads_the_users_table(client: WebClient) -> None:
    user = client.users_info(user=ADMIN.id)["user"]
    unknown = slack_error(lambda: client.users_info(user="U0NOBODY"))

    assert (user["id"], user["name"], user["real_name"]) == ("U0ADMIN", "ana", "Ana Admin")
    assert user["profile"]["email"] == "ana@example.com"
    assert user["is_admin"] is True
    assert unknown.response["error"] == "user_not_found"


# -- views --------------------------------------------------------------------------------------


def modal(*blocks: dict, **extra: object) -> dict:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Correct a score"},
        "blocks": list(blocks) or [section("Loading...")],
        **extra,
    }


def test_views_open_then_update_by_id_or_external_id(
    emulator: SlackEmulator, client: WebClient
) -> None:
    opened = client.views_open(trigger_id="111.222.abc", view=modal(external_id="fb-1"))["view"]

    by_id = client.views_update(view_id=opened["id"], view=modal(section("Ready")))
    by_external = client.views_update(external_id="fb-1", view=modal(section("Again")))

    assert by_id["view"]["id"] == by_external["view"]["id"] == opened["id"]
    assert by_external["view"]["blocks"] == [section("Again")]
    reused = slack_error(lambda: client.views_open(trigger_id="111.222.abc", view=modal()))
    assert reused.response["error"] == "exchanged_trigger_id"
    unknown = slack_error(lambda: client.views_update(view_id="V0NOPE", view=modal()))
    assert unknown.response["error"] == "not_found"


def test_expired_trigger_and_invalid_view_are_refused(
    emulator: SlackEmulator, client: WebClient
) -> None:
    emulator.expire_trigger("old.trigger")

    expired = slack_error(lambda: client.views_open(trigger_id="old.trigger", view=modal()))
    too_many = slack_error(
        lambda: client.views_open(trigger_id="t2", view=modal(*[section("x")] * 101))
    )

    assert expired.response["error"] == "expired_trigger_id"
    assert too_many.response["error"] == "invalid_arguments"
    assert too_many.response["response_metadata"]["messages"] == [
        "[ERROR] must have at most 100 items, got 101 [json-pointer:/view/blocks]"
    ]


def test_views_publish_records_the_home_tab_per_user(
    emulator: SlackEmulator, client: WebClient
) -> None:
    home = {"type": "home", "blocks": [section("Your book this week")]}

    first = client.views_publish(user_id=ADMIN.id, view=home)["view"]
    client.views_publish(user_id=ADMIN.id, view={**home, "blocks": [section("Updated")]})
    as_modal = slack_error(lambda: client.views_publish(user_id=ADMIN.id, view=modal()))

    published = emulator.published_views(ADMIN.id)
    assert [v["blocks"] for v in published] == [
        [section("Your book this week")],
        [section("Updated")],
    ]
    assert published[-1]["id"] == first["id"]
    assert emulator.published_views("U0OTHER") == []
    assert as_modal.response["error"] == "invalid_arguments"


# -- fault injection ----------------------------------------------------------------------------


def test_429_carries_retry_after_and_changes_nothing(
    emulator: SlackEmulator, client: WebClient
) -> None:
    emulator.fail_next("chat.postMessage", status=429, retry_after=7)

    limited = slack_error(lambda: client.chat_postMessage(channel=DIGEST, text="x"))

    assert limited.response.status_code == 429
    assert limited.response.headers["Retry-After"] == "7"
    assert limited.response["error"] == "ratelimited"
    assert emulator.messages() == []


def test_rate_limit_retry_handler_retries_and_the_message_lands_once(
    emulator: SlackEmulator,
) -> None:
    client = WebClient(
        base_url=emulator.base_url,
        token=emulator.token,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    emulator.fail_next("chat.postMessage", retry_after=0)

    answer = client.chat_postMessage(channel=DIGEST, text="digest")

    assert [c.status for c in emulator.calls("chat.postMessage")] == [429, 200]
    (posted,) = emulator.messages(DIGEST)
    assert posted.response["ts"] == answer["ts"]


def test_503_is_an_error_without_a_handler_and_retried_with_one(
    emulator: SlackEmulator, client: WebClient
) -> None:
    emulator.fail_next("chat.postMessage", status=503)
    failed = slack_error(lambda: client.chat_postMessage(channel=DIGEST, text="x"))
    retrying = WebClient(
        base_url=emulator.base_url,
        token=emulator.token,
        retry_handlers=[ServerErrorRetryHandler(max_retry_count=1)],
    )
    emulator.fail_next("chat.postMessage", status=503)

    retrying.chat_postMessage(channel=DIGEST, text="x")

    assert failed.response.status_code == 503
    assert failed.response["error"] == "service_unavailable"
    assert [c.status for c in emulator.calls("chat.postMessage")] == [503, 503, 200]
    assert len(emulator.messages()) == 1


def test_injected_error_codes_and_repeat_counts(emulator: SlackEmulator, client: WebClient) -> None:
    emulator.fail_next("chat.postMessage", error="ratelimited")
    emulator.fail_next("auth.test", error="account_inactive", times=2)

    limited = slack_error(lambda: client.chat_postMessage(channel=DIGEST, text="x"))
    inactive = [slack_error(client.auth_test) for _ in range(2)]
    client.auth_test()

    assert limited.response.status_code == 429
    assert "Retry-After" in limited.response.headers
    assert [e.response.status_code for e in inactive] == [200, 200]
    assert [e.response["error"] for e in inactive] == ["account_inactive"] * 2


def test_latency_and_slow_answers_show_in_recorded_durations(
    emulator: SlackEmulator, client: WebClient
) -> None:
    emulator.latency = 0.05
    emulator.fail_next("chat.postMessage", delay=0.2)

    client.chat_postMessage(channel=DIGEST, text="slow")
    client.auth_test()

    slow, normal = emulator.calls()
    assert slow.ok
    assert slow.duration >= 0.25
    assert normal.duration >= 0.05


def test_per_channel_rate_limit_answers_429_until_the_next_slot(clock: FakeClock) -> None:
    with SlackEmulator(rate_limit_per_channel=1.0, clock=clock) as limited:
        client = WebClient(base_url=limited.base_url, token=limited.token)

        client.chat_postMessage(channel=DIGEST, text="1")
        too_fast = slack_error(lambda: client.chat_postMessage(channel=DIGEST, text="2"))
        client.chat_postMessage(channel=OTHER, text="other channel, own budget")
        clock.now += 1.0
        client.chat_postMessage(channel=DIGEST, text="2 again")

        assert too_fast.response.status_code == 429
        assert too_fast.response.headers["Retry-After"] == "1"
        assert [c.body["text"] for c in limited.messages(DIGEST)] == ["1", "2 again"]


def test_random_faults_are_seeded_and_can_be_turned_off(
    emulator: SlackEmulator, client: WebClient
) -> None:
    rng = random.Random(42)
    expected = [rng.random() < 0.1 for _ in range(40)]
    emulator.fail_randomly("auth.test", 0.1, seed=42)

    for _ in expected:
        with contextlib.suppress(SlackApiError):
            client.auth_test()
    emulator.fail_randomly("auth.test", 0)
    client.auth_test()

    statuses = [c.status for c in emulator.calls("auth.test")]
    assert statuses == [429 if fails else 200 for fails in expected] + [200]
    assert 0 < statuses.count(429) < len(expected)


def test_random_faults_do_not_raise_through_the_retry_handler(emulator: SlackEmulator) -> None:
    client = WebClient(
        base_url=emulator.base_url,
        token=emulator.token,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=5)],
    )
    emulator.fail_randomly("chat.postMessage", 0.1, retry_after=0, seed=4)  # 5th draw fails

    for i in range(10):
        client.chat_postMessage(channel=DIGEST, text=str(i))

    assert [c.status for c in emulator.calls()].count(429) == 1
    assert [c.body["text"] for c in emulator.messages()] == [str(i) for i in range(10)]


# -- response_url -------------------------------------------------------------------------------


def test_response_url_takes_five_posts_then_answers_used_url(emulator: SlackEmulator) -> None:
    webhook = WebhookClient(emulator.response_url("cmd-1"))

    accepted = [webhook.send(text=f"update {i}").status_code for i in range(5)]
    sixth = webhook.send(text="one too many")

    assert accepted == [200] * 5
    assert sixth.status_code == 404
    assert json.loads(sixth.body)["error"] == "used_url"
    calls = emulator.calls("response_url")
    assert [c.response_url_name for c in calls] == ["cmd-1"] * 6
    assert calls[0].body["text"] == "update 0"


def test_response_url_expires_after_30_minutes(emulator: SlackEmulator, clock: FakeClock) -> None:
    webhook = WebhookClient(emulator.response_url("cmd-2"))
    clock.now += 30 * 60 + 1

    expired = webhook.send(text="too late")

    assert expired.status_code == 404
    assert json.loads(expired.body)["error"] == "expired_url"


def test_response_url_refuses_what_slack_refuses(emulator: SlackEmulator) -> None:
    webhook = WebhookClient(emulator.response_url("cmd-3"))
    stranger = WebhookClient(emulator.response_url("cmd-3").replace("cmd-3", "never-issued"))

    empty = webhook.send_dict({"response_type": "ephemeral"})
    deleted = webhook.send_dict({"delete_original": True})

    assert (empty.status_code, json.loads(empty.body)["error"]) == (400, "no_text")
    assert deleted.status_code == 200
    assert stranger.send(text="x").status_code == 404


# -- recording ----------------------------------------------------------------------------------


def test_wait_for_sees_calls_made_from_another_thread(
    emulator: SlackEmulator, client: WebClient
) -> None:
    worker = threading.Thread(
        target=lambda: [client.chat_postMessage(channel=c, text="x") for c in (DIGEST, OTHER)]
    )
    worker.start()

    found = emulator.wait_for(lambda call: call.method == "chat.postMessage", count=2)
    worker.join()

    assert {c.body["channel"] for c in found} == {DIGEST, OTHER}
    with pytest.raises(TimeoutError, match=r"expected 1 call.*'views\.open'"):
        emulator.wait_for("views.open", timeout=0.01)


def test_clear_forgets_calls_but_keeps_the_workspace(
    emulator: SlackEmulator, client: WebClient
) -> None:
    client.chat_postMessage(channel=DIGEST, text="kept")

    emulator.clear()

    assert emulator.calls() == []
    assert [m["text"] for m in emulator.history(DIGEST)] == ["kept"]


def test_unknown_methods_and_a_stopped_emulator() -> None:
    emulator = SlackEmulator().start()
    client = WebClient(base_url=emulator.base_url, token=emulator.token)

    unknown = slack_error(lambda: client.api_call("chat.scheduleTeleport"))
    emulator.stop()
    emulator.stop()

    assert unknown.response["error"] == "unknown_method"
    with pytest.raises(RuntimeError, match="not started"):
        _ = emulator.base_url


def test_bad_settings_are_refused_with_the_parameter_named() -> None:
    with pytest.raises(ValueError, match=r"'rate_limit_per_channel' .* Got 0 instead"):
        SlackEmulator(rate_limit_per_channel=0)
    with pytest.raises(ValueError, match=r"'times' parameter of fail_next .* Got 0 instead"):
        SlackEmulator().fail_next("chat.postMessage", times=0)
    with pytest.raises(ValueError, match=r"'probability' .* Got 1.5 instead"):
        SlackEmulator().fail_randomly("chat.postMessage", 1.5)


# -- files and direct messages -------------------------------------------------------------------

REPORTS = "C0REPORTS01"  # a real-length id: completeUploadExternal checks the pattern
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def test_files_upload_v2_takes_the_external_flow_and_shares_with_alt_text(
    emulator: SlackEmulator, client: WebClient
) -> None:
    emulator.add_channel(REPORTS, "reports")

    answer = client.files_upload_v2(
        channel=REPORTS,
        file=PNG,
        filename="calibration.png",
        title="Calibration",
        alt_txt="Predicted against observed churn",
        initial_comment="Weekly report",
    )

    methods = [c.method for c in emulator.calls()]
    assert methods == ["files.getUploadURLExternal", "upload_url", "files.completeUploadExternal"]
    announce, upload, complete = emulator.calls()
    assert announce.response["upload_url"].startswith(emulator.url + "/upload/v1/")
    assert upload.body == {"file_id": announce.response["file_id"], "length": len(PNG)}
    assert complete.body["channel_id"] == REPORTS
    assert answer["file"]["id"] == announce.response["file_id"]
    [stored] = emulator.files(REPORTS)
    assert (stored.data, stored.alt_txt, stored.title) == (
        PNG,
        "Predicted against observed churn",
        "Calibration",
    )
    [share] = emulator.history(REPORTS)
    assert share["text"] == "Weekly report"
    assert share["files"][0]["alt_txt"] == "Predicted against observed churn"
    assert emulator.files(DIGEST) == []


def test_complete_refuses_unknown_files_bytes_not_received_and_user_ids(
    emulator: SlackEmulator, client: WebClient
) -> None:
    emulator.add_channel(REPORTS, "reports")
    unknown = slack_error(
        lambda: client.files_completeUploadExternal(files=[{"id": "F0NOPE"}], channel_id=REPORTS)
    )
    announced = client.files_getUploadURLExternal(filename="a.png", length=len(PNG))
    early = slack_error(
        lambda: client.files_completeUploadExternal(
            files=[{"id": announced["file_id"]}], channel_id=REPORTS
        )
    )
    assert (unknown.response["error"], early.response["error"]) == ("file_not_found",) * 2

    client.files_upload_v2(channel=REPORTS, file=PNG, filename="b.png")  # works on a channel
    to_a_user = slack_error(
        lambda: client.files_upload_v2(channel=ADMIN.id, file=PNG, filename="c.png")
    )
    assert to_a_user.response["error"] == "invalid_arguments"
    assert "[json-pointer:/channel_id]" in to_a_user.response["response_metadata"]["messages"][0]
    assert [f.name for f in emulator.files()] == ["b.png"]


def test_the_upload_url_wants_the_announced_length_and_a_known_file(
    emulator: SlackEmulator, client: WebClient
) -> None:
    announced = client.files_getUploadURLExternal(filename="a.png", length=10)
    for url, data, status in [
        (announced["upload_url"], b"short", 400),
        (emulator.url + "/upload/v1/F0UNKNOWN", b"0123456789", 404),
    ]:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"))
        assert refused.value.code == status
    assert [c.status for c in emulator.calls("upload_url")] == [400, 404]


def test_conversations_open_gives_one_dm_id_per_user_that_posts_and_shares(
    emulator: SlackEmulator, client: WebClient
) -> None:
    first = client.conversations_open(users=ADMIN.id)
    again = client.conversations_open(users=ADMIN.id)
    missing = slack_error(lambda: client.conversations_open(users="U0NOBODY"))

    dm = first["channel"]["id"]
    assert dm.startswith("D")
    assert first["channel"]["user"] == ADMIN.id
    assert (again["channel"]["id"], again["already_open"], first["already_open"]) == (
        dm,
        True,
        False,
    )
    assert missing.response["error"] == "user_not_found"
    client.chat_postMessage(channel=dm, text="Acme jumped to 81%")
    client.files_upload_v2(channel=dm, file=PNG, filename="d.png", alt_txt="chart")
    assert [m["text"] for m in emulator.history(dm)] == ["Acme jumped to 81%", ""]
    assert emulator.files(dm)[0].alt_txt == "chart"
