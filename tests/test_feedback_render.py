"""The "who answered what" line under an account, and what it does to a message's size."""

from __future__ import annotations

from typing import Any

from bot.emulator import block_kit_problems
from bot.feedback.render import choice_line, with_choices
from bot.render import DigestContent, digest_messages
from tests.slack_harness import make_card


def digest(n: int) -> list[dict[str, Any]]:
    cards = [make_card(f"ACC-{i:06d}", f"Account {i}", 0.9 - i / 100) for i in range(n)]
    content = DigestContent("Churn risk", "#cs", "Data as of 2026-11-23", None, cards, "snap-1")
    return digest_messages(content)[0].blocks


def test_names_in_a_fixed_order_and_counts_beyond_five() -> None:
    users = [f"U0USER000{i}" for i in range(7)]
    line = choice_line({"action_done": ["U0A01"], "helpful": [*users, None]})
    assert line == (
        "👍 <@U0USER0000>, <@U0USER0001>, <@U0USER0002>, <@U0USER0003>, <@U0USER0004> "
        "and 3 more · ✅ <@U0A01>"
    )
    assert choice_line({"not_helpful": [None, None]}) == "👎 2"
    assert choice_line({"helpful": ["<!channel>"]}) == "👍 1", "only real user ids become mentions"


def test_the_line_takes_the_dividers_place_and_is_refreshed_not_repeated() -> None:
    blocks = digest(3)
    once = with_choices(blocks, {"ACC-000001": {"helpful": ["U0A01"]}})
    assert len(once) == len(blocks)
    twice = with_choices(once, {"ACC-000001": {"helpful": ["U0A01", "U0B02"]}})
    ids = [b.get("block_id") for b in twice]
    assert ids.count("fbc:ACC-000001") == 1
    assert ids.index("fbc:ACC-000001") == ids.index("fb:ACC-000001") + 1
    assert len(twice) == len(blocks)
    assert block_kit_problems(twice) == []


def test_a_full_digest_falls_back_to_counts_rather_than_break_slacks_limit() -> None:
    blocks = digest(16)
    crowd = [f"U0USER{i:04d}" for i in range(5)]
    kinds = ("helpful", "not_helpful", "correction", "action_done")
    everyone = {f"ACC-{i:06d}": dict.fromkeys(kinds, crowd) for i in range(16)}
    shown = with_choices(blocks, everyone)
    assert block_kit_problems(shown) == []
    assert "👍 5 · 👎 5 · ✏️ 5 · ✅ 5" in str(shown)


def test_a_card_gains_its_line_after_the_buttons() -> None:
    card = [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}, digest(1)[3]]
    shown = with_choices(card, {"ACC-000000": {"helpful": ["U0A01"]}})
    assert [b.get("block_id") for b in shown][-2:] == ["fb:ACC-000000", "fbc:ACC-000000"]
