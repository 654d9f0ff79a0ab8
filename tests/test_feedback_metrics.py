"""The figures that say whether the product works, from an events table (no Redis)."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest

from bot.feedback.events import Correction, FeedbackEvent, Kind, events_table
from bot.feedback.metrics import (
    Adoption,
    Rates,
    Targets,
    period_figures,
    stats_text,
    weekly_figures,
)
from bot.feedback.outcomes import Outcome, churned_within, outcomes_from_accounts
from bot.feedback.release import ReleaseRecord, offline_metrics, previous_version, release_lines
from bot.render.feedback import FeedbackRef
from models.contract import load_schema
from models.registry import ModelCard
from tests.slack_harness import CONFIG

MONDAY = dt.date(2026, 11, 16)
AT = dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC)


def ev(
    kind: Kind,
    account: str,
    user: str | None,
    *,
    risk: float = 0.5,
    segment: str = "smb",
    action: str = "usage-drop",
    at: dt.datetime = AT,
    state: str | None = None,
) -> FeedbackEvent:
    ref = FeedbackRef(account, "snap-1", "m1", risk, action, "digest")
    return FeedbackEvent(
        event_id=uuid.uuid4().hex,
        idem=uuid.uuid4().hex,
        kind=kind,
        ref=ref,
        at=at,
        segment=segment,
        as_of=MONDAY.isoformat(),
        correction=Correction(state) if state else None,  # type: ignore[arg-type]
        user=user,
        consent="identified" if user else "anonymous",
    )


def figures(events: list[FeedbackEvent], **kwargs: object) -> list:
    defaults: dict[str, object] = {
        "weeks": [MONDAY],
        "targets": Targets({}),
        "outcomes": {},
        "high_risk": 0.3,
        "horizon_days": 90,
    }
    return weekly_figures(events_table(events), **{**defaults, **kwargs})  # type: ignore[arg-type]


def test_acceptance_counts_each_persons_latest_vote() -> None:
    events = [
        ev("helpful", "A", "U1", at=AT),
        ev("not_helpful", "A", "U1", at=AT + dt.timedelta(hours=1)),  # changed their mind
        ev("helpful", "B", "U1"),
        ev("helpful", "A", None),
        ev("helpful", "A", None),  # two anonymous people
    ]
    [week] = figures(events)
    assert (week.overall.helpful, week.overall.not_helpful) == (3, 1)
    assert week.overall.acceptance == 0.75
    assert week.overall.anonymous == 2


def test_corrections_and_actions_done_are_shares_of_answered_account_weeks() -> None:
    events = [
        ev("helpful", "A", "U1"),
        ev("action_done", "A", "U1"),
        ev("correction", "B", "U1", state="not_at_risk"),
        ev("helpful", "C", "U2"),
        ev("helpful", "C", "U2", at=AT + dt.timedelta(days=7)),  # next week: another unit
    ]
    [week] = figures(events)
    assert week.overall.account_weeks == 3
    assert week.overall.correction_rate == pytest.approx(1 / 3)
    assert week.overall.completion == pytest.approx(1 / 3)


def test_adoption_is_per_target_csm_and_segment() -> None:
    targets = Targets({"U1": frozenset({"smb"}), "U2": frozenset({"smb", "enterprise"})})
    events = [ev("helpful", "A", "U1"), ev("helpful", "B", "U9"), ev("helpful", "C", None)]
    [week] = figures(events, targets=targets)
    assert (week.adoption.active, week.adoption.targets) == (1, 2)
    assert week.adoption_by_segment["smb"].share == 0.5
    assert week.adoption_by_segment["enterprise"].share == 0.0


def test_precision_of_flagged_accounts_uses_known_outcomes_only() -> None:
    events = [
        ev("helpful", "A", "U1", risk=0.8),  # churned within the horizon: hit
        ev("helpful", "B", "U1", risk=0.7),  # seen alive past the horizon: miss
        ev("correction", "C", "U1", risk=0.6, state="churned"),  # a CSM says so: hit
        ev("helpful", "D", "U1", risk=0.9),  # not known yet: left out
        ev("helpful", "E", "U1", risk=0.1),  # not flagged
    ]
    outcomes = {
        "A": Outcome(MONDAY + dt.timedelta(days=30), MONDAY + dt.timedelta(days=28)),
        "B": Outcome(None, MONDAY + dt.timedelta(days=100)),
        "D": Outcome(None, MONDAY + dt.timedelta(days=20)),
        "E": Outcome(MONDAY + dt.timedelta(days=5), MONDAY),
    }
    [week] = figures(events, outcomes=outcomes)
    assert (week.overall.flagged_churned, week.overall.flagged_known) == (2, 3)
    assert week.by_action["usage-drop"].precision == pytest.approx(2 / 3)


def test_by_segment_and_action_and_a_silent_week() -> None:
    events = [
        ev("helpful", "A", "U1", segment="smb", action="usage-drop"),
        ev("not_helpful", "B", "U1", segment="enterprise", action="escalations"),
    ]
    silent, week = figures(events, weeks=[MONDAY - dt.timedelta(weeks=1), MONDAY])
    assert silent.overall.events == 0
    assert silent.overall.acceptance is None
    assert week.by_segment["smb"].acceptance == 1.0
    assert week.by_segment["enterprise"].acceptance == 0.0
    assert set(week.by_action) == {"usage-drop", "escalations"}
    text = stats_text([silent, week])
    assert "• *2026-11-09* · 0 answers" in text
    assert "acceptance 1/2 50%" in text
    assert "• `escalations`: acceptance 0/1 0%" in text
    assert "map Slack users to owners in config/slack.yaml" in text


def test_outcomes_from_account_data() -> None:
    schema = load_schema(CONFIG / "schema.yaml")
    frame = pd.DataFrame(
        {
            "account_id": ["A", "A", "B"],
            "as_of": pd.to_datetime(["2026-01-05", "2026-01-12", "2026-01-12"]),
            "churn_date": pd.to_datetime([None, "2026-02-01", None]),
        }
    )
    known = outcomes_from_accounts(frame, schema)
    assert known == {
        "A": Outcome(dt.date(2026, 2, 1), dt.date(2026, 1, 12)),
        "B": Outcome(None, dt.date(2026, 1, 12)),
    }
    horizon = dt.timedelta(days=90)
    assert churned_within(known["A"], dt.date(2026, 1, 5), horizon) is True
    assert churned_within(known["B"], dt.date(2026, 1, 5), horizon) is None
    assert churned_within(None, dt.date(2026, 1, 5), horizon) is None


# --- a model version's whole period, and its release record ---------------------------------


def test_period_figures_take_all_events_as_one_slice() -> None:
    events = [
        ev("helpful", "A", "U1", risk=0.8),
        ev("action_done", "A", "U1", at=AT + dt.timedelta(days=7)),  # next week: another unit
        ev("not_helpful", "B", "U2"),
    ]
    outcomes = {"A": Outcome(dt.date(2026, 12, 1), dt.date(2026, 12, 1))}
    rates, adoption = period_figures(
        events_table(events),
        targets=Targets({"U1": frozenset({"smb"}), "U3": frozenset({"smb"})}),
        outcomes=outcomes,
        high_risk=0.3,
        horizon_days=90,
    )
    assert (rates.events, rates.account_weeks, rates.done) == (3, 3, 1)
    assert rates.acceptance == 0.5
    # A's two account-weeks churned within the horizon; B's outcome is not known yet
    assert (rates.flagged_known, rates.flagged_churned) == (2, 2)
    assert (adoption.active, adoption.targets) == (1, 2)


def card(version: str, day: int) -> ModelCard:
    return ModelCard(
        version=version,
        created_at=dt.datetime(2026, 11, day, tzinfo=dt.UTC),
        model_class="LogisticRegression",
        artifact_sha256="0" * 64,
        data_fingerprint="f",
        data_source="test",
        training_window=(dt.date(2025, 1, 1), dt.date(2026, 1, 1)),
        eval_window=None,
        horizon_days=90,
        features=["x"],
        params={},
        metrics={"model": {"roc_auc": 0.81, "pr_auc": 0.3, "top_decile_precision": 0.25}},
        n_train=10,
        n_eval=0,
        library_versions={},
    )


def test_the_previous_version_is_the_last_other_one_answered_else_the_older_card() -> None:
    cards = [card("20261101-aaaaaaaaaa", 1), card("20261110-bbbbbbbbbb", 10)]
    cards.append(card("20261120-cccccccccc", 20))
    champion = "20261110-bbbbbbbbbb"
    none = events_table([])
    assert previous_version(champion, none, cards) == "20261101-aaaaaaaaaa"
    assert previous_version("20261101-aaaaaaaaaa", none, cards) is None
    answered = events_table([ev("helpful", "A", "U1")])  # model "m1"
    assert previous_version(champion, answered, cards) == "m1"


def test_a_release_record_reads_offline_and_live_figures() -> None:
    record = ReleaseRecord(
        version="20261110-bbbbbbbbbb",
        role="champion",
        offline=offline_metrics(card("20261110-bbbbbbbbbb", 10)),
        rates=Rates(events=4, account_weeks=3, helpful=2, not_helpful=1, done=1),
        adoption=Adoption(active=1, targets=2),
    )
    shadow = ReleaseRecord("x", "shadow candidate", offline_metrics(None), None, None)
    lines = release_lines([record, shadow])
    assert "observational comparison, not an experiment" in lines[0]
    assert lines[1].startswith(
        "• champion `20261110-bbbbbbbbbb`: offline ROC AUC 0.810 · PR AUC 0.300 · top decile 25%"
    )
    assert "live: 4 answers on 3 accounts · adoption 1/2 50% · acceptance 2/3 67%" in lines[1]
    assert "save rates: no shown account with a known outcome yet" in lines[1]
    assert lines[2] == (
        "• shadow candidate `x`: offline no offline metrics on record · live: never shown to CSMs"
    )
