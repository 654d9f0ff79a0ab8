"""The stored plan splices the renderer's block JSON in (``Message.blocks_json``) instead of
encoding the blocks again, and the renderer splices each account's from the shape of its
blocks: what is stored must still be exactly the plan's blocks."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bot.digest.claims import _plan_from_json, _plan_json
from bot.digest.compose import DigestPlan
from bot.digest.exposures import Exposure, exposure_json
from bot.render import DigestContent, Message, digest_messages
from bot.render.digest import _Spliced
from models.track_record import Rate, TrackRecord


def _content(n: int) -> DigestContent:
    cards = [
        {
            "account_id": f"acc-{k}",
            "account_name": f'Acme "{k}" <Holdings> & Co ✓',
            "owner": "csm@example.com",
            "risk": 0.9 - k * 0.01,
            "band": "high",
            "reasons": [{"code": "usage", "text": "Logins down 48%\non the \\ month"}],
            "action": {"rule": "r", "action": "Call them", "why": "Because", "owner": "CSM"},
            "change": 0.02,
        }
        for k in range(n)
    ]
    return DigestContent(
        title="Weekly churn digest",
        channel_label="emea",
        freshness="scores as of Nov 30",
        banner=None,
        cards=cards,
        snapshot_id="snap-1",
    )


def test_each_message_keeps_the_json_of_exactly_its_blocks() -> None:
    messages = digest_messages(_content(30), max_chars=4_000)
    assert len(messages) > 1  # the continued parts carry a head of their own
    for message in messages:
        assert message.blocks_json is not None
        assert json.loads(message.blocks_json) == message.blocks
        assert message.blocks_json == json.dumps(
            message.blocks, separators=(",", ":"), ensure_ascii=False
        )


def test_a_stored_plan_reads_back_as_the_plan_with_or_without_the_kept_json() -> None:
    rendered = tuple(digest_messages(_content(12), max_chars=4_000))
    plain = tuple(Message(text=m.text, blocks=m.blocks) for m in rendered)
    exposure = Exposure("acc-1", "smb", "high", 0.9, "r", "v1", "2026-11-30", "snap-1")
    plans = [
        DigestPlan(messages, "snap-1", {"acc-1": 0.9}, "⚠️ old", False, (exposure,))
        for messages in (rendered, plain)
    ]
    stored = [_plan_json(plan) for plan in plans]
    assert stored[0] == stored[1]
    assert _plan_from_json(stored[0]) == plans[1]
    # byte for byte what Redis held when the plan was stored as text (which redis-py encoded
    # as UTF-8), so a plan stored by either version reads the same in the other
    whole = {
        "messages": [{"text": m.text, "blocks": m.blocks} for m in plain],
        "snapshot_id": "snap-1",
        "shown": {"acc-1": 0.9},
        "banner": "⚠️ old",
        "paused": False,
        "exposures": [exposure._asdict()],
    }
    assert stored[0] == json.dumps(whole, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "account_id", ['acc "1"', "acc\\2", "compte-é✓", "tab\there", "</script>&amp;"]
)
def test_an_accounts_spliced_json_is_its_blocks_encoded(account_id: str) -> None:
    """Each account's JSON is spliced from the shape of its blocks (the texts escaped into
    place): whatever its id and texts hold, it is what encoding the blocks gives."""
    content = _content(3)
    cards = [{**card, "account_id": f"{account_id}-{k}"} for k, card in enumerate(content.cards)]
    for snapshot_id in ("snap-1", "snap-2"):
        (message,) = digest_messages(content._replace(cards=cards, snapshot_id=snapshot_id))
        assert message.blocks_json == json.dumps(
            message.blocks, separators=(",", ":"), ensure_ascii=False
        )


def test_the_opening_json_is_spliced_exactly_with_a_banner_and_a_track_record() -> None:
    """The opening's blocks (header, scope, banner, track record) are spliced as an
    account's are: a title Slack's header cuts, and texts JSON must escape, included."""
    odd = 'Churn "digest" \\ <weekly> ✓\t\x01 '
    record = TrackRecord(
        since=dt.date(2026, 5, 1),
        until=dt.date(2026, 8, 1),
        horizon_days=90,
        flagged=40,
        flagged_rate=Rate(12, 40),
        base_rate=Rate(80, 2000),
        min_outcomes=30,
    )
    content = _content(3)._replace(
        title=odd * 12,
        banner=f"Using last week's data — {odd}",
        track_record=record,
        new_ids=frozenset({"acc-0"}),
    )
    for message in digest_messages(content):
        assert message.blocks_json == json.dumps(
            message.blocks, separators=(",", ":"), ensure_ascii=False
        )
    assert digest_messages(content)[0].blocks[0]["text"]["text"].endswith("…")


def test_a_block_that_places_its_text_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="must place its text once"):
        _Spliced(lambda text: [text, text])


def test_a_plan_stores_its_exposures_as_the_exposure_log_keeps_them() -> None:
    """Encoded once for both: the plan splices the log's (ASCII-escaped) texts in, and a
    plan read back, whose exposures come back as objects, encodes the same texts again."""
    exposures = (
        Exposure("acc-1", "mid-market – EMEA", "high", 0.912345, "r", "v1", "2026-11-30", "s"),
        Exposure("acc-2", "smb", "low", 0.1, "r", "v1", "2026-11-30", "s", held_out=True),
    )
    plan = DigestPlan((), "s", {"acc-1": 0.912345}, None, False, exposures)
    stored = _plan_json(plan)
    assert json.loads(stored)["exposures"] == [exposure._asdict() for exposure in exposures]
    assert plan.exposures_json == tuple(exposure_json(exposure) for exposure in exposures)
    assert all(text.encode() in stored for text in plan.exposures_json)
    assert plan.exposures_json[0].isascii()
    again = _plan_from_json(stored)
    assert again == plan
    assert again.exposures_json == plan.exposures_json


@pytest.mark.parametrize(
    ("text", "risk", "held_out"),
    [
        ("acc-1", 0.113353, False),
        ('quote " back \\ slash', 0.1 + 0.2, True),
        ("compte-é✓ 🆕 mid-market – EMEA", 1e-7, False),
        ("tab\there\nnew line \x00 \x1f", -0.0, True),
        ("</script>&amp;", float("nan"), False),
        ("", float("inf"), True),
        ("x" * 300, float("-inf"), False),
        ("acc-2", 123456789.125, False),
    ],
)
def test_an_exposures_text_is_what_the_json_encoder_gives(
    text: str, risk: float, held_out: bool
) -> None:
    """exposure_json fills the object's shape in rather than encoding it key by key: the same
    text the encoder gives for every field (a field added to Exposure and not to the shape
    fails here), whatever its strings and its risk hold."""
    exposure = Exposure(text, text, text, risk, text, text, text, text, held_out)
    expected = json.dumps(exposure._asdict(), separators=(",", ":"))
    assert exposure_json(exposure) == expected


def test_an_exposure_from_a_card_takes_each_field_from_its_place() -> None:
    card = {
        "account_id": "acc-1",
        "segment": "smb",
        "band": "high",
        "risk": 0.91,
        "action": {"rule": "renewal", "action": "Call them"},
        "model_version": "v7",
        "as_of": "2026-11-30",
    }
    assert Exposure.from_card(card, snapshot_id="s-1", held_out=True) == Exposure(
        account_id="acc-1",
        segment="smb",
        band="high",
        risk=0.91,
        action="renewal",
        model_version="v7",
        as_of="2026-11-30",
        snapshot_id="s-1",
        held_out=True,
    )
    bare = Exposure.from_card({"account_id": 7, "risk": "0.5"}, snapshot_id="s-1")
    assert bare._asdict() == {
        "account_id": "7",
        "segment": "unknown",
        "band": "unknown",
        "risk": 0.5,
        "action": "unknown",
        "model_version": "unknown",
        "as_of": "",
        "snapshot_id": "s-1",
        "held_out": False,
    }
