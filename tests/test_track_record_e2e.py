"""The track record on the ``/churn`` card, through the real app: a signed ``/churn`` shows
how often accounts at that risk level churned, the trend in words, and "not enough data to
score" for an account whose data is too thin. (The digest's line: tests/test_digest_csm.py.)"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.feedback import feedback_store
from bot.feedback.outcomes import Outcome
from bot.feedback.track_record import cached_summary
from bot.state.flag_log import FlagLog
from tests.polling import wait_until
from tests.slack_harness import BOOK, NOW, Harness, make_card, publish
from tests.test_e2e_churn import churn, mrkdwn_texts

#: A quarter and a bit before NOW: one horizon (90 days) has passed since.
QUARTER_AGO = (NOW - dt.timedelta(days=100)).date()
CALIBRATION = [
    {"count": 600, "mean_predicted": 0.05, "observed_rate": 0.03},
    {"count": 300, "mean_predicted": 0.2, "observed_rate": 0.16},
    {"count": 200, "mean_predicted": 0.55, "observed_rate": 0.42},
]


def old_flags(h: Harness, n: int = 200, flagged: int = 40, churners: int = 14) -> None:
    """A snapshot served a quarter ago: ``flagged`` of ``n`` accounts high; its flags, as the
    publish hook records them; and the outcomes `churnbot feedback outcomes` stored since:
    ``churners`` of the flagged accounts and 2 of the others churned."""
    cards = [
        {"account_id": f"OLD-{i:04d}", "band": "high" if i < flagged else "low"} for i in range(n)
    ]
    meta = publish(
        h.deps,
        [
            make_card(c["account_id"], c["account_id"], 0.5 if c["band"] == "high" else 0.05)
            for c in cards
        ],
        created=dt.datetime.combine(QUARTER_AGO, dt.time(6), tzinfo=dt.UTC),
        as_of=QUARTER_AGO.isoformat(),
    )
    FlagLog(h.deps.redis, prefix=h.deps.prefix).record_snapshot(
        meta, iter(cards), spec=h.deps.settings.spec, calibration=CALIBRATION
    )
    seen = QUARTER_AGO + dt.timedelta(days=95)
    churned = QUARTER_AGO + dt.timedelta(days=40)
    lost = {f"OLD-{i:04d}" for i in [*range(churners), n - 1, n - 2]}
    feedback_store(h.deps).set_outcomes(
        {
            c["account_id"]: Outcome(churned if c["account_id"] in lost else None, seen)
            for c in cards
        }
    )


def weekly(h: Harness, risks: list[float]) -> None:
    """The book scored once a week, the last time at NOW, Acme Corp at ``risks``."""
    for weeks_ago, risk in zip(range(len(risks) - 1, -1, -1), risks, strict=True):
        created = NOW - dt.timedelta(weeks=weeks_ago)
        cards: list[dict[str, Any]] = [dict(card) for card in BOOK]
        cards[0] = make_card("ACC-000001", "Acme Corp", risk)
        cards.append(make_card("ACC-000050", "Mediumrisk Ltd", 0.2))
        publish(h.deps, cards, created=created, as_of=f"{created.date().isoformat()}")


def test_the_card_says_how_often_its_risk_level_churned_and_the_trend_in_words(
    harness: Harness,
) -> None:
    old_flags(harness)
    weekly(harness, [0.42, 0.61, 0.78, 0.81])
    level = (
        "Accounts at high risk churned 35% of the time within 90 days (40 accounts scored "
        "90 to 180 days ago whose outcome is known)."
    )

    first = mrkdwn_texts(churn(harness, "acme corp")["blocks"])
    # Not computed yet (no digest ran today): the answer does not wait for it, it asks for it.
    assert "Trend: risk 42% → 61% → 78% → 81% over 3 weeks" in first
    assert "churned" not in first
    served = harness.deps.store.latest()
    assert served is not None
    wait_until(
        lambda: cached_summary(harness.deps, served.snapshot_id),
        "the track record, computed after",
        timeout=10,
    )
    answer = churn(harness, "acme corp")

    text = mrkdwn_texts(answer["blocks"])
    assert "Trend: risk 42% → 61% → 78% → 81% over 3 weeks" in text
    assert level in text
    medium = churn(harness, "mediumrisk")
    assert (
        "In the model's evaluation on held-out data, 16% of accounts at medium risk churned "
        "within 90 days (300 accounts); too few live outcomes yet (0 of 30)."
    ) in mrkdwn_texts(medium["blocks"])


def test_an_account_with_thin_data_is_shown_as_not_scored(harness: Harness) -> None:
    thin = make_card("ACC-000009", "Thin Data Inc", 0.77)
    thin["abstain"] = {"missing": ["Seats used", "Active users, change on 4 weeks"]}
    publish(harness.deps, [*BOOK, thin])

    answer = churn(harness, "thin data")

    text = mrkdwn_texts(answer["blocks"])
    assert "*Not enough data to score* — what is missing:" in text
    assert "• Active users, change on 4 weeks" in text
    assert "77%" not in text
    assert answer["text"] == "Thin Data Inc: not enough data to score"
