"""Block Kit renderers: every output is accepted by the Slack emulator's checks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.emulator import block_kit_problems, message_rejection, view_problems
from bot.render import (
    FEEDBACK_BUTTONS,
    AdminStatus,
    DigestContent,
    FeedbackKey,
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
    parse_feedback_action,
    parse_feedback_value,
    pick_list_blocks,
    trend_words,
)
from bot.render.text import MAX_SECTION_TEXT, SHORTENED, json_cost, plural, scores_age
from bot.state.killswitch import KillSwitchState
from bot.state.snapshots import SnapshotMeta
from models.cards import HEADER, HEALTHY_FLAG, CardCodec, codec_spec, slot_format
from models.packing import encode_value

SNAPSHOT = "20260105T060000-v3"
#: The clock of these tests, and when the last good scores of the banners were computed (the
#: Monday before: last week's data).
NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
LAST_WEEK = dt.datetime(2025, 12, 29, 6, 0, tzinfo=dt.UTC)
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
    """A stored card exactly as a reader gets it: a record decoded by the scoring codec."""
    arr = f"${12_000 + i:,}"
    codes = [f"r{k}" for k in range(len(reason_texts))] + ["nps"]
    codec = CardCodec(
        codec_spec(
            reasons={
                "codes": codes,
                "fields": [],
                "risk": [{"template": text} for text in reason_texts] + [None],
                "healthy": [None] * len(reason_texts) + [{"template": "NPS is up"}],
            },
            actions=[("exec_call", "Book an exec sponsor call", "usage fell", "CSM")],
            context=[("Segment", None), ("Plan", None), ("ARR", None), ("Renewal", None)],
            link={"column": None, "template": None, "fields": []},
            model_version="v3",
        )
    )
    slot = slot_format(len(codes))
    band = 2 if risk >= 0.6 else 1 if risk >= 0.3 else 0
    as_of = (date(2026, 1, 5) - date(1970, 1, 1)).days
    record = (
        HEADER.pack(as_of, 0, band, len(reason_texts) | HEALTHY_FLAG)
        + b"".join(slot.pack(k, 5_000) for k in range(len(reason_texts)))
        + slot.pack(len(reason_texts), -4_000)
        + b"".join(encode_value(v) for v in ("smb", "pro", arr, "2026-03-01"))
    )
    return codec.decode(
        record,
        account_id=f"A{i:05d}",
        account_name=name or f"Account {i}",
        owner="jane@example.com",
        segment="smb",
        risk=risk,
        previous_risk=None if change is None else risk - change,
    ) | {"change": change}


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
@pytest.mark.parametrize("banner", [None, fallback_banner(LAST_WEEK, NOW, "drift on logins")])
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
        FRESHNESS,
    ):
        assert expected in text
    assert "Model" not in text, "the model version is for admins, not on a CSM's card"
    if len(history) > 1:
        assert "Trend: risk 50% → 60% → 82% over the last 3 scores" in text
    elif history:
        assert "Trend: no trend yet (this is the first score)" in text
    else:
        assert "Trend: no history yet" in text
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
    usages = ("/churn ACCOUNT", "/churn mine", "/churn alerts off", "/churn alerts on")
    for usage in (*usages, "/churn optout", "/churn optin"):
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


def test_digest_parts_go_to_slack_as_the_json_text_of_their_blocks() -> None:
    """The sender hands slack-sdk the renderer's JSON text (no second walk or encoding); it
    must be exactly the blocks, and a message without kept text still sends its list."""
    messages = digest_messages(digest([make_card(i) for i in range(30)]))

    assert len(messages) > 1
    for message in messages:
        assert isinstance(message.blocks_arg, str)
        assert json.loads(message.blocks_arg) == message.blocks
    (empty,) = digest_messages(digest([]))
    assert empty.blocks_json is None
    assert empty.blocks_arg is empty.blocks


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
    banner = fallback_banner(LAST_WEEK, NOW, "live scores are paused: accuracy below the floor")
    assert banner == (
        "Using last week's data (scores as of Dec 29, 2025) — live scores are paused: "
        "accuracy below the floor"
    )

    (message,) = digest_messages(digest([make_card()], banner=banner))

    assert plain(message.blocks).count(f"⚠️ {banner}") == 1
    assert f"⚠️ {banner}" in message.text
    assert_accepted(message.text, message.blocks)


def test_absurd_banner_reason_is_marked_shortened() -> None:
    banner = fallback_banner(LAST_WEEK, NOW, "x" * 10_000)

    assert banner.endswith(SHORTENED)
    assert banner.startswith("Using last week's data (scores as of Dec 29, 2025) — xxx")
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
    home = home_view(user_cards=[card], status=None, banner=None, owner="jane@example.com")

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
    banner = fallback_banner(LAST_WEEK, NOW, '"<!channel>"\n' * 2_000)
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
    home = home_view(
        user_cards=cards, status=admin_status(on=True), banner=banner, owner='"' * 5_000
    )
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
    assert (
        "No account in the current scores belongs to jane@example.com. If some are yours, ask "
        "an admin to map your Slack user" in mrkdwn(empty)
    )
    assert "None of your accounts" not in mrkdwn(empty)


# --- escaping -------------------------------------------------------------------------------


def test_escape_mrkdwn() -> None:
    assert escape_mrkdwn("<!channel> A & B > C") == "&lt;!channel&gt; A &amp; B &gt; C"


def test_hostile_names_cannot_ping_or_link() -> None:
    card = make_card(name=HOSTILE, reason_texts=("<@U999> & <!here>",))
    outputs = [
        account_card_blocks(card, history=[], snapshot_id=SNAPSHOT, banner=None, freshness="f"),
        pick_list_blocks(HOSTILE, [card, make_card(1)]),
        no_match_blocks(HOSTILE, [HOSTILE]),
        home_view(user_cards=[card], status=None, banner=None, owner=HOSTILE)["blocks"],
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


# --- trend and labels -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "span", "expected"),
    [
        ([], None, "no history yet"),
        ([0.4], 7, "no trend yet (this is the first score)"),
        ([0.42, 0.61, 0.78], 21, "risk 42% → 61% → 78% over 3 weeks"),
        ([0.42, 0.61, 0.78], None, "risk 42% → 61% → 78% over the last 3 scores"),
        ([0.3, 0.3], 0, "risk 30% → 30% over the last 2 scores"),
        ([0.2, 0.25], 1, "risk 20% → 25% over 1 day"),
        ([0.2, 0.25, 0.3], 6, "risk 20% → 25% → 30% over 6 days"),
        ([0.9, 0.1], 120, "risk 90% → 10% over 4 months"),
        ([0.2, float("nan"), 0.4], 14, "risk 20% → 40% over 2 weeks"),
    ],
)
def test_the_trend_reads_as_words(values: list[float], span: int | None, expected: str) -> None:
    assert trend_words(values, span) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [(None, "new"), (0.0, "no change"), (0.001, "no change"), (0.05, "+5 pts"), (-0.02, "-2 pts")],
)
def test_change_label(change: float | None, expected: str) -> None:
    assert change_label(change) == expected


# --- feedback -------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", ["digest", "card"])
def test_feedback_buttons_carry_a_short_key_the_snapshot_resolves(surface: str) -> None:
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
        assert button["value"] == f"{surface[0]}|{SNAPSHOT}"
        key = parse_feedback_action({**button, "block_id": block["block_id"]})
        assert key == FeedbackKey("A00007", SNAPSHOT, surface)  # type: ignore[arg-type]
        assert isinstance(key, FeedbackKey)
        assert key.ref(card) == FeedbackRef(
            account_id="A00007",
            snapshot_id=SNAPSHOT,
            model_version="v3",
            risk=0.1235,
            action_rule="exec_call",
            surface=surface,  # type: ignore[arg-type]
        )


def test_accounts_share_one_set_of_buttons_and_each_account_id_is_still_checked() -> None:
    first = feedback_actions(make_card(1), snapshot_id=SNAPSHOT, surface="digest")
    second = feedback_actions(make_card(2), snapshot_id=SNAPSHOT, surface="digest")

    assert second["elements"] is first["elements"], "made once per snapshot and surface"
    value = f"d|{SNAPSHOT}"
    assert second == {
        "type": "actions",
        "block_id": "fb:A00002",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": label, "emoji": True},
                "action_id": action_id,
                "value": value,
            }
            for action_id, label in FEEDBACK_BUTTONS.items()
        ],
    }
    for bad in ("", "A" * 129, 7):
        card = make_card(3)
        card["account_id"] = bad
        with pytest.raises(ValueError, match="account id must be a string of 1 to 128"):
            feedback_actions(card, snapshot_id=SNAPSHOT, surface="digest")


def test_buttons_posted_before_short_keys_still_resolve() -> None:
    ref = FeedbackRef("A1", SNAPSHOT, "v3", 0.5, "exec_call", "digest")

    assert parse_feedback_action({"value": ref.to_value(), "block_id": "fb:A1"}) == ref


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"block_id": "fb:A1"}, "string of at most 2000"),
        ({"value": "x" * 2_001, "block_id": "fb:A1"}, "string of at most 2000"),
        ({"value": "", "block_id": "fb:A1"}, "surface letter"),
        ({"value": f"x|{SNAPSHOT}", "block_id": "fb:A1"}, "surface letter"),
        ({"value": "d|", "block_id": "fb:A1"}, "surface letter"),
        ({"value": "d|has space", "block_id": "fb:A1"}, "surface letter"),
        ({"value": f"d|{SNAPSHOT}"}, "block_id must be 'fb:'"),
        ({"value": f"d|{SNAPSHOT}", "block_id": "fb:"}, "block_id must be 'fb:'"),
        ({"value": f"d|{SNAPSHOT}", "block_id": "other"}, "block_id must be 'fb:'"),
        ({"value": f"d|{SNAPSHOT}", "block_id": "fb:A1\x1fhelpful"}, "printable characters"),
        ({"value": f"d|{SNAPSHOT}", "block_id": "fb:" + "A" * 129}, "1 to 128 printable"),
        ({"value": '{"a":"x"}', "block_id": "fb:A1"}, "JSON object with keys"),
    ],
)
def test_garbage_feedback_clicks_raise_value_error(action: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_feedback_action(action)


def test_snapshot_ids_that_cannot_be_a_key_are_refused() -> None:
    with pytest.raises(ValueError, match="'snapshot_id' parameter of feedback_actions"):
        feedback_actions(make_card(), snapshot_id="a b", surface="card")


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

    view = home_view(user_cards=cards, status=None, banner=None, owner="jane@example.com")

    assert view["type"] == "home"
    assert view_problems(view) == []
    text = mrkdwn(view["blocks"])
    assert "*Account 2*" in text
    assert "• Logins fell 40% in 30 days" in text
    assert "→ *Book an exec sponsor call*" in text
    assert "Kill switch" not in text


@pytest.mark.parametrize("on", [True, False])
def test_home_view_for_an_admin_shows_system_status(on: bool) -> None:
    banner = fallback_banner(LAST_WEEK, NOW, "drift on logins") if on else None

    view = home_view(
        user_cards=[make_card()], status=admin_status(on=on), banner=banner, owner="jane"
    )

    assert view_problems(view) == []
    text = mrkdwn(view["blocks"])
    assert "*Champion model:* v3" in text
    assert SNAPSHOT in text
    assert "✅ freshness: data is 1 day old" in text
    assert "#cs-east — Mon 09:00 Europe/Paris" in text
    if on:
        assert "🛑 ON — drift on logins" in text
        assert "_tripped by <@U123ADMIN> (health_check) at 2026-01-05 06:01 UTC_" in text
        assert "❌ drift: PSI 0.31 on logins &gt; 0.25" in text
        assert plain(view["blocks"]).count(f"⚠️ {banner}") == 1
    else:
        assert "*Kill switch:* off\n_last reset by <@U123ADMIN> at 2026-01-05 06:01 UTC_" in text


def test_home_view_stays_within_100_blocks() -> None:
    cards = [make_card(i) for i in range(500)]

    view = home_view(user_cards=cards, status=admin_status(on=True), banner="b", owner="jane")

    assert view_problems(view) == []
    assert len(view["blocks"]) <= 100
    assert "… and 480 more" in mrkdwn(view["blocks"])


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        (None, "I don't know which accounts are yours: ask an admin to map your Slack user"),
        ("ada@example.com", "No account in the current scores belongs to ada@example.com."),
    ],
)
def test_home_view_without_accounts_tells_how_to_get_mapped(
    owner: str | None, expected: str
) -> None:
    view = home_view(user_cards=[], status=None, banner=None, owner=owner)

    assert view_problems(view) == []
    text = mrkdwn(view["blocks"])
    assert expected in text
    assert "config/slack.yaml (owners)" in text
    assert "None of your accounts" not in text


def test_home_view_without_scores_says_nothing_about_accounts() -> None:
    view = home_view(user_cards=[], status=None, banner="no scores", owner="jane", scores=False)

    assert "belongs to" not in mrkdwn(view["blocks"])
    assert plain(view["blocks"]) == ["Your accounts at risk", "⚠️ no scores"]


# --- pick list ------------------------------------------------------------------------------


def test_pick_list_is_capped_at_10_and_says_how_many_more_and_how_to_narrow() -> None:
    matches = [make_card(i, name=f"Acme {i}") for i in range(15)]

    blocks = pick_list_blocks("acme", matches, more=80)

    assert_accepted("pick", blocks)
    buttons = [b["accessory"] for b in blocks if "accessory" in b]
    assert [b["value"] for b in buttons] == [f"A{i:05d}" for i in range(10)]
    assert {b["action_id"] for b in buttons} == {"show_account"}
    assert {b["text"]["text"] for b in buttons} == {"Show"}
    text = mrkdwn(blocks)
    assert text.startswith("Several accounts match 'acme', riskiest first:")
    assert "*Acme 9* · `A00009` · 🔴 82% high" in text
    assert "Acme 10" not in text
    assert (
        "… and 85 more. To narrow the list, type more of the name, or the account id: "
        "`/churn ACCOUNT`" in text
    )


def test_pick_list_says_at_least_when_the_candidates_were_capped() -> None:
    blocks = pick_list_blocks("a", [make_card(i) for i in range(10)], more=190, at_least=True)

    assert "… and at least 190 more." in mrkdwn(blocks)


def test_pick_list_carries_the_banner() -> None:
    banner = fallback_banner(LAST_WEEK, NOW, "live scores are paused: drift")

    blocks = pick_list_blocks("acme", [make_card(0), make_card(1)], banner=banner)

    assert_accepted("pick", blocks)
    assert plain(blocks[0]) == [f"⚠️ {banner}"]


# --- how old the scores are -----------------------------------------------------------------

MONDAY = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("scored_at", "expected"),
    [
        (MONDAY.replace(hour=6), "Using the last good scores, from this morning"),
        (MONDAY.replace(hour=13), "Using the last good scores, from this afternoon"),
        (MONDAY.replace(hour=19), "Using the last good scores, from this evening"),
        (MONDAY - dt.timedelta(hours=20), "Using the last good scores, from yesterday"),
        (MONDAY - dt.timedelta(days=2), "Using the last good scores, from Nov 28"),
        (MONDAY - dt.timedelta(days=6), "Using the last good scores, from Nov 24"),
        (MONDAY - dt.timedelta(days=7), "Using last week's data (scores as of Nov 23)"),
        (MONDAY - dt.timedelta(days=13), "Using last week's data (scores as of Nov 17)"),
        (MONDAY - dt.timedelta(days=14), "Using the last good scores, from Nov 16"),
        (MONDAY - dt.timedelta(days=365), "Using the last good scores, from Nov 30, 2025"),
    ],
    ids=[
        "morning",
        "afternoon",
        "evening",
        "yesterday",
        "2-days",
        "6-days",
        "7-days",
        "13-days",
        "14-days",
        "a-year",
    ],
)
def test_scores_age_says_how_old_the_scores_really_are(
    scored_at: dt.datetime, expected: str
) -> None:
    assert scores_age(scored_at, MONDAY) == expected


def test_scores_age_counts_days_in_the_clocks_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    # 23:30 UTC on Sunday is already Monday morning in Paris.
    late = dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)
    assert scores_age(late, MONDAY.astimezone(paris)) == (
        "Using the last good scores, from this morning"
    )


def test_scores_age_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="'scored_at' parameter of scores_age must be an aware"):
        scores_age(dt.datetime(2026, 11, 30), MONDAY)


@pytest.mark.parametrize(("count", "expected"), [(0, "0 scores"), (1, "1 score"), (2, "2 scores")])
def test_plural(count: int, expected: str) -> None:
    assert plural(count, "score") == expected


# --- what the digest says to a CSM ----------------------------------------------------------


def test_digest_context_line_speaks_to_csms_without_the_model_version() -> None:
    content = digest(
        [make_card()],
        segments=("smb", "mid_market", "enterprise"),
    )

    (message,) = digest_messages(content)

    context_line = mrkdwn(message.blocks[1])
    assert context_line == f"SMB, mid-market and enterprise accounts · {FRESHNESS}"
    assert "v3" not in context_line
    assert "segment" not in context_line
    assert message.text == (
        "Churn risk — week 2: 1 account at risk (SMB, mid-market and enterprise accounts)"
    )


def test_digest_mentions_a_mapped_owner_once_and_others_on_each_account() -> None:
    mine = digest(
        [make_card(0), make_card(1)],
        owners=("jane@example.com",),
        owner_users={"jane@example.com": "U0JANE0001"},
    )
    (message,) = digest_messages(mine)
    assert mrkdwn(message.blocks[1]).startswith("Accounts of <@U0JANE0001> · ")
    assert "jane@example.com" not in mrkdwn(message.blocks)

    cards = [make_card(0), {**make_card(1), "owner": "omar@example.com"}]
    team = digest(
        cards,
        segments=("enterprise",),
        owner_users={"jane@example.com": "U0JANE0001", "bad": "<!channel>"},
    )
    (message,) = digest_messages(team)
    text = mrkdwn(message.blocks)
    assert "*Account 0*  🔴 82% high (+5 pts) · <@U0JANE0001>" in text
    assert "*Account 1*  🔴 82% high (+5 pts) · omar@example.com" in text
    assert_accepted(message.text, message.blocks)


def test_digest_shows_each_actions_reason_and_links_the_crm_record() -> None:
    linked = {**make_card(0), "url": "https://crm.example.com/a?id=1&tab=x|y"}
    unsafe = {**make_card(1), "url": "javascript:alert(1)"}

    (message,) = digest_messages(digest([linked, unsafe, make_card(2)]))

    assert_accepted(message.text, message.blocks)
    text = mrkdwn(message.blocks)
    assert "*<https://crm.example.com/a?id=1&amp;tab=x%7Cy|Account 0>*  🔴 82%" in text
    assert "\n*Account 1*  🔴 82%" in text
    assert text.count("_why: usage fell_") == 3


def test_a_long_url_is_left_out_never_cut() -> None:
    card = {**make_card(0, name="Z" * 20_000), "url": "https://crm.example.com/" + "a" * 470}

    (message,) = digest_messages(digest([card]))

    assert_accepted(message.text, message.blocks)
    text = mrkdwn(message.blocks)
    assert "<https://crm.example.com/" + "a" * 470 + "|Z" in text
    too_long = {**card, "url": "https://crm.example.com/" + "a" * 480}
    assert "crm.example.com" not in mrkdwn(digest_messages(digest([too_long]))[0].blocks)
