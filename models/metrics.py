"""Ranking and calibration metrics for a churn score, as pure functions of (labels, scores).

CSMs act on the top of a ranked list, so the figures that matter are ranking ones (ROC AUC,
average precision, precision in the flagged top decile, precision/recall at a working-list
size k) plus calibration, because the digest shows the probability itself. Each function
validates its inputs and refuses a single-class label vector where the metric is undefined,
instead of returning NaN that would later compare as "worse" or "better" silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

TOP_DECILE_FRACTION = 0.1


@dataclass(frozen=True)
class CalibrationRow:
    """One quantile bin: the scores in ``(lower, upper]`` (the first bin includes ``lower``)."""

    bin: int
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class TopDecile:
    """Precision among the top 10% by score and its lift over the base rate."""

    precision: float
    lift: float
    size: int


def _labels(y_true: ArrayLike) -> NDArray[np.bool_]:
    y = np.asarray(y_true)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array, got shape {y.shape}")
    if y.dtype != np.bool_:
        values = set(np.unique(y).tolist())
        if not values <= {0, 1}:
            raise ValueError(
                f"y_true must be boolean or 0/1, got values {sorted(values, key=str)[:5]}"
            )
    return y.astype(bool)


def _inputs(y_true: ArrayLike, score: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    y = _labels(y_true)
    s = np.asarray(score, dtype=float)
    if s.shape != y.shape:
        raise ValueError(f"score has shape {s.shape} but y_true has shape {y.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"score has {int((~np.isfinite(s)).sum())} NaN or infinite values")
    return y, s


def _require_both_classes(y: NDArray[np.bool_], metric: str) -> None:
    positives = int(y.sum())
    if positives in (0, y.size):
        only = "positive" if positives else "negative"
        raise ValueError(
            f"{metric} needs both classes in y_true, but all {y.size} rows are {only}: "
            "evaluate on a period long enough to contain churned and retained accounts"
        )


def _rank(score: NDArray[np.float64]) -> NDArray[np.intp]:
    """Row indices by descending score, ties kept in row order so results are reproducible."""
    return np.argsort(-score, kind="stable")


def roc_auc(y_true: ArrayLike, score: ArrayLike) -> float:
    """Probability that a random churner is ranked above a random non-churner (ties count half)."""
    y, s = _inputs(y_true, score)
    _require_both_classes(y, "ROC AUC")
    return float(roc_auc_score(y, s))


def pr_auc(y_true: ArrayLike, score: ArrayLike) -> float:
    """Average precision: the area under the precision-recall curve, sensitive to the rare class."""
    y, s = _inputs(y_true, score)
    _require_both_classes(y, "PR AUC")
    return float(average_precision_score(y, s))


def brier(y_true: ArrayLike, probability: ArrayLike) -> float:
    """Mean squared error of probabilities; meaningless for a score that is not a probability."""
    y, p = _inputs(y_true, probability)
    if p.min() < 0 or p.max() > 1:
        raise ValueError(
            f"Brier score needs probabilities in [0, 1], got values from {p.min()} to {p.max()}"
        )
    return float(brier_score_loss(y, p))


def calibration_table(
    y_true: ArrayLike, probability: ArrayLike, bins: int = 10
) -> list[CalibrationRow]:
    """Predicted vs observed churn rate per quantile bin of the probability.

    Quantile bins keep every row populated even when most probabilities are small. Bin i ends
    at the ceil(n * i / bins)-th smallest probability, in integer arithmetic so 10 rows in 5
    bins split 2/2/2/2/2 rather than by float rounding. Equal upper edges merge, so heavy ties
    or fewer distinct values than ``bins`` give fewer bins, never empty ones: every bin holds
    at least the row at its upper edge.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    y, p = _inputs(y_true, probability)
    ordered = np.sort(p)
    uppers = np.unique(ordered[[-(-p.size * i // bins) - 1 for i in range(1, bins + 1)]])
    lowers = np.concatenate([ordered[:1], uppers[:-1]])
    index = np.searchsorted(uppers, p, side="left")
    rows = []
    for i, (lower, upper) in enumerate(zip(lowers, uppers, strict=True)):
        mask = index == i
        rows.append(
            CalibrationRow(
                bin=i + 1,
                lower=float(lower),
                upper=float(upper),
                count=int(mask.sum()),
                mean_predicted=float(p[mask].mean()),
                observed_rate=float(y[mask].mean()),
            )
        )
    return rows


def top_decile(y_true: ArrayLike, score: ArrayLike) -> TopDecile:
    """Precision among the ceil(10%) highest-scored rows, and lift = precision / base rate.

    This is the list a CSM team can actually work through; lift says how much better it is
    than picking accounts at random.
    """
    y, s = _inputs(y_true, score)
    _require_both_classes(y, "top-decile lift")
    size = max(1, math.ceil(TOP_DECILE_FRACTION * y.size))
    precision = float(y[_rank(s)[:size]].mean())
    return TopDecile(precision=precision, lift=precision / float(y.mean()), size=size)


def precision_recall_at_k(y_true: ArrayLike, score: ArrayLike, k: int) -> tuple[float, float]:
    """Precision and recall of the k highest-scored rows (a digest of k accounts)."""
    y, s = _inputs(y_true, score)
    if not 1 <= k <= y.size:
        raise ValueError(f"k must be between 1 and the number of rows ({y.size}), got {k}")
    _require_both_classes(y, "precision/recall at k")
    hits = int(y[_rank(s)[:k]].sum())
    return hits / k, hits / int(y.sum())
