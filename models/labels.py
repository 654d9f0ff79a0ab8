"""Labels as exports have them, and a leakage-free split by calendar date.

The label column is either a churn date (positive when the account churned within
``horizon_days`` after the row's as-of date) or a yes/no column that already means "churned
within the horizon after this row" (for a single snapshot, simply "churned"). Two things keep
the future out of training:

* censoring: a row whose label window reaches past the last as-of date in the data has an
  outcome nobody knows yet, so it is neither positive nor negative: it is dropped;
* a gap: every training row's label window ends before the first evaluation date, so no
  churn that happens during the evaluation period can label a training row.

Dates are calendar dates, not "snapshots": an export whose accounts are observed on their own
days splits exactly like one with a shared weekly date.

When there is no later period to evaluate on (one snapshot, or, with ``evaluation: auto``,
dates spanning too little time for one), the model is judged by cross-validation instead: on
the rows whose outcome is known (the censoring above), with all of an account's rows in one
fold, so no fold is judged on an account whose other rows it trained on.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from models.contract import AccountSchema
from models.errors import DataContractError
from models.spec import TrainingSettings

Method = Literal["time", "cross_validation"]
#: What a single-snapshot evaluation cannot check, said wherever its figures are shown.
CV_CAVEAT = (
    "no forward-in-time check was possible (one snapshot, or too little history for a later "
    "period): the figures come from stratified cross-validation over the same dates, so they "
    "hold only if every feature describes the account before its outcome; a feature recorded "
    "after churn would look predictive here and fail in use"
)


class TooLittleHistory(DataContractError):
    """The dates span ``span_days``, too little for a training period, a gap and a later
    evaluation period (about ``needed_days``); ``evaluation: auto`` cross-validates instead."""

    def __init__(self, message: str, *, span_days: int, needed_days: int) -> None:
        super().__init__(message)
        self.span_days, self.needed_days = span_days, needed_days


@dataclass(frozen=True)
class TimeSplit:
    """Training and evaluation rows; windows are (first, last) as-of dates, inclusive.

    ``cutoff`` is the first evaluation date: every training label window ends before it. For
    ``method="cross_validation"`` both frames hold every row whose outcome is known, the
    windows are their first and last dates, and ``because`` says why no later period was used
    when the data has more than one date.
    """

    train: pd.DataFrame
    evaluate: pd.DataFrame
    train_window: tuple[datetime.date, datetime.date]
    eval_window: tuple[datetime.date, datetime.date]
    cutoff: datetime.date
    method: Method = "time"
    because: str | None = None


def make_labels(frame: pd.DataFrame, schema: AccountSchema, horizon_days: int) -> pd.Series:
    """True where the account churned within the horizon after the row; same index as frame."""
    label = frame[schema.label_column]
    if not schema.label_is_date:
        return label.astype("boolean").fillna(False).astype(bool).rename("churned")
    as_of = frame[schema.date_column]
    within = (label > as_of) & (label <= as_of + pd.Timedelta(days=horizon_days))
    return within.astype(bool).rename("churned")


def split_method(frame: pd.DataFrame, schema: AccountSchema, settings: TrainingSettings) -> Method:
    """``training.evaluation`` resolved: ``auto`` is time unless the data has one date."""
    if settings.evaluation != "auto":
        return settings.evaluation
    return "time" if frame[schema.date_column].nunique() > 1 else "cross_validation"


def split(
    frame: pd.DataFrame, schema: AccountSchema, horizon_days: int, settings: TrainingSettings
) -> TimeSplit:
    """The split ``settings`` asks for (see :func:`split_method`)."""
    if frame.empty:
        raise DataContractError("no account rows to train on: the data has no valid rows")
    because = None
    if split_method(frame, schema, settings) == "time":
        try:
            return time_split(frame, schema, horizon_days, settings)
        except TooLittleHistory as exc:
            if settings.evaluation != "auto":
                raise
            because = (
                f"the as-of dates span {exc.span_days} days and a later period to evaluate "
                f"on needs about {exc.needed_days} (training.eval_days and "
                "training.min_train_dates in product.yaml set it)"
            )
    return _cross_validation_split(frame, schema, horizon_days, settings, because)


def _cross_validation_split(
    frame: pd.DataFrame,
    schema: AccountSchema,
    horizon_days: int,
    settings: TrainingSettings,
    because: str | None,
) -> TimeSplit:
    """Every row whose outcome is known, for cross-validation. One date: every row (the
    export's labels are all there is). Several: the rows whose label window ends by the last
    date, as in :func:`time_split`."""
    as_of = frame[schema.date_column]
    last = as_of.max()
    if as_of.nunique() > 1:
        frame = frame[as_of + pd.Timedelta(days=horizon_days) <= last]
        if frame.empty:
            raise DataContractError(
                f"no row's outcome is known yet: every as-of date is within horizon_days="
                f"{horizon_days} of the last one ({_day(last)}), so whether those accounts "
                "churned within the horizon is not in the data; supply older rows or lower "
                "horizon_days in product.yaml"
            )
    labels = make_labels(frame, schema, horizon_days)
    _enough(labels, "churned", settings.min_train_positives, schema, horizon_days)
    _enough(~labels, "retained", settings.cv_folds, schema, horizon_days)
    window = (_day(frame[schema.date_column].min()), _day(frame[schema.date_column].max()))
    return TimeSplit(
        frame, frame, window, window, window[1], method="cross_validation", because=because
    )


def time_split(
    frame: pd.DataFrame,
    schema: AccountSchema,
    horizon_days: int,
    settings: TrainingSettings | None = None,
) -> TimeSplit:
    """Split ``frame`` by as-of date into training rows and a later evaluation period.

    The evaluation period is the last ``eval_days`` calendar days of dates whose outcome is
    known; training uses only dates whose whole label window ends before it starts.
    """
    settings = settings or TrainingSettings()
    as_of = frame[schema.date_column]
    if as_of.dropna().empty:
        raise DataContractError(
            f"no account rows to train on: column '{schema.date_column}' has no dates"
        )
    horizon = pd.Timedelta(days=horizon_days)
    first, last = as_of.min(), as_of.max()
    dates = pd.DatetimeIndex(np.sort(as_of[as_of + horizon <= last].unique()))
    eval_start = (dates[-1] if len(dates) else last) - pd.Timedelta(days=settings.eval_days - 1)
    eval_dates = dates[dates >= eval_start]
    train_dates = dates[dates + horizon < (eval_dates[0] if len(eval_dates) else eval_start)]
    if len(eval_dates) == 0 or len(train_dates) < settings.min_train_dates:
        raise _too_little_history(first, last, dates, horizon_days, settings)
    first_eval = pd.Timestamp(eval_dates[0])
    train = frame[as_of.isin(train_dates)]
    evaluate = frame[as_of.isin(eval_dates)]
    _enough(
        make_labels(train, schema, horizon_days),
        "churned training",
        settings.min_train_positives,
        schema,
        horizon_days,
    )
    _enough(
        make_labels(evaluate, schema, horizon_days),
        "churned evaluation",
        settings.min_eval_positives,
        schema,
        horizon_days,
    )
    return TimeSplit(
        train=train,
        evaluate=evaluate,
        train_window=(_day(train_dates[0]), _day(train_dates[-1])),
        eval_window=(_day(eval_dates[0]), _day(eval_dates[-1])),
        cutoff=_day(first_eval),
    )


def _too_little_history(
    first: pd.Timestamp,
    last: pd.Timestamp,
    labelable: pd.DatetimeIndex,
    horizon_days: int,
    settings: TrainingSettings,
) -> TooLittleHistory:
    """The true minimum for this data: a span of days, and the settings that change it."""
    cadence = (
        int(np.median(np.diff(labelable).astype("timedelta64[D]").astype(int)))
        if len(labelable) > 1
        else 7
    )
    needed = horizon_days + settings.eval_days + horizon_days + settings.min_train_dates * cadence
    span = (last - first).days + 1
    return TooLittleHistory(
        f"too little history to train and evaluate by date: the as-of dates span "
        f"{span} days ({_day(first)} to {_day(last)}); with "
        f"horizon_days={horizon_days}, training.eval_days={settings.eval_days} and "
        f"training.min_train_dates={settings.min_train_dates} about {needed} days are needed "
        f"({horizon_days} at the end whose outcome is not known yet, {settings.eval_days} to "
        f"evaluate, {horizon_days} between training and evaluation, and "
        f"{settings.min_train_dates} training dates {cadence} days apart). Supply older data, "
        "lower training.eval_days or training.min_train_dates in product.yaml, or set "
        "training.evaluation: auto to judge the model by cross-validation when there is no "
        "later period",
        span_days=span,
        needed_days=needed,
    )


def _enough(
    labels: pd.Series, what: str, minimum: int, schema: AccountSchema, horizon_days: int
) -> None:
    count = int(labels.sum())
    if count < minimum:
        meaning = f"churn within {horizon_days} days" if schema.label_is_date else "label true"
        raise DataContractError(
            f"too few {what} rows to learn from: {count} ({meaning}, column "
            f"'{schema.label_column}'), need at least {minimum} (training.min_train_positives "
            "and training.min_eval_positives in product.yaml set the minimums)"
        )


def _day(value: pd.Timestamp) -> datetime.date:
    return pd.Timestamp(value).date()
