"""Block Kit renderers: every output is accepted by the Slack emulator's checks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

import pytest

from bot.emulator import block_kit_problems, message_rejection, view_problems
from bot.render import (
    FEEDBACK_BUTTONS,
    AdminStatus,
    DigestContent,
    FeedbackRef,
    account_card_blocks,
    change_label,
    digest_messages,
    escape_mrkdwn,
    fallback_banner,
    feedback_actions,
    help_blocks,
    home_view,
    mine_blocks,
    no_data_message,
    no_match_blocks,
    parse_feedback_value,
    pick_list_blocks,
    sparkline,
)
from bot.render.text import MAX_SECTION_TEXT, SHORTENED, json_cost
from bot.state.killswitch import KillSwitchState
from bot.state.snapshots import SnapshotMeta
from models.playbook import Recommendation
from models.reasons import Reason
from models.scoring import AccountScore

SNAPSHOT = "20260105T060000-v3"
HOSTILE = "<!channel> Evil & Co <https://evil.example|click>"
FRESHNESS = "scores as of 2026-01-05, refreshed daily"


def make_card(
    i: int = 0,
    *,
    name: str | None = None,
    reason_texts: tuple[str, ...] = ("Logins fell 40% in 30 days", "3 open P1 tickets"),
    risk: float = 0.82,
    change: float | None = 0.05,
) -> dict[str, Any]:
    """A stored card exactly as the publisher writes it (to_card + change keys)."""
    score = AccountScore(
        account_id=f"A{i:05d}",
        account_name=name or f"Account {i}",
        owner="jane@example.com",
        segment="smb",
        plan="pro",
        industry=None,
        arr=12_000.0 + i,
        as_of=date(2026, 1, 5),
        renewal_date=date(2026, 3, 1),
        risk=risk,
        band="high" if risk >= 0.6 else "medium" if risk >= 0.3 else "low",
        reasons=tuple(Reason(f"r{k}", text, 0.5) for k, text in enumerate(reason_texts)),
        healthy=Reason("nps", "NPS is up", -0.4),
        action=Recommendation(
            rule="exec_call", action="Book an exec sponsor call", why="usage fell", owner="CSM"
        ),
        model_version="v3",
    )
    card = score.to_card()
    card["change"] = change
    card["previous_risk"] = None if change is None else risk - change
    return card


def digest(cards: list[dict[str, Any]], **overrides: Any) -> DigestContent:
    fields: dict[str, Any] = {
        "title": "Churn risk — week 2",
        "channel_label": "#cs-east",
        "freshness": FRESHNESS,
        "banner": None,
        "cards": cards,
        "snapshot_id": SNAPSHOT,
        "new_ids": set(),
        "moved_ids": set(),
    }
    return DigestContent(**{**fields, **overrides})


def admin_status(*, on: bool) -> AdminStatus:
    meta = SnapshotMeta(
        snapshot_id=SNAPSHOT,
        as_of="2026-01-05",
        model_version="v3",
        created_at="2026-01-05T06:00:00+00:00",
        healthy=not on,
        n_accounts=1200,
        health=[
            {"name": "freshness", "ok": True, "message": "data is 1 day old"},
            {"name": "drift", "ok": not on, "message": "PSI 0.31 on logins > 0.25"},
        ],
    )
    switch = KillSwitchState(
        on=on,
        reason="drift on logins" if on else "",
        who="U123ADMIN",
        when="2026-01-05T06:01:00+00:00",
        source="health_check" if on else "admin",
    )
    return AdminStatus(
        champion_model="v3",
        last_run=meta,
        kill_switch=switch,
        next_digests=[("#cs-east", "Mon 09:00 Europe/Paris"), ("#cs-west", "Mon 09:00 PT")],
    )


def texts(blocks: Any) -> Iterator[Mapping[str, Any]]:
    """Every text object anywhere in ``blocks``."""
    if isinstance(blocks, Mapping):
        if blocks.get("type") in ("mrkdwn", "plain_text"):
            yield blocks
        for value in blocks.values():
            yield from texts(value)
    elif isinstance(blocks, list):
        for item in blocks:
            yield from texts(item)


def mrkdwn(blocks: Any) -> str:
    return "\n".join(t["text"] for t in texts(blocks) if t["type"] == "mrkdwn")


def plain(blocks: Any) -> list[str]:
    return [t["text"] for t in texts(blocks) if t["type"] == "plain_text"]


def assert_accepted(text: str, blocks: list[dict[str, Any]]) -> None:
    assert block_kit_problems(blocks) == []
    assert message_rejection(text=text, blocks=blocks) is None


# --- every renderer's output is accepted ----------------------------------------------------


@pytest.mark.parametrize("history", [[], [0.8], [0.5, 0.6, 0.82]])
@pytest.mark.parametrize("banner", [None, fallback_banner("2025-12-29", "drift on logins")])
def test_account_card_is_accepted_and_mirrors_the_terminal(
    history: list[float], banner: str | None
) -> None:
    card = make_card()
    blocks = account_card_blocks(
        card, history=history, snapshot_id=SNAPSHOT, banner=banner, freshness=FRESHNESS
    )

    assert_accepted("Account 0", blocks)
    text = mrkdwn(blocks)
    for expected in (
        "82%",
        "high",
        "🔴",
        "+5 pts",
        "• Logins fell 40% in 30 days",
        "NPS is up",
        "Book an exec sponsor call",
        "usage fell",
        "$12,000",
        "jane@example.com",
        "2026-03-01",
        "Model v3",
        FRESHNESS,
    ):
        assert expected in text
    assert (sparkline(history) in text) if history else ("no history yet" in text)
    assert blocks[-1]["block_id"] == "fb:A00000"
    assert (plain(blocks[0]) == [f"⚠️ {banner}"]) if banner else blocks[0]["type"] == "header"


def test_small_answers_are_accepted() -> None:
    matches = [make_card(i, risk=0.5) for i in range(3)]
    for blocks in (
        pick_list_blocks("acme", matches),
        no_match_blocks("acm", ["Acme Corp", "Acme Labs"]),
        no_match_blocks("zzz", []),
        help_blocks(),
        [feedback_actions(make_card(), snapshot_id=SNAPSHOT, surface="digest")],
    ):
        assert_accepted("answer", blocks)


def test_help_names_every_subcommand() -> None:
    text = mrkdwn(help_blocks())
    for usage in ("/churn ACCOUNT", "/churn mine", "/churn optout", "/churn optin"):
        assert usage in text


def test_no_match_offers_suggestions() -> None:
    text = mrkdwn(no_match_blocks("acm", ["Acme Corp", "Acme Labs"]))
    assert "No account matches 'acm'. Did you mean: *Acme Corp*, *Acme Labs*?" in text


# --- digest ---------------------------------------------------------------------------------


def test_digest_of_60_accounts_splits_in_order_within_limits() -> None:
    cards = [make_card(i, risk=0.9 - i / 100) for i in range(60)]
    content = digest(cards, new_ids={"A00003"}, moved_ids={"A00007"})

    messages = digest_messages(content)

    total = len(messages)
    assert total > 1
    seen = []
    for number, message in enumerate(messages, start=1):
        assert_accepted(message.text, message.blocks)
        assert len(message.blocks) <= 50
        assert len(json.dumps(message.blocks, separators=(",", ":"), ensure_ascii=False)) <= 12_000
        assert f"part {number} of {total}" in message.text
        if number > 1:
            assert message.blocks[0]["type"] == "context"
            assert mrkdwn(message.blocks[0]).startswith(f"(continued, {number} of {total})")
        seen += [b["block_id"] for b in message.blocks if b.get("block_id", "").startswith("fb:")]
    assert seen == [card_id(card) for card in cards]
    assert messages[0].blocks[0]["type"] == "header"
    assert FRESHNESS in mrkdwn(messages[0].blocks[1])
    everything = "\n".join(mrkdwn(m.blocks) for m in messages)
    assert "🆕 *Account 3*" in everything
    assert "⚡ *Account 7*" in everything


def card_id(card: Mapping[str, Any]) -> str:
    return f"fb:{card['account_id']}"


def test_digest_splits_on_block_count_too() -> None:
    cards = [make_card(i) for i in range(10)]

    messages = digest_messages(digest(cards), max_blocks=10, max_chars=12_000)

    assert all(len(m.blocks) <= 10 for m in messages)
    ids = [b["block_id"] for m in messages for b in m.blocks if "block_id" in b]
    assert ids == [card_id(card) for card in cards]


def test_single_message_digest_says_nothing_about_parts() -> None:
    (message,) = digest_messages(digest([make_card()]))

    assert message.text == "Churn risk — week 2: 1 account at risk (#cs-east)"
    assert_accepted(message.text, message.blocks)


def test_digest_banner_is_shown_word_for_word() -> None:
    banner = fallback_banner("2025-12-29", "accuracy below the floor")
    assert banner == (
        "Using last week's data (scores as of 2025-12-29) — live scores are paused: "
        "accuracy below the floor"
    )

    (message,) = digest_messages(digest([make_card()], banner=banner))

    assert plain(message.blocks).count(f"⚠️ {banner}") == 1
    assert "last week's data" in message.text
    assert_accepted(message.text, message.blocks)


def test_absurd_banner_reason_is_marked_shortened() -> None:
    banner = fallback_banner("2025-12-29", "x" * 10_000)

    assert banner.endswith(SHORTENED)
    assert banner.startswith("Using last week's data (scores as of 2025-12-29)")
    blocks = account_card_blocks(
        make_card(), history=[], snapshot_id=SNAPSHOT, banner=banner, freshness=FRESHNESS
    )
    assert_accepted("card", blocks)


def test_empty_digest_says_the_bot_is_alive() -> None:
    (message,) = digest_messages(digest([]))

    text = mrkdwn(message.blocks)
    assert "No account is above the risk threshold this week" in text
    assert "alive" in text
    assert FRESHNESS in text
    assert "no account above the risk threshold" in message.text
    assert_accepted(message.text, message.blocks)


def test_no_data_message_is_honest() -> None:
    message = no_data_message("model missing")
    assert "model missing" in message
    assert "no earlier healthy snapshot" in message


def test_digest_limits_beyond_slack_are_refused() -> None:
    with pytest.raises(ValueError, match="'max_blocks' parameter of digest_messages"):
        digest_messages(digest([]), max_blocks=51)
    with pytest.raises(ValueError, match="'max_chars' parameter of digest_messages"):
        digest_messages(digest([]), max_chars=20_000)


def test_limits_too_small_for_one_account_are_refused_not_overrun() -> None:
    with pytest.raises(ValueError, match="do not fit one message within max_blocks=3"):
        digest_messages(digest([make_card()]), max_blocks=3)


# --- never truncate silently ----------------------------------------------------------------


def test_absurd_reason_is_shortened_with_a_marker_and_the_action_kept() -> None:
    cards = [make_card(i, reason_texts=("y" * 5_000, "normal reason")) for i in range(8)]

    messages = digest_messages(digest(cards))

    for message in messages:
        assert_accepted(message.text, message.blocks)
    sections = [
        b
        for m in messages
        for b in m.blocks
        if b["type"] == "section" and b["text"]["type"] == "mrkdwn"
    ]
    assert len(sections) == 8
    for block in sections:
        assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
        assert SHORTENED in block["text"]["text"]
        assert "normal reason" in block["text"]["text"]
        assert "→ *Book an exec sponsor call* (CSM)" in block["text"]["text"]


def test_long_name_header_is_cut_but_the_section_has_it_whole() -> None:
    name = "Very Long Holdings " * 10  # 190 characters
    blocks = account_card_blocks(
        make_card(name=name), history=[], snapshot_id=SNAPSHOT, banner=None, freshness=FRESHNESS
    )

    assert_accepted("card", blocks)
    header_text = blocks[0]["text"]["text"]
    assert len(header_text) == 150
    assert header_text.endswith("…")
    assert name in mrkdwn(blocks)


def test_absurd_name_is_marked_shortened_everywhere() -> None:
    card = make_card(name="Z" * 20_000)
    card_blocks = account_card_blocks(
        card, history=[0.1], snapshot_id=SNAPSHOT, banner=None, freshness=FRESHNESS
    )
    (message,) = digest_messages(digest([card]))
    home = home_view(user_cards=[card], status=None, banner=None)

    for blocks in (card_blocks, message.blocks, pick_list_blocks("z", [card])):
        assert_accepted("x", blocks)
        assert SHORTENED in mrkdwn(blocks)
    assert view_problems(home) == []
    assert SHORTENED in mrkdwn(home["blocks"])


def absurd_card(i: int) -> dict[str, Any]:
    """Every text field as long and as expensive in JSON as it can get (quotes, newlines)."""
    card = make_card(
        i,
        name='"<Evil>\n' * 3_000,
        reason_texts=('"\\' * 4_000,) * 7,
    )
    card["account_id"] = f'{i:03d}"' * 32
    card["owner"] = card["segment"] = card["plan"] = '"\n' * 3_000
    card["healthy"] = {"code": "x", "text": '"' * 9_000, "impact": -1.0}
    card["action"] = {
        "rule": "r" * 100,
        "action": '"' * 9_000,
        "why": "\n" * 9_000,
        "owner": "&" * 99,
    }
    card["model_version"] = "v" * 60
    return card


def test_absurd_data_never_makes_a_message_slack_rejects() -> None:
    cards = [absurd_card(i) for i in range(12)]
    banner = fallback_banner("2025-12-29", '"<!channel>"\n' * 2_000)
    freshness = '"\n' * 5_000

    answers = [
        account_card_blocks(
            cards[0], history=[0.1, 0.9], snapshot_id=SNAPSHOT, banner=banner, freshness=freshness
        ),
        pick_list_blocks('"\n' * 5_000, cards),
        no_match_blocks('"\n' * 5_000, [c["account_name"] for c in cards]),
        mine_blocks('"' * 5_000, cards, banner=banner, freshness=freshness),
    ]
    answers += [
        m.blocks for m in digest_messages(digest(cards, banner=banner, freshness=freshness))
    ]

    for blocks in answers:
        assert_accepted("x", blocks)
        assert SHORTENED in mrkdwn(blocks)
    home = home_view(user_cards=cards, status=admin_status(on=True), banner=banner)
    assert view_problems(home) == []


@pytest.mark.parametrize(
    "text", ["", "plain", '"quoted"', "back\\slash", "a\nb\tc\x01\x1f", "émoji 🔴"]
)
def test_json_cost_is_what_compact_json_takes(text: str) -> None:
    assert json_cost(text) == len(json.dumps(text, ensure_ascii=False)) - 2


# --- /churn mine ----------------------------------------------------------------------------


def test_mine_lists_the_owners_accounts_with_show_buttons() -> None:
    cards = [make_card(i) for i in range(12)]

    blocks = mine_blocks("jane@example.com", cards, banner=None, freshness=FRESHNESS)

    assert_accepted("mine", blocks)
    assert [b["accessory"]["value"] for b in blocks if "accessory" in b] == [
        f"A{i:05d}" for i in range(10)
    ]
    text = mrkdwn(blocks)
    assert "jane@example.com · " + FRESHNESS in text
    assert "… and 2 more" in text
    empty = mine_blocks("jane@example.com", [], banner=None, freshness=FRESHNESS)
    assert "None of your accounts" in mrkdwn(empty)


# --- escaping -------------------------------------------------------------------------------


def test_escape_mrkdwn() -> None:
    assert escape_mrkdwn("<!channel> A & B > C") == "&lt;!channel&gt; A &amp; B &gt; C"


def test_hostile_names_cannot_ping_or_link() -> None:
    card = make_card(name=HOSTILE, reason_texts=("<@U999> & <!here>",))
    outputs = [
        account_card_blocks(card, history=[], snapshot_id=SNAPSHOT, banner=None, freshness="f"),
        pick_list_blocks(HOSTILE, [card, make_card(1)]),
        no_match_blocks(HOSTILE, [HOSTILE]),
        home_view(user_cards=[card], status=None, banner=None)["blocks"],
    ]
    message = digest_messages(
        digest([card], title=HOSTILE, channel_label="<#C1>", freshness="<!everyone>")
    )[0]
    outputs.append(message.blocks)

    for blocks in outputs:
        text = mrkdwn(blocks)
        assert "<" not in text
        assert ">" not in text.replace("&gt;", "")
        assert "&lt;!channel&gt; Evil &amp; Co" in text
    assert "<" not in message.text


def test_shortening_never_splits_an_entity() -> None:
    card = make_card(reason_texts=("&" * 4_000,))
    (message,) = digest_messages(digest([card]))

    text = mrkdwn(message.blocks)
    assert "&amp" + SHORTENED not in text
    assert f"&amp;{SHORTENED}" in text


# --- sparkline and labels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], ""),
        ([0.4], "▄"),
        ([0.3, 0.3, 0.3], "▄▄▄"),
        ([0.0, 1.0], "▁█"),
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], "▁▂▃▄▅▆▇█"),
        ([0.9, 0.5, 0.1], "█▅▁"),
        ([0.2, float("nan"), 0.4], "▁█"),
    ],
)
def test_sparkline(values: list[float], expected: str) -> None:
    assert sparkline(values) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [(None, "new"), (0.0, "no change"), (0.001, "no change"), (0.05, "+5 pts"), (-0.02, "-2 pts")],
)
def test_change_label(change: float | None, expected: str) -> None:
    assert change_label(change) == expected


# --- feedback -------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", ["digest", "card"])
def test_feedback_buttons_round_trip(surface: str) -> None:
    card = make_card(7, risk=0.123456)

    block = feedback_actions(card, snapshot_id=SNAPSHOT, surface=surface)  # type: ignore[arg-type]

    assert block["block_id"] == "fb:A00007"
    assert [b["action_id"] for b in block["elements"]] == list(FEEDBACK_BUTTONS)
    assert [b["text"]["text"] for b in block["elements"]] == [
        "👍 Helpful",
        "👎 Not helpful",
        "Correct…",
        "✅ Action done",
    ]
    for button in block["elements"]:
        assert len(button["value"]) < 200
        assert parse_feedback_value(button["value"]) == FeedbackRef(
            account_id="A00007",
            snapshot_id=SNAPSHOT,
            model_version="v3",
            risk=0.1235,
            action_rule="exec_call",
            surface=surface,  # type: ignore[arg-type]
        )


def test_feedback_value_is_bounded() -> None:
    card = make_card()
    card["action"]["rule"] = "r" * 3_000

    with pytest.raises(ValueError, match="at most 500 characters of JSON"):
        feedback_actions(card, snapshot_id=SNAPSHOT, surface="card")


def test_account_ids_too_long_for_a_button_are_refused() -> None:
    card = make_card()
    card["account_id"] = "A" * 129

    with pytest.raises(ValueError, match="account id must be a string of 1 to 128"):
        feedback_actions(card, snapshot_id=SNAPSHOT, surface="card")
    with pytest.raises(ValueError, match="account id must be a string of 1 to 128"):
        pick_list_blocks("a", [card])


GOOD = {"a": "A1", "s": SNAPSHOT, "m": "v3", "r": 0.5, "act": "exec_call", "f": "digest"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be JSON"),
        ("not json", "must be JSON"),
        (json.dumps(GOOD)[:-5], "must be JSON"),
        ("[" * 1_500, "must be JSON"),
        ("x" * 2_001, "at most 2000 characters"),
        ("[]", "JSON object with keys"),
        ("null", "JSON object with keys"),
        (json.dumps({**GOOD, "admin": True}), "JSON object with keys"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "m"}), "JSON object with keys"),
        (json.dumps({**GOOD, "a": ""}), "'a' field"),
        (json.dumps({**GOOD, "s": 12}), "'s' field"),
        (json.dumps({**GOOD, "r": 2}), "'r' field"),
        (json.dumps({**GOOD, "r": True}), "'r' field"),
        (json.dumps({**GOOD, "r": "0.5"}), "'r' field"),
        ('{"a":"A1","s":"x","m":"v3","r":NaN,"act":"x","f":"card"}', "'r' field"),
        (json.dumps({**GOOD, "f": "dm"}), "'f' field"),
    ],
)
def test_garbage_feedback_values_raise_value_error(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_feedback_value(value)


# --- App Home -------------------------------------------------------------------------------


def test_home_view_for_a_csm_has_no_status() -> None:
    cards = [make_card(i) for i in range(3)]

    view = home_view(user_cards=cards, status=None, banner=None)

    assert view["type"] == "home"
    assert view_problems(view) == []
    text = mrkdwn(view["blocks"])
    assert "*Account 2*" in text
    assert "• Logins fell 40% in 30 days" in text
    assert "→ *Book an exec sponsor call*" in text
    assert "Kill switch" not in text


@pytest.mark.parametrize("on", [True, False])
def test_home_view_for_an_admin_shows_system_status(on: bool) -> None:
    banner = fallback_banner("2025-12-29", "drift on logins") if on else None

    view = home_view(user_cards=[make_card()], status=admin_status(on=on), banner=banner)

    assert view_problems(view) == []
    text = mrkdwn(view["blocks"])
    assert "*Champion model:* v3" in text
    assert SNAPSHOT in text
    assert "✅ freshness: data is 1 day old" in text
    assert "#cs-east — Mon 09:00 Europe/Paris" in text
    if on:
        assert "🛑 ON — drift on logins" in text
        assert "U123ADMIN" in text
        assert "❌ drift: PSI 0.31 on logins &gt; 0.25" in text
        assert plain(view["blocks"]).count(f"⚠️ {banner}") == 1
    else:
        assert "*Kill switch:* off" in text


def test_home_view_stays_within_100_blocks() -> None:
    cards = [make_card(i) for i in range(500)]

    view = home_view(user_cards=cards, status=admin_status(on=True), banner="b")

    assert view_problems(view) == []
    assert len(view["blocks"]) <= 100
    assert "… and 480 more" in mrkdwn(view["blocks"])


def test_home_view_without_accounts_says_so() -> None:
    view = home_view(user_cards=[], status=None, banner=None)

    assert view_problems(view) == []
    assert "None of your accounts" in mrkdwn(view["blocks"])


# --- pick list ------------------------------------------------------------------------------


def test_pick_list_is_capped_at_10_and_says_how_many_more() -> None:
    matches = [make_card(i, name=f"Acme {i}") for i in range(15)]

    blocks = pick_list_blocks("acme", matches)

    assert_accepted("pick", blocks)
    buttons = [b["accessory"] for b in blocks if "accessory" in b]
    assert [b["value"] for b in buttons] == [f"A{i:05d}" for i in range(10)]
    assert {b["action_id"] for b in buttons} == {"show_account"}
    assert {b["text"]["text"] for b in buttons} == {"Show"}
    text = mrkdwn(blocks)
    assert text.startswith("Several accounts match 'acme':")
    assert "*Acme 9* · `A00009` · 🔴 82% high" in text
    assert "Acme 10" not in text
    assert "… and 5 more" in text
