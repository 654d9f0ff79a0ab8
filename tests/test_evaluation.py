"""The evaluation report: figures side by side with the baseline, JSON round trip, text table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import metrics
from models.evaluation import EvaluationReport, MetricSet, evaluate, format_report, save_report


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """300 accounts: a probability that ranks well and a baseline score that ranks worse."""
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.2
    proba = np.clip(0.2 + 0.4 * (y - 0.2) + rng.normal(0, 0.15, 300), 0.01, 0.99)
    baseline = 3.0 * y + rng.normal(0, 3.0, 300)  # a usage-decline score, not a probability
    return y, proba, baseline


@pytest.fixture
def report(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> EvaluationReport:
    y, proba, baseline = data
    return evaluate(y, proba, baseline, eval_window=("2025-01-01", "2025-03-31"))


def test_evaluate_matches_the_metric_functions(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], report: EvaluationReport
) -> None:
    y, proba, baseline = data
    assert report.n_rows == 300
    assert report.n_positive == int(y.sum())
    assert report.base_rate == pytest.approx(y.mean())
    assert report.model.roc_auc == metrics.roc_auc(y, proba)
    assert report.model.pr_auc == metrics.pr_auc(y, proba)
    assert report.model.brier == metrics.brier(y, proba)
    assert report.model.top_decile_lift == metrics.top_decile(y, proba).lift
    assert report.baseline.roc_auc == metrics.roc_auc(y, baseline)
    assert report.baseline.brier is None
    assert report.baseline_name == "usage-decline rule"
    assert report.model.at_k[100] == metrics.precision_recall_at_k(y, proba, 100)
    assert report.baseline.at_k[50] == metrics.precision_recall_at_k(y, baseline, 50)
    assert report.calibration == metrics.calibration_table(y, proba)
    assert report.eval_window == ("2025-01-01", "2025-03-31")


def test_k_larger_than_the_evaluation_set_is_left_out(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    y, proba, baseline = data
    report = evaluate(y, proba, baseline, ks=(500, 10, 50))
    assert list(report.model.at_k) == [10, 50]
    assert list(report.baseline.at_k) == [10, 50]


def test_beats_baseline(report: EvaluationReport) -> None:
    assert report.beats_baseline() == {"roc_auc": True, "pr_auc": True, "top_decile_lift": True}
    flipped = EvaluationReport(
        **{**report.__dict__, "model": report.baseline, "baseline": report.model}
    )
    assert flipped.beats_baseline() == {
        "roc_auc": False,
        "pr_auc": False,
        "top_decile_lift": False,
    }


def test_report_round_trips_through_json(report: EvaluationReport) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    assert data["model"]["at_k"]["50"] == list(report.model.at_k[50])
    assert EvaluationReport.from_dict(data) == report


def test_report_without_window_round_trips(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    report = evaluate(*data, baseline_name="last login")
    assert report.eval_window is None
    assert EvaluationReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_save_report_writes_json(report: EvaluationReport, tmp_path: Path) -> None:
    path = tmp_path / "reports" / "eval.json"
    save_report(report, path)
    assert EvaluationReport.from_dict(json.loads(path.read_text())) == report
    assert [p.name for p in path.parent.iterdir()] == ["eval.json"]


def test_evaluate_needs_aligned_inputs() -> None:
    with pytest.raises(
        ValueError, match=r"must have the same shape, got \(3,\), \(3,\) and \(2,\)"
    ):
        evaluate([1, 0, 1], [0.2, 0.1, 0.3], [1.0, 2.0])


def test_evaluate_refuses_a_single_class() -> None:
    with pytest.raises(ValueError, match="ROC AUC needs both classes"):
        evaluate([0, 0, 0], [0.2, 0.1, 0.3], [1.0, 2.0, 3.0])


def test_format_report_is_a_readable_table() -> None:
    model = MetricSet(0.84, 0.51, 0.12, 0.6, 3.0, {50: (0.6, 0.3)})
    baseline = MetricSet(0.7, 0.51, None, 0.4, 2.0, {50: (0.4, 0.2)})
    calibration = [
        metrics.CalibrationRow(1, 0.01, 0.1, 100, 0.05, 0.04),
        metrics.CalibrationRow(2, 0.1, 0.9, 100, 0.35, 0.36),
    ]
    report = EvaluationReport(
        200,
        40,
        0.2,
        model,
        baseline,
        "usage-decline rule",
        calibration,
        ("2025-01-01", "2025-03-31"),
    )
    text = format_report(report)
    assert text.splitlines()[0] == (
        "Evaluation on 200 account rows (2025-01-01 to 2025-03-31): 40 churned, base rate 20.0%"
    )
    assert "Baseline: usage-decline rule" in text
    lines = text.splitlines()
    table = {line.split("  ")[0]: line.split() for line in lines}
    assert table["ROC AUC"][-3:] == ["0.840", "0.700", "yes"]
    assert table["PR AUC (average precision)"][-3:] == ["0.510", "0.510", "tie"]
    assert table["Top-decile lift"][-3:] == ["3.000", "2.000", "yes"]
    assert table["Brier score (lower is better)"][-3:] == ["0.120", "n/a", "n/a"]
    assert any(line.split() == ["50", "0.600", "0.300", "0.400", "0.200"] for line in lines)
    assert any(line.split() == ["2", "0.100-0.900", "100", "0.350", "0.360"] for line in lines)
    assert "Calibration (model probability vs observed churn rate per quantile bin)" in text
