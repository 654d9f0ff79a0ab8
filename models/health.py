"""Health checks that guard the promise: freshness, input validity, drift, integrity, accuracy.

Each check is a pure function returning a :class:`CheckResult` whose ``message`` a person can
read in Slack ("Input drifted: PSI 0.41 > 0.25 on active_users_change"). The bot decides what
a failure does (trip the kill switch, keep the last known good snapshot).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import numpy as np

from models.listing import Turnover

PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    message: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def check_freshness(as_of: dt.date, today: dt.date, max_age_days: int) -> CheckResult:
    """Data older than the SLA allows must not be published as live scores."""
    age = (today - as_of).days
    if age > max_age_days:
        return CheckResult(
            "freshness",
            False,
            f"Data is stale: as of {as_of}, {age} days old (limit {max_age_days}: "
            "health.max_data_age_days in product.yaml)",
            age,
            max_age_days,
        )
    days = "1 day" if age == 1 else f"{age} days"
    return CheckResult("freshness", True, f"Data as of {as_of} ({days} old)", age, max_age_days)


def check_input_validity(rejected: int, total: int, limit: float) -> CheckResult:
    """Too many rejected rows means the scores describe a book we only partly saw."""
    share = rejected / total if total else 1.0
    if share > limit:
        return CheckResult(
            "input_validity",
            False,
            f"Input data invalid: {rejected:,} of {total:,} rows rejected "
            f"({share:.1%} > {limit:.1%})",
            share,
            limit,
        )
    return CheckResult(
        "input_validity", True, f"{rejected:,} of {total:,} rows rejected", share, limit
    )


def check_completeness(turnover: Turnover, limit: float) -> CheckResult:
    """A snapshot that lists far fewer of the accounts than the one before it was cut short
    (an export job that stopped half way): its scores would drop the rest from every digest,
    so they are held back and the last good snapshot stays in use."""
    share = turnover.missing_share
    what = (
        f"the newest snapshot ({turnover.newest}) lists {turnover.kept:,} of the "
        f"{turnover.before:,} accounts the one before it ({turnover.previous}) listed"
    )
    if share > limit:
        return CheckResult(
            "completeness",
            False,
            f"Input incomplete: {what} ({share:.1%} missing > {limit:.1%}: "
            "health.max_dropped_share in product.yaml); the export looks cut short"
            f"{_two_dates(turnover)}",
            share,
            limit,
        )
    return CheckResult("completeness", True, f"{what[0].upper()}{what[1:]}", share, limit)


def _two_dates(turnover: Turnover) -> str:
    """Why a table of two dates is read as a snapshot cut short, not as accounts observed on
    dates of their own (models.listing), or "" when it has more dates."""
    if turnover.new is None:
        return ""
    listed = turnover.kept + turnover.new
    which = (
        f"every account the newest lists is on {turnover.previous} too"
        if not turnover.new
        else f"{turnover.kept:,} of the {listed:,} accounts the newest lists are on "
        f"{turnover.previous} too"
    )
    return (
        f" (the table has only these two dates, and {which}: it is read as a second snapshot, "
        "not as accounts observed on dates of their own)"
    )


def quantile_edges(values: np.ndarray, bins: int = 10) -> np.ndarray:
    """Interior bin edges from the reference's quantiles (duplicates dropped for ties)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return np.array([], dtype=float)
    return np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))


def proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values in each bin defined by ``edges`` (len(edges) + 1 bins)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(values.size, 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum (a - e) * ln(a / e), empty bins floored at 1e-4."""
    e = np.clip(np.asarray(expected, dtype=float), PSI_EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=float), PSI_EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def check_drift(
    what: str,
    reference: np.ndarray,
    current: np.ndarray,
    threshold: float,
    *,
    moved: str = "Scores",
) -> CheckResult:
    """Compare two binned distributions; PSI above the threshold is significant drift.
    ``moved``: what drifted, for the message (the scores, or an input the model reads)."""
    value = psi(reference, current)
    name = f"drift:{what}"
    if value > threshold:
        return CheckResult(
            name,
            False,
            f"{moved} drifted: PSI {value:.2f} > {threshold:.2f} on {what}",
            value,
            threshold,
        )
    return CheckResult(name, True, f"PSI {value:.2f} on {what}", value, threshold)


def check_model_integrity(problem: str | None) -> CheckResult:
    """``problem`` is the loader's error text, or None when the champion loaded cleanly."""
    if problem:
        return CheckResult("model_integrity", False, f"Model unusable: {problem}")
    return CheckResult("model_integrity", True, "Champion model loaded and verified")


def check_accuracy_floor(
    metric: str, value: float | None, floor: float, n: int, churned: int, min_churned: int
) -> CheckResult:
    """Once outcomes are known, a champion below the spec's floor must stop publishing; with
    fewer than ``min_churned`` churners among them the figure is noise, and says so."""
    if value is None:
        return CheckResult(
            "accuracy_floor", True, f"No outcomes known yet to measure {metric}", None, floor
        )
    on = f"on {n:,} accounts with known outcomes, {churned:,} churned"
    if churned < min_churned:
        return CheckResult(
            "accuracy_floor",
            True,
            f"{metric} {value:.3f} {on}: too few churned to judge against the floor "
            f"(accuracy_sla.min_churned: {min_churned} in product.yaml)",
            value,
            floor,
        )
    if value < floor:
        return CheckResult(
            "accuracy_floor",
            False,
            f"Accuracy below the floor: {metric} {value:.3f} < {floor:.3f} {on}",
            value,
            floor,
        )
    return CheckResult("accuracy_floor", True, f"{metric} {value:.3f} {on}", value, floor)
