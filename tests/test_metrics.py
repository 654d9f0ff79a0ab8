"""Metrics: hand-computed small cases, edge cases, and agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from models import metrics
from models.metrics import CalibrationRow

# Scores 1..10; churners at 10, 9, 7, 5, 3. Of the 25 (churner, retained) pairs the churner is
# ranked higher in 5 + 5 + 4 + 3 + 2 = 19, so ROC AUC = 19 / 25 = 0.76.
AUC_SCORES = np.arange(1.0, 11.0)
AUC_LABELS = np.isin(AUC_SCORES, [10, 9, 7, 5, 3])


def test_roc_auc_counts_ordered_pairs() -> None:
    assert metrics.roc_auc(AUC_LABELS, AUC_SCORES) == pytest.approx(0.76)


def test_roc_auc_counts_a_tie_as_half() -> None:
    # Churners 0.9 and 0.5 vs the retained 0.5: one pair right, one tie -> (1 + 0.5) / 2.
    assert metrics.roc_auc([True, True, False], [0.9, 0.5, 0.5]) == 0.75
    assert metrics.roc_auc([1, 0], [0.5, 0.5]) == 0.5


def test_pr_auc_is_average_precision() -> None:
    # Ranked: churner (precision 1/1), retained, churner (precision 2/3), retained.
    y = [True, False, True, False]
    assert metrics.pr_auc(y, [0.9, 0.8, 0.7, 0.1]) == pytest.approx((1 + 2 / 3) / 2)


def test_brier_is_mean_squared_error() -> None:
    assert metrics.brier([True, False], [0.8, 0.4]) == pytest.approx((0.2**2 + 0.4**2) / 2)


def test_brier_refuses_a_score_that_is_not_a_probability() -> None:
    with pytest.raises(ValueError, match=r"Brier score needs probabilities in \[0, 1\]"):
        metrics.brier([True, False], [1.5, -0.2])


@pytest.mark.parametrize(
    "function",
    [
        metrics.roc_auc,
        metrics.pr_auc,
        metrics.top_decile,
        lambda y, s: metrics.precision_recall_at_k(y, s, 1),
    ],
)
def test_ranking_metrics_refuse_a_single_class(function) -> None:
    with pytest.raises(
        ValueError, match="needs both classes in y_true, but all 3 rows are negative"
    ):
        function([False, False, False], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="all 2 rows are positive"):
        function([True, True], [0.1, 0.2])


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match=r"score has shape \(2,\) but y_true has shape \(3,\)"):
        metrics.roc_auc([1, 0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="score has 1 NaN or infinite values"):
        metrics.roc_auc([1, 0], [0.1, np.nan])
    with pytest.raises(ValueError, match="y_true must be boolean or 0/1, got values"):
        metrics.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="non-empty 1-D array"):
        metrics.roc_auc([], [])


def test_top_decile_on_twenty_rows() -> None:
    # 20 rows -> the top 2 by score; one of them churned. Base rate 5/20 -> lift 0.5 / 0.25.
    score = np.linspace(0.0, 1.0, 20)
    y = np.zeros(20, dtype=bool)
    y[[19, 3, 4, 5, 6]] = True  # the top row (score 1.0) churned, the second (row 18) did not
    result = metrics.top_decile(y, score)
    assert result.size == 2
    assert result.precision == 0.5
    assert result.lift == pytest.approx(2.0)


def test_top_decile_rounds_up_and_breaks_ties_by_row_order() -> None:
    y = np.zeros(25, dtype=bool)
    y[[0, 1, 24]] = True
    flat = np.full(25, 0.3)
    result = metrics.top_decile(y, flat)
    # ceil(2.5) = 3 rows; with every score tied the first three rows are taken, every time.
    assert result.size == 3
    assert result.precision == pytest.approx(2 / 3)
    assert metrics.top_decile(y[::-1], flat).precision == pytest.approx(1 / 3)


def test_precision_recall_at_k() -> None:
    y = [True, False, True, False, True]
    s = [0.9, 0.8, 0.7, 0.2, 0.1]
    assert metrics.precision_recall_at_k(y, s, 1) == (1.0, 1 / 3)
    assert metrics.precision_recall_at_k(y, s, 3) == (2 / 3, 2 / 3)
    assert metrics.precision_recall_at_k(y, s, 5) == (3 / 5, 1.0)


@pytest.mark.parametrize("k", [0, 6])
def test_precision_recall_at_k_needs_k_within_the_rows(k: int) -> None:
    with pytest.raises(
        ValueError, match=rf"k must be between 1 and the number of rows \(5\), got {k}"
    ):
        metrics.precision_recall_at_k([1, 0, 1, 0, 1], [0.1] * 5, k)


def test_calibration_table_quantile_bins() -> None:
    p = np.arange(1, 11) / 10  # 0.1 .. 1.0
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1, 1, 1], dtype=bool)
    rows = metrics.calibration_table(y, p, bins=5)
    assert [row.count for row in rows] == [2, 2, 2, 2, 2]
    assert rows[0] == CalibrationRow(
        bin=1, lower=0.1, upper=0.2, count=2, mean_predicted=pytest.approx(0.15), observed_rate=0.0
    )
    assert rows[1].lower == 0.2
    assert rows[1].upper == 0.4
    assert [row.observed_rate for row in rows] == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert [row.mean_predicted for row in rows] == pytest.approx([0.15, 0.35, 0.55, 0.75, 0.95])


def test_calibration_table_collapses_ties_into_fewer_bins() -> None:
    p = [0.1] * 6 + [0.9] * 4
    y = [0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    rows = metrics.calibration_table(y, p, bins=10)
    assert [(row.lower, row.upper, row.count) for row in rows] == [(0.1, 0.1, 6), (0.1, 0.9, 4)]
    assert rows[0].observed_rate == pytest.approx(1 / 6)
    assert rows[1].observed_rate == 0.75


def test_calibration_table_with_a_single_value_has_one_bin() -> None:
    rows = metrics.calibration_table([True, False, False, False], [0.25] * 4)
    assert rows == [CalibrationRow(1, 0.25, 0.25, 4, 0.25, 0.25)]


def test_calibration_table_needs_a_bin() -> None:
    with pytest.raises(ValueError, match="bins must be at least 1, got 0"):
        metrics.calibration_table([True, False], [0.1, 0.2], bins=0)


def test_agreement_with_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(7)
    n = 1_000
    y = rng.random(n) < 0.2
    p = np.clip(0.2 + 0.3 * (y - 0.2) + rng.normal(0, 0.15, n), 0, 1).round(2)  # many ties
    assert metrics.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert metrics.pr_auc(y, p) == pytest.approx(average_precision_score(y, p))
    assert metrics.brier(y, p) == pytest.approx(brier_score_loss(y, p))

    rows = metrics.calibration_table(y, p)
    assert sum(row.count for row in rows) == n
    assert all(row.count > 0 for row in rows)
    assert sum(row.count * row.mean_predicted for row in rows) / n == pytest.approx(p.mean())
    assert sum(row.count * row.observed_rate for row in rows) / n == pytest.approx(y.mean())

    order = np.lexsort((np.arange(n), -p))  # by score descending, then row order
    for k in (1, 50, 100, 999):
        hits = y[order[:k]].sum()
        assert metrics.precision_recall_at_k(y, p, k) == (hits / k, hits / y.sum())
    decile = metrics.top_decile(y, p)
    assert decile.precision == y[order[:100]].mean()
