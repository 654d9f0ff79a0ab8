"""The synthetic book: schema-exact, deterministic, and telling a churn story a model can learn."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.contract import AccountSchema, canonical_dtypes, load_schema
from models.generator import (
    CAUSES,
    PLAN_MIX,
    PLANS,
    SEGMENTS,
    ActionEffect,
    WeekView,
    generate_accounts,
)

END = datetime.date(2026, 6, 28)
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


@pytest.fixture(scope="module")
def schema() -> AccountSchema:
    return load_schema(SCHEMA_PATH)


@pytest.fixture(scope="module")
def book():
    return generate_accounts(3000, 52, seed=7, end=END)


def test_columns_and_dtypes_are_exactly_the_schema(book, schema):
    dtypes = {name: str(dtype) for name, dtype in book.accounts.dtypes.items()}
    assert list(dtypes) == list(schema.columns)
    assert dtypes == canonical_dtypes(schema)


def test_values_respect_the_schema(book, schema):
    accounts = book.accounts
    for name, spec in schema.columns.items():
        column = accounts[name]
        if spec.required:
            assert column.notna().all(), name
        if spec.min is not None:
            assert (column.dropna() >= spec.min).all(), name
        if spec.max is not None:
            assert (column.dropna() <= spec.max).all(), name
        if spec.allowed is not None:
            assert set(column.dropna()) <= set(spec.allowed), name


def test_weekly_snapshots_end_on_end_and_keep_the_book_size(book):
    accounts = book.accounts
    dates = np.sort(accounts["as_of"].unique())
    assert len(dates) == 52
    assert pd.Timestamp(dates[-1]).date() == END
    assert (np.diff(dates) == np.timedelta64(7, "D")).all()
    assert (accounts.groupby("as_of").size() == 3000).all()
    assert not accounts.duplicated(["account_id", "as_of"]).any()


def test_names_owners_and_plans_are_plausible(book):
    accounts = book.accounts
    names = accounts.groupby("account_id")["account_name"].agg(["nunique", "first"])
    assert (names["nunique"] == 1).all()
    assert names["first"].is_unique
    assert accounts["owner_csm"].str.fullmatch(r"[a-z]+\.[a-z]+@example\.com").all()
    assert 8 <= accounts["owner_csm"].nunique() <= 12
    for segment, mix in zip(SEGMENTS, PLAN_MIX, strict=True):
        plans = set(accounts.loc[accounts["segment"] == segment, "plan"])
        assert plans <= {plan for plan, share in zip(PLANS, mix, strict=True) if share > 0}
    arr = accounts.groupby("segment")["arr"].median()
    assert arr["smb"] < arr["mid_market"] < arr["enterprise"]


def test_optional_columns_are_sometimes_empty_and_only_when_they_should_be(book):
    accounts = book.accounts
    for column in ("industry", "nps", "csat", "contacts_lost_90d"):
        share = accounts[column].isna().mean()
        assert 0.02 < share < 0.9, column
    no_escalation = accounts["open_escalations"] == 0
    assert (accounts["oldest_escalation_days"].isna() == no_escalation).all()
    nothing_overdue = accounts["overdue_invoices"] == 0
    assert (accounts["days_overdue"].isna() == nothing_overdue).all()
    assert (~no_escalation).any()
    assert (~nothing_overdue).any()


def test_churned_accounts_leave_and_new_ones_join(book):
    accounts = book.accounts
    last = accounts.groupby("account_id").agg(
        last_as_of=("as_of", "max"),
        churn=("churn_date", "first"),
        churn_values=("churn_date", lambda s: s.nunique(dropna=False)),
    )
    assert (last["churn_values"] == 1).all()  # the label is on every row of the account
    churned = last[last["churn"].notna()]
    assert len(churned) > 100
    assert (churned["churn"] > churned["last_as_of"]).all()
    assert (churned["churn"] <= churned["last_as_of"] + pd.Timedelta(days=7)).all()
    assert (churned["churn"] <= pd.Timestamp(END)).all()  # never a churn in the data's future
    first_week = accounts["as_of"] == accounts["as_of"].min()
    assert (accounts.loc[~first_week, "tenure_months"] == 0).any()


def test_quarterly_churn_rates_are_realistic_and_ordered_by_segment(book):
    accounts = book.accounts
    churn_week = accounts["churn_date"].notna() & (
        accounts["churn_date"] <= accounts["as_of"] + pd.Timedelta(days=7)
    )
    # Weekly hazard per segment, as a quarterly (13-week) rate.
    weekly = churn_week.groupby(accounts["segment"]).mean()
    quarterly = 1 - (1 - weekly) ** 13
    assert 0.04 <= quarterly["smb"] <= 0.09
    assert 0.02 <= quarterly["mid_market"] <= 0.055
    assert 0.005 <= quarterly["enterprise"] <= 0.03
    assert quarterly["smb"] > quarterly["mid_market"] > quarterly["enterprise"]


def test_truth_has_one_row_per_churned_account_with_known_causes(book):
    truth = book.truth
    churned = (
        book.accounts.dropna(subset=["churn_date"]).groupby("account_id")["churn_date"].first()
    )
    assert truth["account_id"].is_unique
    assert set(truth["account_id"]) == set(churned.index)
    assert (truth.set_index("account_id")["churn_date"] == churned[truth["account_id"]]).all()
    causes = truth["causes"].str.split(";")
    assert causes.map(lambda listed: set(listed) <= set(CAUSES)).all()
    assert (causes.str[0] == truth["primary_cause"]).all()
    shares = truth["primary_cause"].value_counts(normalize=True)
    assert 0.03 < shares["unexplained"] < 0.25  # some churn nobody could have seen coming
    assert shares["usage_decline"] > 0.3


def test_recorded_causes_match_what_the_last_snapshot_shows(book):
    """The truth names drivers of the hazard at churn time, so the final row must show them."""
    last = book.accounts.sort_values("as_of").groupby("account_id").tail(1)
    rows = book.truth.merge(last.drop(columns="churn_date"), on="account_id")
    listed = rows["causes"].str.split(";")

    def has(cause: str) -> pd.Series:
        return listed.map(lambda causes: cause in causes)

    assert (rows.loc[has("escalations"), "open_escalations"] > 0).all()
    assert rows.loc[has("champion_left"), "champion_left_90d"].all()
    assert (rows.loc[has("overdue_invoices"), "overdue_invoices"] > 0).all()
    assert (rows.loc[has("poor_nps"), "nps"] <= 4).all()
    days_to_renewal = (rows["renewal_date"] - rows["as_of"]).dt.days
    assert (days_to_renewal[has("renewal")] <= 28).all()


def test_decline_is_visible_weeks_before_churn(book):
    """Signals precede churn within the horizon: rows 4 to 12 weeks before a churn already
    show falling usage compared with accounts that stay."""
    accounts = book.accounts
    weeks_left = (accounts["churn_date"] - accounts["as_of"]).dt.days / 7
    ahead = accounts[(weeks_left >= 4) & (weeks_left <= 12)]
    staying = accounts[accounts["churn_date"].isna()]

    def usage_change(rows: pd.DataFrame) -> float:
        return float((rows["logins_30d"] / rows["logins_prev_30d"].clip(lower=1) - 1).median())

    assert usage_change(ahead) < usage_change(staying) - 0.03
    assert (ahead["seats_active"] / ahead["seats_purchased"]).median() < (
        staying["seats_active"] / staying["seats_purchased"]
    ).median()


def test_same_seed_same_book_other_seed_other_book():
    first = generate_accounts(200, 10, seed=3, end=END)
    again = generate_accounts(200, 10, seed=3, end=END)
    other = generate_accounts(200, 10, seed=4, end=END)
    pd.testing.assert_frame_equal(first.accounts, again.accounts)
    pd.testing.assert_frame_equal(first.truth, again.truth)
    assert not first.accounts.equals(other.accounts)


def test_progress_reports_every_week():
    calls: list[tuple[int, int]] = []
    generate_accounts(
        50, 6, seed=1, end=END, progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(week, 6) for week in range(1, 7)]


@pytest.mark.parametrize(
    ("n_accounts", "n_weeks", "named"), [(0, 5, "n_accounts"), (5, 0, "n_weeks")]
)
def test_rejects_an_empty_book(n_accounts, n_weeks, named):
    with pytest.raises(ValueError, match=named):
        generate_accounts(n_accounts, n_weeks, seed=1, end=END)


# --- the optional action effect ---------------------------------------------------------------

#: sha256 of pd.util.hash_pandas_object of generate_accounts(600, 30, seed=11, end=END), taken
#: before the action effect existed: the sample book must not change when it is off.
SAMPLE_ACCOUNTS_SHA = "f283e4916f462e30e76ffcfe516eba8aed12dd4830acb2ba74fb37c3dba17dc8"
SAMPLE_TRUTH_SHA = "8c0f9b92ffb5ad0c491a2b6f9fc4aaf6ef9a345867f376e78e275794b91a1c68"


def frame_sha(frame: pd.DataFrame) -> str:
    return hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    ).hexdigest()


def everyone_does(action: str) -> Callable[[WeekView], dict[str, str]]:
    return lambda view: dict.fromkeys(view.account_id, action)


def test_without_an_action_effect_the_sample_book_is_unchanged():
    book = generate_accounts(600, 30, seed=11, end=END)
    assert frame_sha(book.accounts) == SAMPLE_ACCOUNTS_SHA
    assert frame_sha(book.truth) == SAMPLE_TRUTH_SHA


def test_the_wrong_action_changes_nothing():
    wrong = ActionEffect(
        action="escalations", cause="escalations", share=0.9, done=everyone_does("usage-drop")
    )
    book = generate_accounts(600, 30, seed=11, end=END, action_effect=wrong)
    assert frame_sha(book.accounts) == SAMPLE_ACCOUNTS_SHA


def test_the_right_action_for_the_right_cause_saves_accounts():
    seen: list[WeekView] = []

    def done(view: WeekView) -> dict[str, str]:
        seen.append(view)
        return dict.fromkeys(view.account_id, "escalations")

    right = ActionEffect(action="escalations", cause="escalations", share=1.0, done=done)
    plain = generate_accounts(3000, 30, seed=11, end=END)
    acted = generate_accounts(3000, 30, seed=11, end=END, action_effect=right)
    assert len(seen) == 30
    assert seen[-1].day == END
    assert set(seen[0].top_cause) <= {*CAUSES}
    escalation_churns = (plain.truth["causes"].str.contains("escalations")).sum()
    assert escalation_churns > 0
    # every account whose escalations drove its risk is protected: none churns for them now
    assert not acted.truth["causes"].str.contains("escalations").any()
    assert len(acted.truth) < len(plain.truth)


def test_an_action_effect_is_checked():
    with pytest.raises(ValueError, match="cause must be one of"):
        ActionEffect(action="x", cause="weather", share=0.5, done=everyone_does("x"))
    with pytest.raises(ValueError, match="share must be within 0 and 1"):
        ActionEffect(action="x", cause="renewal", share=1.5, done=everyone_does("x"))
