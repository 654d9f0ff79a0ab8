"""What really happened to each account, read from the account data, for precision figures.

A churn date says an account churned; the last as-of date an account appears in says how long
it was seen alive, so "did not churn within the horizon" is known only once the data reaches
past the horizon. `churnbot feedback outcomes` stores the result in Redis for the web process.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from models.contract import AccountSchema

if TYPE_CHECKING:  # pandas only where outcomes are computed, never in the web process
    import pandas as pd


@dataclass(frozen=True)
class Outcome:
    """An account's churn date (None if it has not churned) and the last date it was seen."""

    churn_date: dt.date | None
    last_seen: dt.date


def outcomes_from_accounts(frame: pd.DataFrame, schema: AccountSchema) -> dict[str, Outcome]:
    """One outcome per account of a validated account table (all as-of dates).

    A yes/no label gives no churn date: an account's churn is dated the day after its first
    row labelled yes (the label says it churned within the horizon after that row), the
    earliest it can have happened.
    """
    import pandas as pd

    churn = frame[schema.label_column]
    if not schema.label_is_date:
        positive = churn.astype("boolean").fillna(False).astype(bool)
        churn = (frame[schema.date_column] + pd.Timedelta(days=1)).where(positive)
    grouped = (
        frame.assign(_churn=churn)
        .groupby(frame[schema.id_column].astype(str))
        .agg(churn=("_churn", "min"), seen=(schema.date_column, "max"))
    )
    return {
        account: Outcome(
            churn_date=None if pd.isna(churn) else pd.Timestamp(churn).date(),
            last_seen=pd.Timestamp(seen).date(),
        )
        for account, churn, seen in grouped.itertuples()
    }


def churned_within(
    outcome: Outcome | None, reference: dt.date, horizon: dt.timedelta
) -> bool | None:
    """Did the account churn within ``horizon`` after ``reference``? None while unknown: no
    churn recorded yet and the data does not reach ``reference + horizon``."""
    if outcome is None:
        return None
    churn = outcome.churn_date
    if churn is not None and reference < churn <= reference + horizon:
        return True
    if outcome.last_seen >= reference + horizon or (churn is not None and churn > reference):
        return False
    return None
