"""The measurements behind the health checks of a scoring run.

Pure functions over frames and arrays: which rows have known outcomes by now, how well the
champion ranks them, and how far scores and key features moved. ``models.health`` turns the
figures into pass/fail results with readable reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from models.contract import AccountSchema
from models.health import CheckResult, check_drift, proportions, quantile_edges
from models.labels import make_labels
from models.metrics import pr_auc, roc_auc, top_decile

KNOWN_WINDOW_DAYS = 7
SLA_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": roc_auc,
    "pr_auc": pr_auc,
    "top_decile_precision": lambda y, p: top_decile(y, p).precision,
}


def known_outcome_rows(
    frame: pd.DataFrame, schema: AccountSchema, horizon_days: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """The newest week of rows whose whole label window has passed, with their labels.

    These are the predictions whose truth is known now, so the champion's accuracy on them
    is an honest, current check of the accuracy SLA. A week of dates, not one date, so
    accounts observed on their own days are judged together like one weekly snapshot.
    """
    dates = frame[schema.date_column].to_numpy(dtype="datetime64[ns]")
    window = known_window(dates, horizon_days)
    if window is None:
        return frame.iloc[0:0], np.zeros(0, dtype=bool)
    rows = frame[in_window(dates, window)]
    if schema.label_is_date:
        churned = rows[schema.label_column]
        rows = rows[churned.isna() | (churned > rows[schema.date_column])]
    return rows, make_labels(rows, schema, horizon_days).to_numpy(dtype=bool)


def known_window(
    dates: np.ndarray, horizon_days: int
) -> tuple[np.datetime64, np.datetime64] | None:
    """The dates of :func:`known_outcome_rows`, as (first excluded, last included), or None
    when no row's outcome is known yet. NaT dates are ignored.

    Shared with the loader, which reads only these rows (and each account's newest) for a
    scoring run, so the window it reads is the window the accuracy check judges.
    """
    dates = dates[~np.isnat(dates)]
    if not dates.size:
        return None
    known = dates[dates <= dates.max() - np.timedelta64(horizon_days, "D")]
    if not known.size:
        return None
    newest = known.max()
    return newest - np.timedelta64(KNOWN_WINDOW_DAYS, "D"), newest


def in_window(dates: np.ndarray, window: tuple[np.datetime64, np.datetime64]) -> np.ndarray:
    """Which ``dates`` fall in a :func:`known_window`."""
    after, last = window
    return (dates > after) & (dates <= last)


def sla_metric(metric: str, labels: np.ndarray, risk: np.ndarray) -> float | None:
    """The SLA metric on known outcomes, or None when one class is missing."""
    if labels.size == 0 or labels.all() or not labels.any():
        return None
    return float(SLA_METRICS[metric](labels, risk))


def drift_checks(
    reference: Mapping[str, Mapping[str, Sequence[float]]],
    features: pd.DataFrame,
    risk: np.ndarray,
    previous_risk: np.ndarray | None,
    *,
    names: Sequence[str],
    threshold: float,
) -> list[CheckResult]:
    """PSI of the risk against the previous snapshot (or the model's evaluation scores when
    there is none) and of each key feature against the model's training reference."""
    if previous_risk is not None and previous_risk.size:
        edges = quantile_edges(previous_risk)
        expected = proportions(previous_risk, edges)
    else:
        edges = np.asarray(reference["risk"]["edges"])
        expected = np.asarray(reference["risk"]["proportions"])
    results = [check_drift("risk score", expected, proportions(risk, edges), threshold)]
    for name in names:
        bins = reference[name]
        current = proportions(features[name].to_numpy(dtype=float), np.asarray(bins["edges"]))
        results.append(
            check_drift(name, np.asarray(bins["proportions"]), current, threshold, moved="Input")
        )
    return results
