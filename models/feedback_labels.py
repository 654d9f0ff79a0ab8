"""CSM corrections as training labels and weights: what `churnbot train --with-feedback` uses.

Why corrections carry information the account data lacks: a CRM records churn late or not at
all (the account goes quiet, the contract lapses, nobody closes it), and those rows train the
model as "retained". A CSM who answers "already churned" on a digest knows better. So:

* "already churned", reported at time *t*: the account's rows whose label window reaches *t*
  (as-of in [*t* - horizon, the as-of shown]) become positive; where the data already says
  churned, the report confirms it. A report the data contradicts (the account is still in
  the data more than four weeks after it) is taken for a mistake and not used;
* "renewed" and "not at risk" confirm a retained row (the shown one, and for "renewed" the
  rows whose window reaches *t*); they never overrule a churn the data records (a recorded
  churn is a fact, a belief is not);
* "at risk, as shown" confirms a row the data says churned;
* every row a report sets or confirms gets ``confirmed_weight``; the latest report on a row
  wins; thumbs and "action done" say nothing about the outcome and are not used.

Only rows the time split trains on are touched (``models.labels.time_split``), so the held-out
period stays what the data says and runs with and without feedback are compared fairly.

Input: the events table of the feedback stream with at least ``event_id``, ``at`` (UTC
timestamps), ``kind``, ``account_id``, ``as_of`` (ISO date or empty) and ``real_state``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd

from models.contract import AccountSchema
from models.labels import make_labels, split
from models.spec import TrainingSettings

EVENT_COLUMNS = ("event_id", "at", "kind", "account_id", "as_of", "real_state")
CONFIRMING = {"renewed": False, "not_at_risk": False, "at_risk": True}
#: An account still in the data this long after a report that it churned is still a customer:
#: the report is taken for a mistake.
STILL_THERE = pd.Timedelta(days=28)


@dataclass(frozen=True)
class FeedbackLabels:
    """Labels set by CSMs (bool, by frame index) and row weights (float, by frame index)."""

    labels: pd.Series
    weights: pd.Series
    corrections: int
    used: tuple[str, ...]
    flipped: int
    ignored: dict[str, int] = field(default_factory=dict)

    def notes(self) -> dict[str, Any]:
        """What the model card records: how many corrections, which were used, and why the
        others were not."""
        return {
            "corrections": self.corrections,
            "used": len(self.used),
            "used_event_ids": list(self.used),
            "labels_flipped": self.flipped,
            "rows_weighted": len(self.weights),
            "ignored": dict(self.ignored),
        }


def _rows_for(
    account_rows: pd.DataFrame, date_column: str, as_of: object, at: pd.Timestamp
) -> pd.Timestamp | None:
    """The as-of date of the row the CSM saw: the one named by the event, else the latest
    before the answer."""
    dates = account_rows[date_column]
    if isinstance(as_of, str) and as_of:
        shown = pd.Timestamp(as_of)
        return shown if (dates == shown).any() else None
    before = dates[dates <= at]
    return before.max() if not before.empty else None


def feedback_labels(
    events: pd.DataFrame,
    frame: pd.DataFrame,
    schema: AccountSchema,
    *,
    horizon_days: int,
    confirmed_weight: float,
    settings: TrainingSettings | None = None,
) -> FeedbackLabels:
    """Labels and weights for the training rows of ``frame`` from the corrections in
    ``events`` (see the module docstring for the rules)."""
    missing = sorted(set(EVENT_COLUMNS) - set(events.columns))
    if missing:
        raise ValueError(f"The events table lacks the columns {missing}; it needs {EVENT_COLUMNS}.")
    corrections = events[events["kind"] == "correction"].sort_values("at")
    train = split(frame, schema, horizon_days, settings or TrainingSettings()).train
    data_labels = make_labels(train, schema, horizon_days)
    by_account = {str(k): rows for k, rows in train.groupby(train[schema.id_column].astype(str))}
    frame_last_seen = frame.groupby(frame[schema.id_column].astype(str))[schema.date_column].max()
    horizon = pd.Timedelta(days=horizon_days)
    decided: dict[object, tuple[bool, str]] = {}  # row index -> (label, event id), latest wins
    ignored: dict[str, int] = {}

    def skip(reason: str) -> None:
        ignored[reason] = ignored.get(reason, 0) + 1

    for event in corrections.itertuples(index=False):
        rows = by_account.get(str(event.account_id))
        # pandas-stubs types a row's cells as any scalar; "at" holds timestamps (or ISO text).
        at = pd.Timestamp(cast("pd.Timestamp | str", event.at))
        at = at.tz_convert(None) if at.tzinfo is not None else at  # as-of dates are naive UTC
        shown = None if rows is None else _rows_for(rows, schema.date_column, event.as_of, at)
        if rows is None or shown is None:
            skip("not a training row (too recent, held out, or unknown account)")
            continue
        dates = rows[schema.date_column]
        reached = rows[(dates >= at - horizon) & (dates <= shown)].index
        state = event.real_state
        if state == "churned":
            if frame_last_seen[str(event.account_id)] > at + STILL_THERE:
                skip("contradicts the account data")
                continue
            targets = [(index, True) for index in reached]
        else:
            shown_index = rows[dates == shown].index[0]
            want = CONFIRMING[str(state)]
            if bool(data_labels[shown_index]) != want:
                skip("contradicts the account data")
                continue
            chosen = reached if state == "renewed" else [shown_index]
            targets = [(index, want) for index in chosen if bool(data_labels[index]) == want]
        if not targets:
            skip("outside the horizon")
            continue
        for index, label in targets:
            decided[index] = (label, str(event.event_id))
    labels = pd.Series({index: label for index, (label, _) in decided.items()}, dtype=bool)
    flipped = int((labels != data_labels.reindex(labels.index)).sum()) if len(labels) else 0
    return FeedbackLabels(
        labels=labels,
        weights=pd.Series(confirmed_weight, index=labels.index, dtype=float),
        corrections=len(corrections),
        used=tuple(dict.fromkeys(event_id for _, event_id in decided.values())),
        flipped=flipped,
        ignored=ignored,
    )
