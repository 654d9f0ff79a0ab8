"""The scheduled digest as a CSM reads it, posted through the real app to the emulator.

An admin's signed ``/churn-admin digest now CHANNEL`` goes into the real app, which composes
the digest from the snapshot in the real Redis and posts it to the emulator's channel through
the same poster the worker uses; the tests read what reached the channel.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from bot.emulator import block_kit_problems, message_rejection
from bot.render.digest import MAX_BLOCKS_JSON, MAX_MESSAGE_BLOCKS
from tests.slack_harness import ADMIN, CSM, NOW, Harness, make_card, publish
from tests.test_e2e_churn import texts_of
from tests.test_track_record_e2e import old_flags

EAST = "C0CSEAST01"
ENTERPRISE = "C0ENTERPR1"
MARIA = "maria.lopez@example.com"
OMAR = "omar.haddad@example.com"
#: Three reasons of the length the bundled book's reasons have.
REASONS = [
    {"code": "escalations", "text": "5 open escalations, oldest 68 days", "impact": 2.15},
    {"code": "low_seat_utilisation", "text": "Only 9 of 26 seats used (35%)", "impact": 1.35},
    {"code": "renewal", "text": "Renewal in 49 days (Jan 11)", "impact": 1.25},
]


def realistic_book(h: Harness, n: int, **extra: Any) -> list[dict[str, Any]]:
    """``n`` accounts as the publisher writes them, with the playbook's wordiest actions, three
    reasons, a CRM link and a context line each: a digest at least as large as a real one."""
    playbook = h.deps.settings.playbook
    wordiest = sorted(
        [*playbook.rules, playbook.default], key=lambda rule: -len(rule.action + rule.why)
    )[:3]
    cards = []
    for i in range(n):
        rule = wordiest[i % len(wordiest)]
        account_id = f"ACC-{i:06d}"
        cards.append(
            make_card(
                account_id,
                f"Northwind Apparel Holdings {i}",
                round(0.92 - i * 0.03, 4),
                reasons=REASONS,
                action={
                    "rule": rule.name,
                    "action": rule.action,
                    "why": rule.why,
                    "owner": rule.owner,
                },
                url=f"https://crm.example.com/accounts/{account_id}",
                context=[["Plan", "growth"], ["ARR", "$16,232"], ["Renewal", "2027-01-11"]],
                **extra,
            )
        )
    return cards


def post_digest(h: Harness, name: str, channel: str) -> list[dict[str, Any]]:
    """Post digest ``name`` now, as an admin asks for it; the messages that reached the
    channel."""
    response = h.sender.command("/churn-admin", f"digest now {name}", user_id=ADMIN)
    assert response.status_code == 200, response.text
    h.emulator.wait_for(lambda call: call.method == "chat.postMessage", timeout=10)
    h.deps.background.submit(lambda: None).result(timeout=10)  # the poster ran to its end
    return h.emulator.history(channel)


def mrkdwn(node: object) -> str:
    """Every mrkdwn text in ``node``, one after the other on its own lines."""
    return "\n".join(texts_of(node, "mrkdwn"))


def size(blocks: list[dict[str, Any]]) -> int:
    return len(json.dumps(blocks, separators=(",", ":"), ensure_ascii=False))


def test_the_default_digest_is_one_message_within_slacks_limits(harness: Harness) -> None:
    publish(harness.deps, realistic_book(harness, 12))

    [message] = post_digest(harness, "cs-east", EAST)

    blocks = message["blocks"]
    assert message_rejection(text=message["text"], blocks=blocks) is None
    assert block_kit_problems(blocks) == []
    accounts = [b["block_id"] for b in blocks if b.get("block_id", "").startswith("fb:")]
    assert accounts == [f"fb:ACC-{i:06d}" for i in range(10)], "the default 10, in one message"
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    assert size(blocks) <= 12_000 < MAX_BLOCKS_JSON, "packed with room under Slack's limit"
    values = {e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]}
    assert max(len(value) for value in values) <= 40
    assert "part 1 of" not in message["text"]


def test_the_digest_speaks_to_csms(harness: Harness) -> None:
    publish(harness.deps, realistic_book(harness, 12))

    [message] = post_digest(harness, "cs-east", EAST)

    text = mrkdwn(message["blocks"])
    context_line = mrkdwn(message["blocks"][1])
    assert context_line == (
        f"Accounts of <@{CSM}> · Data as of 2026-11-23 · scored 2026-11-23 09:00 UTC"
    )
    assert "20261123-abcdef0123" not in text, "the model version is for admins"
    assert MARIA not in text, "Maria is mentioned, not shown as an email"
    assert message["text"].endswith(f": 10 accounts at risk (Accounts of <@{CSM}>)")
    for card in realistic_book(harness, 10):
        assert f"_why: {card['action']['why']}_" in text
        assert f"*<{card['url']}|{card['account_name']}>*" in text


def test_a_digest_of_several_owners_names_each_accounts_owner(harness: Harness) -> None:
    book = realistic_book(harness, 4, segment="enterprise")
    book[1]["owner"] = book[3]["owner"] = OMAR
    publish(harness.deps, book)

    [message] = post_digest(harness, "enterprise", ENTERPRISE)

    text = mrkdwn(message["blocks"])
    assert mrkdwn(message["blocks"][1]).startswith("Enterprise and mid-market accounts · ")
    assert "segment" not in text
    lines = [line for line in text.splitlines() if "Northwind Apparel Holdings" in line]
    assert [line.rsplit(" · ", 1)[1] for line in lines] == [f"<@{CSM}>", OMAR, f"<@{CSM}>", OMAR]


def test_a_digest_on_last_weeks_scores_says_so_in_the_channel_and_the_notification(
    harness: Harness,
) -> None:
    publish(
        harness.deps,
        realistic_book(harness, 12),
        created=NOW - dt.timedelta(days=7),
        as_of="2026-11-16",
    )
    publish(harness.deps, realistic_book(harness, 12), healthy=False)
    harness.deps.switch.trip("accuracy below the floor", who=ADMIN, source="admin")

    [message] = post_digest(harness, "cs-east", EAST)

    banner = (
        "⚠️ Using last week's data (scores as of Nov 16) — live scores are paused: "
        "accuracy below the floor"
    )
    assert banner in [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert banner in message["text"]


# --- the track record ------------------------------------------------------------------------


def test_a_digest_carries_the_track_record_line(harness: Harness) -> None:
    old_flags(harness)
    publish(harness.deps, realistic_book(harness, 12))

    [message] = post_digest(harness, "cs-east", EAST)

    assert mrkdwn(message["blocks"][2]) == (
        "📈 Track record: of 40 accounts flagged high 90 to 180 days ago, 35% churned within "
        "90 days; 8% of all accounts did."
    )


def test_with_few_outcomes_the_digest_says_so_instead_of_a_number(harness: Harness) -> None:
    old_flags(harness, n=40, flagged=10, churners=3)
    publish(harness.deps, realistic_book(harness, 3))

    [message] = post_digest(harness, "cs-east", EAST)

    assert mrkdwn(message["blocks"][2]) == (
        "📈 Track record: too few known outcomes yet to say how often accounts flagged high "
        "90 to 180 days ago churned (10 of the 30 needed)."
    )
