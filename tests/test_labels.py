"""Labels and the time split: censored rows dropped, no training label sees the eval period."""

from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd
import pytest

from models.contract import AccountSchema, load_schema
from models.errors import DataContractError
from models.generator import generate_accounts
from models.labels import TooLittleHistory, make_labels, split, time_split
from models.spec import TrainingSettings

END = datetime.date(2026, 6, 28)
HORIZON = 90
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


@pytest.fixture(scope="module")
def schema() -> AccountSchema:
    return load_schema(SCHEMA_PATH)


@pytest.fixture(scope="module")
def book() -> pd.DataFrame:
    return generate_accounts(800, 52, seed=5, end=END).accounts


def test_label_window_is_after_as_of_up_to_the_horizon(schema):
    as_of = pd.Timestamp("2026-01-04")
    churn = [
        as_of,  # already gone on the as-of date: not a future churn
        as_of + pd.Timedelta(days=1),
        as_of + pd.Timedelta(days=HORIZON),
        as_of + pd.Timedelta(days=HORIZON + 1),
        pd.NaT,
    ]
    frame = pd.DataFrame({"as_of": [as_of] * len(churn), "churn_date": churn}, index=range(10, 15))
    labels = make_labels(frame, schema, HORIZON)
    assert labels.dtype == bool
    assert labels.index.equals(frame.index)
    assert labels.tolist() == [False, True, True, False, False]


def test_split_windows_leave_a_gap_of_one_horizon(book, schema):
    split = time_split(book, schema, HORIZON)
    horizon = pd.Timedelta(days=HORIZON)
    train_dates = split.train["as_of"]
    eval_dates = split.evaluate["as_of"]
    assert train_dates.max() + horizon < eval_dates.min()
    assert eval_dates.nunique() == 13
    assert split.cutoff == eval_dates.min().date() == split.eval_window[0]
    assert split.eval_window[1] == eval_dates.max().date()
    assert split.train_window == (train_dates.min().date(), train_dates.max().date())


def test_censored_rows_are_dropped(book, schema):
    split = time_split(book, schema, HORIZON)
    last = book["as_of"].max()
    horizon = pd.Timedelta(days=HORIZON)
    assert (split.evaluate["as_of"] + horizon <= last).all()
    censored = book[book["as_of"] + horizon > last]
    assert len(censored) > 0
    used = pd.concat([split.train, split.evaluate]).index
    assert not used.intersection(censored.index).size


def test_no_training_label_comes_from_the_evaluation_period(book, schema):
    split = time_split(book, schema, HORIZON)
    positives = split.train[make_labels(split.train, schema, HORIZON)]
    assert len(positives) > 0
    assert (positives["churn_date"] < pd.Timestamp(split.cutoff)).all()


def test_a_churn_inside_the_evaluation_period_never_labels_a_training_row(book, schema):
    split = time_split(book, schema, HORIZON)
    moved = book.copy()
    account = split.train["account_id"].iloc[0]
    moved.loc[moved["account_id"] == account, "churn_date"] = pd.Timestamp(split.cutoff)
    moved_split = time_split(moved, schema, HORIZON)
    train = moved_split.train
    labels = make_labels(train, schema, HORIZON)
    assert not labels[train["account_id"] == account].any()


def test_too_little_history_is_refused_with_counts(schema):
    short = generate_accounts(200, 20, seed=1, end=END).accounts
    with pytest.raises(
        DataContractError,
        match=r"span 134 days .* about 299 days are needed \(90 at the end .* 91 to evaluate, "
        r"90 between training and evaluation, and 4 training dates 7 days apart\).* "
        r"training\.eval_days",
    ):
        time_split(short, schema, HORIZON)


def test_auto_cross_validates_a_short_history_on_rows_whose_outcome_is_known(schema):
    """Twenty weekly dates cannot hold a training period, a gap and a later one: ``auto``
    judges the model by cross-validation instead, says why, and still leaves out the rows
    whose 90 days have not passed by the last date; ``time`` asked for refuses, as before."""
    short = generate_accounts(400, 20, seed=1, end=END).accounts
    rows = split(short, schema, HORIZON, TrainingSettings(evaluation="auto"))
    assert rows.method == "cross_validation"
    assert rows.because is not None
    assert rows.because.startswith("the as-of dates span 134 days and a later period")
    assert "about 299" in rows.because
    last = short["as_of"].max()
    assert rows.train["as_of"].max() + pd.Timedelta(days=HORIZON) <= last
    assert len(rows.train) == (short["as_of"] + pd.Timedelta(days=HORIZON) <= last).sum()
    assert rows.evaluate is rows.train
    with pytest.raises(TooLittleHistory, match=r"training\.evaluation: auto"):
        split(short, schema, HORIZON, TrainingSettings(evaluation="time"))


def test_one_snapshot_keeps_every_row_and_no_reason(book, schema):
    day = book["as_of"].max() - pd.Timedelta(weeks=20)
    one = book[book["as_of"] == day]
    rows = split(one, schema, HORIZON, TrainingSettings(evaluation="auto"))
    assert (rows.method, rows.because, len(rows.train)) == ("cross_validation", None, len(one))


def test_cross_validation_with_only_unknown_outcomes_is_refused(schema):
    recent = generate_accounts(300, 6, seed=1, end=END).accounts
    with pytest.raises(DataContractError, match=r"no row's outcome is known yet.*horizon_days=90"):
        split(recent, schema, HORIZON, TrainingSettings(evaluation="cross_validation"))


def test_too_few_positives_is_refused_with_counts(book, schema):
    no_churn = book.assign(churn_date=pd.Series(pd.NaT, index=book.index, dtype="datetime64[ns]"))
    with pytest.raises(DataContractError, match=r"0 \(churn within 90 days.* at least 20"):
        time_split(no_churn, schema, HORIZON)


def test_no_rows_is_refused(book, schema):
    with pytest.raises(DataContractError, match="no account rows"):
        time_split(book.iloc[0:0], schema, HORIZON)
