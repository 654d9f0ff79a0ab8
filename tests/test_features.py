"""Model features: readable values, no NaN, nothing taken from the label."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pandas as pd
import pytest

from models.generator import generate_accounts
from tests import sample_config

END = datetime.date(2026, 6, 28)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return generate_accounts(300, 8, seed=11, end=END).accounts


def one_row(rows: pd.DataFrame, **values: object) -> pd.DataFrame:
    """A copy of the first generated row with some columns set, keeping the schema's dtypes."""
    row = rows.iloc[[0]].copy()
    for name, value in values.items():
        row[name] = pd.array([value], dtype=row[name].dtype)
    return row


NEUTRAL_NPS = 7.0  # config/features.yaml fills a never-surveyed account's NPS with a "passive"


def test_columns_dtypes_and_index(rows):
    feature_set = sample_config.features()
    features = feature_set.build(rows)
    assert list(features.columns) == feature_set.names
    assert feature_set.categorical == ["segment", "plan"]
    assert features.index.equals(rows.index)
    assert (features[feature_set.numeric].dtypes == "float64").all()
    assert not features.isna().any().any()
    assert set(features["segment"]) <= {"smb", "mid_market", "enterprise"}


def test_values_read_as_a_csm_would_say_them(rows):
    row = one_row(
        rows,
        as_of=pd.Timestamp("2026-06-28"),
        renewal_date=pd.Timestamp("2026-08-01"),
        seats_purchased=40,
        seats_active=30,
        active_users=16,
        active_users_4w_ago=31,
        logins_30d=300,
        logins_prev_30d=200,
        key_feature_events_30d=10,
        key_feature_events_prev_30d=0,
        open_escalations=2,
        oldest_escalation_days=40,
        nps=None,
        overdue_invoices=0,
        days_overdue=None,
        champion_left_90d=True,
        arr=50_000.0,
        tenure_months=14,
    )
    features = sample_config.features().build(row).iloc[0]
    assert features["seat_utilisation"] == pytest.approx(0.75)
    assert features["active_users_change"] == pytest.approx(-15 / 31)  # "down 48%"
    assert features["logins_change"] == pytest.approx(0.5)
    assert features["key_feature_change"] == 1.0  # from nothing: a rise, clipped, not infinite
    assert features["days_to_renewal"] == 34
    assert features["open_escalations"] == 2
    assert features["oldest_escalation_days"] == 40
    assert features["nps"] == NEUTRAL_NPS
    assert features["nps_missing"] == 1.0
    assert features["days_overdue"] == 0.0
    assert features["champion_left_90d"] == 1.0
    assert features["log_arr"] == pytest.approx(math.log1p(50_000))
    assert features["tenure_months"] == 14


def test_empty_optional_counts_mean_none(rows):
    row = one_row(rows, open_escalations=0, oldest_escalation_days=None, nps=3)
    features = sample_config.features().build(row).iloc[0]
    assert features["oldest_escalation_days"] == 0.0
    assert features["nps"] == 3.0
    assert features["nps_missing"] == 0.0


def test_extremes_are_clipped(rows):
    row = one_row(
        rows,
        as_of=pd.Timestamp("2026-06-28"),
        renewal_date=pd.Timestamp("2027-06-01"),
        days_since_csm_touch=900,
        active_users=0,
        active_users_4w_ago=10,
    )
    features = sample_config.features().build(row).iloc[0]
    assert features["days_to_renewal"] == 180
    assert features["days_since_csm_touch"] == 180
    assert features["active_users_change"] == -1.0


def test_the_label_is_never_read(rows):
    with_label = sample_config.features().build(rows)
    without = sample_config.features().build(rows.drop(columns="churn_date"))
    assert "churn_date" not in sample_config.features().source_columns
    pd.testing.assert_frame_equal(with_label, without)


def test_baseline_ranks_bigger_usage_drops_as_riskier(rows):
    frame = pd.concat(
        [
            one_row(rows, active_users=10, active_users_4w_ago=10),
            one_row(rows, active_users=5, active_users_4w_ago=10),
            one_row(rows, active_users=12, active_users_4w_ago=10),
        ]
    )
    scores = sample_config.features().baseline(frame)
    assert scores.dtype == np.float64
    assert scores.tolist() == pytest.approx([0.0, 0.5, -0.2])
    assert sample_config.features().baseline(rows).shape == (len(rows),)
