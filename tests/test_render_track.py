"""Rendering the track record, the risk-level line and an account not scored for lack of data."""

from __future__ import annotations

import datetime as dt

from bot.render import DigestContent, account_card_blocks, digest_messages, home_view, mine_blocks
from bot.render.blocks import pick_list_blocks
from bot.render.track_record import risk_level_line, track_record_line
from models.track_record import Rate, RiskLevel, TrackRecord
from tests.test_render import FRESHNESS, SNAPSHOT, assert_accepted, make_card, mrkdwn

TODAY = dt.date(2026, 11, 23)


def record(flagged: Rate, base: Rate, *, n: int = 120, minimum: int = 30) -> TrackRecord:
    return TrackRecord(
        since=TODAY - dt.timedelta(days=180),
        until=TODAY - dt.timedelta(days=90),
        horizon_days=90,
        flagged=n,
        flagged_rate=flagged,
        base_rate=base,
        min_outcomes=minimum,
    )


def test_the_track_record_line_gives_both_rates_or_says_there_are_too_few() -> None:
    assert track_record_line(record(Rate(37, 120), Rate(80, 2000))) == (
        "Track record: of 120 accounts flagged high 90 to 180 days ago, 31% churned within "
        "90 days; 4% of all accounts did."
    )
    assert track_record_line(record(Rate(37, 110), Rate(80, 2000))) == (
        "Track record: of 120 accounts flagged high 90 to 180 days ago (10 not known yet), "
        "34% churned within 90 days; 4% of all accounts did."
    )
    assert track_record_line(record(Rate(3, 12), Rate(80, 2000), n=12)) == (
        "Track record: too few known outcomes yet to say how often accounts flagged high "
        "90 to 180 days ago churned (12 of the 30 needed)."
    )


def test_the_risk_level_line_says_where_its_figure_comes_from() -> None:
    live = RiskLevel("high", Rate(37, 120), "live", 120, 30, 90)
    assert risk_level_line(live) == (
        "Accounts at high risk churned 31% of the time within 90 days (120 accounts scored "
        "90 to 180 days ago whose outcome is known)."
    )
    evaluation = RiskLevel("medium", Rate(90, 600), "evaluation", 4, 30, 90)
    assert risk_level_line(evaluation) == (
        "In the model's evaluation on held-out data, 15% of accounts at medium risk churned "
        "within 90 days (600 accounts); too few live outcomes yet (4 of 30)."
    )
    none = RiskLevel("low", None, "none", 4, 30, 90)
    assert risk_level_line(none) == (
        "How often accounts at low risk churn: too few known outcomes yet (4 of the 30 needed)."
    )


def test_the_digest_opening_carries_the_track_record() -> None:
    content = DigestContent(
        title="Churn risk",
        channel_label="#cs",
        freshness=FRESHNESS,
        banner=None,
        cards=[make_card(i) for i in range(3)],
        snapshot_id=SNAPSHOT,
        track_record=record(Rate(37, 120), Rate(80, 2000)),
    )
    [message] = digest_messages(content)
    assert_accepted(message.text, message.blocks)
    assert message.blocks[2]["type"] == "context"
    assert mrkdwn(message.blocks[2]).startswith("📈 Track record: of 120 accounts flagged high")
    without = digest_messages(
        DigestContent(
            title="Churn risk",
            channel_label="#cs",
            freshness=FRESHNESS,
            banner=None,
            cards=[make_card(0)],
            snapshot_id=SNAPSHOT,
        )
    )[0]
    assert "Track record" not in mrkdwn(without.blocks)


def test_the_card_shows_the_risk_level_and_the_trend_in_words() -> None:
    level = RiskLevel("high", Rate(37, 120), "live", 120, 30, 90)
    blocks = account_card_blocks(
        make_card(),
        history=[0.42, 0.61, 0.82],
        snapshot_id=SNAPSHOT,
        banner=None,
        freshness=FRESHNESS,
        span_days=14,
        risk_level=level,
    )
    assert_accepted("Account 0", blocks)
    text = mrkdwn(blocks)
    assert "Trend: risk 42% → 61% → 82% over 2 weeks" in text
    assert risk_level_line(level) in text


def abstained(i: int = 0) -> dict[str, object]:
    card = make_card(i)
    card["abstain"] = {"missing": ["Seats used", "Active users, change <!channel>"]}
    return card


def test_an_abstained_account_says_not_enough_data_and_what_is_missing() -> None:
    blocks = account_card_blocks(
        abstained(), history=[0.5], snapshot_id=SNAPSHOT, banner=None, freshness=FRESHNESS
    )
    assert_accepted("Account 0", blocks)
    text = mrkdwn(blocks)
    assert "*Not enough data to score* — what is missing:\n• Seats used\n" in text
    assert "• Active users, change &lt;!channel&gt;" in text, "escaped like any data"
    assert "82%" not in text, "no confident percentage"
    assert "Book an exec sponsor call" not in text, "no action on a score it did not make"
    assert not any(b["type"] == "actions" for b in blocks)


def test_lists_show_an_abstained_account_without_a_percentage() -> None:
    cards = [make_card(1), abstained(2)]
    digest = digest_messages(
        DigestContent(
            title="Churn risk",
            channel_label="#cs",
            freshness=FRESHNESS,
            banner=None,
            cards=cards,
            snapshot_id=SNAPSHOT,
        )
    )[0]
    assert_accepted(digest.text, digest.blocks)
    text = mrkdwn(digest.blocks)
    assert "⚪ not enough data to score" in text
    assert "• missing: Seats used" in text
    for blocks in (
        mine_blocks("jane@example.com", cards, banner=None, freshness=FRESHNESS),
        pick_list_blocks("acc", cards),
        home_view(user_cards=cards, status=None, banner=None, owner="jane")["blocks"],
    ):
        assert "⚪ not enough data to score" in mrkdwn(blocks)
