"""Labels and a leakage-free time split.

A row is positive when the account churned within ``horizon_days`` after its as-of date. Two
things keep the future out of training:

* censoring: a row whose label window reaches past the last as-of date in the data has an
  outcome nobody knows yet, so it is neither positive nor negative: it is dropped;
* a gap: every training row's label window ends before the first evaluation as-of date, so no
  churn that happens during the evaluation period can label a training row.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.contract import AccountSchema
from models.errors import DataContractError

MIN_TRAIN_WEEKS = 4  # training is split again (fit, then calibrate) by as-of date
MIN_TRAIN_POSITIVES = 20
MIN_EVAL_POSITIVES = 5


@dataclass(frozen=True)
class TimeSplit:
    """Training and evaluation rows; windows are (first, last) as-of dates, inclusive.

    ``cutoff`` is the first evaluation as-of date: every training label window ends before it.
    """

    train: pd.DataFrame
    evaluate: pd.DataFrame
    train_window: tuple[datetime.date, datetime.date]
    eval_window: tuple[datetime.date, datetime.date]
    cutoff: datetime.date


def make_labels(frame: pd.DataFrame, schema: AccountSchema, horizon_days: int) -> pd.Series:
    """True where the account churned in (as_of, as_of + horizon_days]; same index as frame."""
    as_of = frame[schema.date_column]
    churn = frame[schema.label_column]
    within = (churn > as_of) & (churn <= as_of + pd.Timedelta(days=horizon_days))
    return within.astype(bool).rename("churned")


def time_split(
    frame: pd.DataFrame, schema: AccountSchema, horizon_days: int, eval_weeks: int = 13
) -> TimeSplit:
    """Split ``frame`` by as-of date into training rows and a later evaluation period.

    The evaluation period is the last ``eval_weeks`` labelable as-of dates; training uses only
    as-of dates whose whole label window ends before the evaluation period starts.
    """
    if eval_weeks < 1:
        raise ValueError(f"eval_weeks must be at least 1, got {eval_weeks}")
    as_of = frame[schema.date_column]
    if as_of.dropna().empty:
        raise DataContractError(
            f"no account rows to train on: column '{schema.date_column}' has no dates"
        )
    horizon = pd.Timedelta(days=horizon_days)
    last = as_of.max()
    dates = pd.DatetimeIndex(np.sort(as_of[as_of + horizon <= last].unique()))
    needed = eval_weeks + MIN_TRAIN_WEEKS
    if len(dates) < needed:
        raise DataContractError(
            f"too little history to train and evaluate: {len(dates)} as-of dates have a known "
            f"{horizon_days}-day outcome (data ends {_day(last)}), need at least {needed} "
            f"({eval_weeks} to evaluate plus {MIN_TRAIN_WEEKS} to train, and the training "
            f"dates must end {horizon_days} days before evaluation starts)"
        )
    eval_dates = dates[-eval_weeks:]
    first_eval = pd.Timestamp(eval_dates[0])
    train_dates = dates[dates + horizon < first_eval]
    if len(train_dates) < MIN_TRAIN_WEEKS:
        raise DataContractError(
            f"too little history to train: {len(train_dates)} as-of dates end their "
            f"{horizon_days}-day label window before evaluation starts on {_day(first_eval)}, "
            f"need at least {MIN_TRAIN_WEEKS}; supply older snapshots or fewer eval weeks"
        )
    train = frame[as_of.isin(train_dates)]
    evaluate = frame[as_of.isin(eval_dates)]
    for name, rows, minimum in (
        ("training", train, MIN_TRAIN_POSITIVES),
        ("evaluation", evaluate, MIN_EVAL_POSITIVES),
    ):
        positives = int(make_labels(rows, schema, horizon_days).sum())
        if positives < minimum:
            raise DataContractError(
                f"too few churned accounts to learn from: {positives} positive {name} rows "
                f"(churn within {horizon_days} days, column '{schema.label_column}'), "
                f"need at least {minimum}"
            )
    return TimeSplit(
        train=train,
        evaluate=evaluate,
        train_window=(_day(train_dates[0]), _day(train_dates[-1])),
        eval_window=(_day(eval_dates[0]), _day(eval_dates[-1])),
        cutoff=_day(first_eval),
    )


def _day(value: pd.Timestamp) -> datetime.date:
    return pd.Timestamp(value).date()
