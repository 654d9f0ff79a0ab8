"""`/churn`, `/churn-admin` and App Home driven exactly as Slack drives them.

Signed HTTP requests go into the real app on loopback; the app's Web API calls reach the
emulator. Snapshots live in the real Redis.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from urllib.parse import urlencode

import httpx

from bot.emulator import block_kit_problems
from tests.slack_harness import ADMIN, BOOK, CSM, NOW, SECRET, Harness, make_card, publish


def blocks_text(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def texts_of(node: object, kind: str) -> list[str]:
    """Every text object of ``kind`` (``mrkdwn`` or ``plain_text``) in blocks, in order."""
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == kind else []
        return own + [text for value in node.values() for text in texts_of(value, kind)]
    if isinstance(node, list):
        return [text for item in node for text in texts_of(item, kind)]
    return []


def mrkdwn_texts(node: object) -> str:
    """Every mrkdwn text in the blocks: the only place Slack turns <!channel> into a ping."""
    return " ".join(texts_of(node, "mrkdwn"))


def plain_texts(node: object) -> list[str]:
    """Every plain_text in the blocks (the banner is one, shown word for word)."""
    return texts_of(node, "plain_text")


def churn(h: Harness, text: str, user: str = CSM) -> dict:
    response = h.sender.command("/churn", text, user_id=user)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["response_type"] == "ephemeral"
    assert block_kit_problems(answer["blocks"]) == []
    return answer


def test_card_for_an_exact_name_with_reasons_action_and_buttons(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    answer = churn(harness, "acme corp")
    text = blocks_text(answer["blocks"])
    assert "Acme Corp" in text
    assert "81%" in text
    assert "Logins down 48%" in text
    assert "Invite the team to an enablement webinar" in text
    action_ids = [
        element["action_id"]
        for block in answer["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert set(action_ids) >= {
        "feedback_helpful",
        "feedback_not_helpful",
        "feedback_correct",
        "feedback_action_done",
    }
    assert "Using last week's data" not in text


def test_accent_and_case_insensitive_partial_name(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    text = blocks_text(churn(harness, "SOCIETE generale")["blocks"])
    assert "Société Générale Test" in text


def test_by_id(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    assert "Beta Industries" in blocks_text(churn(harness, "ACC-000004")["blocks"])


def test_several_matches_give_a_pick_list(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    answer = churn(harness, "acme")
    buttons = [
        element
        for block in answer["blocks"]
        for element in block.get("elements", [])
        + ([block["accessory"]] if "accessory" in block else [])
        if element.get("action_id") == "show_account"
    ]
    assert {button["value"] for button in buttons} == {"ACC-000001", "ACC-000002"}


def test_the_show_button_of_a_pick_list_answers_with_the_card_and_its_trend(
    harness: Harness,
) -> None:
    publish(harness.deps, BOOK, created=NOW - dt.timedelta(hours=2))
    publish(harness.deps, [dict(card, risk=0.9) for card in BOOK])
    url = harness.emulator.response_url("show")
    payload = {
        "type": "block_actions",
        "user": {"id": CSM},
        "team": {"id": "T0CHURNBOT"},
        "trigger_id": "trig.show",
        "response_url": url,
        "container": {"type": "message", "is_ephemeral": True},
        "actions": [{"action_id": "show_account", "value": "ACC-000002", "type": "button"}],
    }
    assert harness.sender.interaction(payload).status_code == 200
    (call,) = harness.emulator.wait_for("response_url", timeout=10)
    assert call.body["replace_original"] is True
    text = mrkdwn_texts(call.body["blocks"])
    assert "Acme Labs" in text
    assert "42% → 90%" in text, "the trend came with the card"
    gone = {**payload, "actions": [{**payload["actions"][0], "value": "ACC-404"}]}
    assert harness.sender.interaction(gone).status_code == 200
    calls = harness.emulator.wait_for("response_url", count=2, timeout=10)
    assert "no longer in the current scores" in calls[1].body["text"]


def test_no_match_suggests_the_closest_names(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    text = blocks_text(churn(harness, "Gama Logistic")["blocks"])
    assert "Gamma Logistics" in text


def test_empty_text_gives_help(harness: Harness) -> None:
    text = blocks_text(churn(harness, "")["blocks"])
    assert "/churn mine" in text


def test_mine_uses_the_config_mapping_and_users_info(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    mine = blocks_text(churn(harness, "mine", user=CSM)["blocks"])
    assert "Acme Corp" in mine
    assert "Beta Industries" not in mine
    omar = blocks_text(churn(harness, "mine", user="U0OMAR0001")["blocks"])
    assert "Beta Industries" in omar
    assert harness.emulator.calls("users.info"), "Omar is found by his profile email"


def home_view(h: Harness, user: str, count: int = 1) -> dict:
    """The App Home the app publishes for ``user`` when they open it."""
    h.sender.event({"type": "app_home_opened", "user": user, "tab": "home"})
    call = h.emulator.wait_for("views.publish", count=count)[count - 1]
    view = call.body["view"]
    return json.loads(view) if isinstance(view, str) else view


DRIFT = "Scores drifted: PSI 0.41 > 0.25"
LAST_WEEK_BANNER = (
    "⚠️ Using last week's data (scores as of Nov 16) — live scores are paused: " + DRIFT
)


def test_kill_switch_banner_on_every_surface_and_every_notification(harness: Harness) -> None:
    good = publish(harness.deps, BOOK, created=NOW - dt.timedelta(days=7), as_of="2026-11-16")
    publish(harness.deps, [dict(card, risk=0.99) for card in BOOK], healthy=False)
    harness.deps.switch.trip(DRIFT, who="health-check", source="health_check")

    card = churn(harness, "acme corp")
    pick = churn(harness, "acme")
    mine = churn(harness, "mine")
    for answer in (card, pick, mine):
        assert plain_texts(answer["blocks"])[0] == LAST_WEEK_BANNER
        assert "Using last week's data (scores as of Nov 16)" in answer["text"]
        assert "99%" not in blocks_text(answer["blocks"])
    assert "81%" in blocks_text(card["blocks"])
    assert good.snapshot_id in blocks_text(card["blocks"])  # the buttons refer to what is shown
    assert "Several accounts match" in pick["text"]
    view = home_view(harness, CSM)
    assert LAST_WEEK_BANNER in plain_texts(view["blocks"])


def test_the_banner_says_when_the_last_good_scores_are_from_today(harness: Harness) -> None:
    publish(harness.deps, BOOK, created=NOW.replace(hour=6))
    publish(harness.deps, [dict(card, risk=0.99) for card in BOOK], healthy=False)
    harness.deps.switch.trip(DRIFT, who=ADMIN, source="admin")

    answer = churn(harness, "acme corp")

    banner = "⚠️ Using the last good scores, from this morning — live scores are paused: " + DRIFT
    assert plain_texts(answer["blocks"])[0] == banner
    assert "last week" not in blocks_text(answer["blocks"]) + answer["text"]


def test_kill_switch_with_no_good_snapshot_is_honest(harness: Harness) -> None:
    harness.deps.switch.trip("model file tampered with", who=ADMIN, source="admin")
    text = blocks_text(churn(harness, "acme")["blocks"])
    assert "No trustworthy churn scores" in text
    assert "model file tampered with" in text


def test_stale_scores_carry_the_banner_with_their_real_age(harness: Harness) -> None:
    publish(harness.deps, BOOK, created=NOW.replace(day=20))
    answer = churn(harness, "acme")
    assert plain_texts(answer["blocks"])[0] == (
        "⚠️ Using the last good scores, from Nov 20 — no scoring run in the last 24 hours "
        "(last one 72 hours ago)"
    )
    assert "Using the last good scores, from Nov 20" in answer["text"]


def test_ids_match_in_any_case(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    for typed in ("acc-000004", "Acc-000004", "ACC-000004"):
        answer = churn(harness, typed)
        assert "Beta Industries" in answer["text"]
        assert "fb:ACC-000004" in blocks_text(answer["blocks"])


def test_a_long_pick_list_is_ordered_by_risk_and_says_how_many_more(harness: Harness) -> None:
    apex = [
        make_card(f"APX-{i:06d}", f"Apex {name}", round(0.02 + (i * 37 % 101) / 120, 4))
        for i, name in enumerate(f"{a}{b}" for a in "abcdefghijk" for b in "abcdefghij")
    ][:102]
    publish(harness.deps, [*apex, *BOOK])

    answer = churn(harness, "apex")

    rows = [b for b in answer["blocks"] if b.get("accessory", {}).get("action_id")]
    riskiest = sorted(apex, key=lambda card: -card["risk"])[:10]
    assert [row["accessory"]["value"] for row in rows] == [c["account_id"] for c in riskiest]
    text = mrkdwn_texts(answer["blocks"])
    assert "Several accounts match 'apex', riskiest first:" in text
    assert (
        "… and 92 more. To narrow the list, type more of the name, or the account id: "
        "`/churn ACCOUNT`" in text
    )


def test_app_home_and_mine_tell_an_unmapped_user_how_to_get_mapped(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    stranger = home_view(harness, "U0STRANGER")  # no mapping, unknown to users.info
    text = mrkdwn_texts(stranger["blocks"])
    assert "I don't know which accounts are yours: ask an admin to map your Slack user" in text
    assert "None of your accounts" not in text

    # Ada's profile email maps her to an owner with no account at all.
    ada = mrkdwn_texts(home_view(harness, ADMIN, count=2)["blocks"])
    assert "No account in the current scores belongs to ada@example.com." in ada
    assert "config/slack.yaml (owners)" in ada
    mine = mrkdwn_texts(churn(harness, "mine", user=ADMIN)["blocks"])
    assert "No account in the current scores belongs to ada@example.com." in mine


def test_card_trend_words(harness: Harness) -> None:
    publish(harness.deps, BOOK, created=NOW - dt.timedelta(hours=2))
    first = mrkdwn_texts(churn(harness, "acme corp")["blocks"])
    assert "Trend: no trend yet (this is the first score)" in first
    assert "scores)" not in first
    publish(harness.deps, [dict(card, risk=0.9) for card in BOOK])
    second = mrkdwn_texts(churn(harness, "acme corp")["blocks"])
    assert "Trend: risk 81% → 90% over the last 2 scores" in second
    assert "20261123-abcdef0123" not in second, "the model version is for admins"
    assert "_why: Falling usage comes before churn_" in second


def test_an_account_name_links_to_its_crm_record(harness: Harness) -> None:
    url = "https://crm.example.com/accounts/ACC-000001"
    publish(harness.deps, [dict(BOOK[0], url=url), *BOOK[1:]])
    text = mrkdwn_texts(churn(harness, "acme corp")["blocks"])
    assert f"*<{url}|Acme Corp>* · `ACC-000001`" in text


def test_odd_input_is_answered_safely(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    for text in [
        "<!channel> *bold* `code`",
        "' OR 1=1 --",
        "名前テスト 🚀",
        "a" * 5000,
        "evil & co",
        "\u202e\u0000",
    ]:
        answer = churn(harness, text)
        assert "<!channel>" not in mrkdwn_texts(answer["blocks"])


def test_hostile_account_name_is_escaped(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    text = blocks_text(churn(harness, "evil")["blocks"])
    assert "&lt;!channel&gt; Evil &amp; Co" in text
    assert "<!channel>" not in mrkdwn_texts(json.loads(text))


def test_forged_and_stale_requests_are_refused_and_touch_nothing(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    body = urlencode(
        {
            "command": "/churn-admin",
            "text": "killswitch on forged",
            "user_id": ADMIN,
            "team_id": "T0CHURNBOT",
        }
    )
    forged = harness.sender.post(body, secret="wrong-secret")
    assert forged.status_code == 401
    stale = harness.sender.post(body, timestamp=str(int(time.time()) - 6 * 60))
    assert stale.status_code == 401
    unsigned = httpx.post(
        f"{harness.url}/slack/events",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert unsigned.status_code == 401
    assert not harness.deps.switch.state().on
    assert harness.emulator.calls() == [] or all(
        call.method == "auth.test" for call in harness.emulator.calls()
    )


def test_malformed_bodies_and_unknown_commands(harness: Harness) -> None:
    bad_json = harness.sender.post(
        "payload=%7Bnot-json",
    )
    assert bad_json.status_code in (400, 404)
    unknown = harness.sender.command("/unknown-command", "x")
    assert unknown.status_code == 404


def test_admin_commands_are_refused_to_others_and_audited(harness: Harness) -> None:
    response = harness.sender.command("/churn-admin", "killswitch on testing", user_id=CSM)
    assert response.status_code == 200
    assert "admins only" in response.json()["text"]
    assert not harness.deps.switch.state().on
    entry = harness.deps.audit.recent(1)[0]
    assert (entry.who, entry.what, entry.outcome) == (CSM, "killswitch on", "refused")


def test_admin_trips_and_resets_the_switch_and_other_admins_are_told(harness: Harness) -> None:
    response = harness.sender.command("/churn-admin", "killswitch on bad CRM import", user_id=ADMIN)
    assert "Kill switch ON" in response.json()["text"]
    state = harness.deps.switch.state()
    assert (state.on, state.reason, state.who, state.source) == (
        True,
        "bad CRM import",
        ADMIN,
        "admin",
    )
    status = harness.sender.command("/churn-admin", "status", user_id=ADMIN).json()["text"]
    tripped_at = dt.datetime.fromisoformat(state.when)
    assert f"Kill switch:* ON since {tripped_at:%Y-%m-%d %H:%M} UTC by <@{ADMIN}>: bad" in status
    again = harness.sender.command("/churn-admin", "killswitch on other", user_id=ADMIN).json()
    assert (
        f"already on since {tripped_at:%Y-%m-%d %H:%M} UTC (bad CRM import, by <@{ADMIN}>)"
        in (again["text"])
    )
    harness.sender.command("/churn-admin", "killswitch off", user_id=ADMIN)
    assert not harness.deps.switch.state().on
    whats = [entry.what for entry in harness.deps.audit.recent(5)]
    assert whats[:2] == ["killswitch off", "killswitch on"]


def test_app_home_for_a_csm_and_for_an_admin(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    assert (
        harness.sender.event({"type": "app_home_opened", "user": CSM, "tab": "home"}).status_code
        == 200
    )
    harness.emulator.wait_for("views.publish")
    view = harness.emulator.calls("views.publish")[0].body["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert "Acme Corp" in blocks_text(view["blocks"])
    assert "Kill switch" not in blocks_text(view["blocks"])
    harness.sender.event({"type": "app_home_opened", "user": ADMIN, "tab": "home"})
    harness.emulator.wait_for("views.publish", count=2)
    admin_view = harness.emulator.calls("views.publish")[1].body["view"]
    admin_view = json.loads(admin_view) if isinstance(admin_view, str) else admin_view
    assert "20261123-abcdef0123" in blocks_text(admin_view["blocks"])


def test_retried_events_cause_no_duplicate_effects(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    event = {"type": "app_home_opened", "user": CSM, "tab": "home"}
    harness.sender.event(event, event_id="Ev0RETRY001")
    harness.emulator.wait_for("views.publish")
    harness.sender.clock = lambda: time.time() + 1  # Slack signs a retry when it sends it
    again = harness.sender.event(event, event_id="Ev0RETRY001", retry_num=1)
    assert again.status_code == 200
    harness.deps.background.submit(lambda: None).result(timeout=5)  # drain the executor
    assert len(harness.emulator.calls("views.publish")) == 1


def test_healthz_and_metrics(harness: Harness) -> None:
    publish(harness.deps, BOOK)
    churn(harness, "acme corp")
    health = httpx.get(f"{harness.url}/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    metrics = httpx.get(f"{harness.url}/metrics").text
    assert 'churnbot_requests_total{handler="command:/churn",outcome="ok"} 1.0' in metrics
    assert "churnbot_request_seconds_bucket" in metrics
    assert "churnbot_killswitch_on 0.0" in metrics
    assert SECRET not in metrics
