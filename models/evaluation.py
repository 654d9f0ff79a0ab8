"""The evaluation report: the model against a simple baseline on a later, held-out period.

A churn model is only worth shipping if it beats the rule a CSM would use anyway (a usage
decline), so every figure is reported side by side with that baseline. The report is stored
in the model card as JSON, which is why it round-trips through :meth:`EvaluationReport.to_dict`.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from models import metrics
from models.band_check import BandRow, band_rows, suggested_bands
from models.labels import CV_CAVEAT
from models.metrics import CalibrationRow
from models.spec import RiskBands

HEADLINE_METRICS = ("roc_auc", "pr_auc", "top_decile_lift")
#: A segment with fewer churners (or fewer retained accounts) than this is too thin to judge.
MIN_SEGMENT_CLASS = 10
TIME_SPLIT = "time"


@dataclass(frozen=True)
class MetricSet:
    """The figures for one scorer; ``brier`` is None for a score that is not a probability."""

    roc_auc: float
    pr_auc: float
    brier: float | None
    top_decile_precision: float
    top_decile_lift: float
    at_k: dict[int, tuple[float, float]]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # JSON object keys are strings: k becomes "50" and is turned back into an int on load.
        data["at_k"] = {str(k): list(pr) for k, pr in self.at_k.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricSet:
        at_k = {int(k): (float(p), float(r)) for k, (p, r) in data["at_k"].items()}
        return cls(**{**data, "at_k": at_k})


@dataclass(frozen=True)
class SegmentRow:
    """The model on one segment's evaluation rows; ``roc_auc`` is None when too thin."""

    segment: str
    rows: int
    churned: int
    roc_auc: float | None
    mean_predicted: float
    observed_rate: float

    @property
    def thin(self) -> bool:
        return self.roc_auc is None


@dataclass(frozen=True)
class EvaluationReport:
    """Model and baseline metrics on one evaluation set, plus the model's calibration."""

    n_rows: int
    n_positive: int
    base_rate: float
    model: MetricSet
    baseline: MetricSet
    baseline_name: str
    calibration: list[CalibrationRow]
    eval_window: tuple[str, str] | None
    method: str = TIME_SPLIT
    by_segment: list[SegmentRow] = field(default_factory=list)
    #: Why a book with several dates was cross-validated (too little history), if it was.
    because: str | None = None
    #: The evaluation rows in each risk band of product.yaml (models.band_check).
    by_band: list[BandRow] = field(default_factory=list)
    #: Thresholds (high, medium) that would flag the usual shares of these rows.
    suggested_bands: tuple[float, float] | None = None

    @property
    def caveat(self) -> str | None:
        """What these figures cannot show (a single snapshot has no later period)."""
        return None if self.method == TIME_SPLIT else CV_CAVEAT

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (tuples become lists, k keys become strings)."""
        return {
            "n_rows": self.n_rows,
            "n_positive": self.n_positive,
            "base_rate": self.base_rate,
            "model": self.model.to_dict(),
            "baseline": self.baseline.to_dict(),
            "baseline_name": self.baseline_name,
            "calibration": [asdict(row) for row in self.calibration],
            "eval_window": list(self.eval_window) if self.eval_window else None,
            "method": self.method,
            "caveat": self.caveat,
            "by_segment": [asdict(row) for row in self.by_segment],
            "because": self.because,
            "by_band": [asdict(row) for row in self.by_band],
            "suggested_bands": list(self.suggested_bands) if self.suggested_bands else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationReport:
        window, pair = data["eval_window"], data.get("suggested_bands")
        return cls(
            n_rows=data["n_rows"],
            n_positive=data["n_positive"],
            base_rate=data["base_rate"],
            model=MetricSet.from_dict(data["model"]),
            baseline=MetricSet.from_dict(data["baseline"]),
            baseline_name=data["baseline_name"],
            calibration=[CalibrationRow(**row) for row in data["calibration"]],
            eval_window=(window[0], window[1]) if window else None,
            method=data.get("method", TIME_SPLIT),
            by_segment=[SegmentRow(**row) for row in data.get("by_segment", [])],
            because=data.get("because"),
            by_band=[BandRow(**row) for row in data.get("by_band", [])],
            suggested_bands=(pair[0], pair[1]) if pair else None,
        )

    def beats_baseline(self) -> dict[str, bool]:
        """For each headline metric, whether the model is strictly better than the baseline."""
        return {
            name: getattr(self.model, name) > getattr(self.baseline, name)
            for name in HEADLINE_METRICS
        }


def _metric_set(
    y: np.ndarray, score: np.ndarray, ks: Iterable[int], *, probability: bool
) -> MetricSet:
    roc_auc = metrics.roc_auc(y, score)  # first, so bad labels are reported by the headline
    decile = metrics.top_decile(y, score)
    return MetricSet(
        roc_auc=roc_auc,
        pr_auc=metrics.pr_auc(y, score),
        brier=metrics.brier(y, score) if probability else None,
        top_decile_precision=decile.precision,
        top_decile_lift=decile.lift,
        at_k={k: metrics.precision_recall_at_k(y, score, k) for k in ks},
    )


def evaluate(
    y_true: ArrayLike,
    model_proba: ArrayLike,
    baseline_score: ArrayLike,
    *,
    baseline_name: str = "usage-decline rule",
    ks: Iterable[int] = (50, 100, 200),
    eval_window: tuple[str, str] | None = None,
    method: str = TIME_SPLIT,
    segments: ArrayLike | None = None,
    because: str | None = None,
    bands: RiskBands | None = None,
) -> EvaluationReport:
    """Score the model's probabilities and the baseline's ranking score on the same rows.

    Values of k larger than the evaluation set are left out rather than failing, so a small
    demo book still gets a report; the baseline is a ranking rule, so it has no Brier score.
    """
    y = np.asarray(y_true)
    proba = np.asarray(model_proba, dtype=float)
    baseline = np.asarray(baseline_score, dtype=float)
    if not y.shape == proba.shape == baseline.shape:
        raise ValueError(
            f"y_true, model_proba and baseline_score must have the same shape, got "
            f"{y.shape}, {proba.shape} and {baseline.shape}"
        )
    usable_ks = sorted(k for k in set(ks) if k <= y.size)
    # The metric functions validate the labels (boolean or 0/1) before they are counted here.
    model = _metric_set(y, proba, usable_ks, probability=True)
    baseline_metrics = _metric_set(y, baseline, usable_ks, probability=False)
    positives = int(y.astype(bool).sum())
    return EvaluationReport(
        n_rows=int(y.size),
        n_positive=positives,
        base_rate=positives / y.size,
        model=model,
        baseline=baseline_metrics,
        baseline_name=baseline_name,
        calibration=metrics.calibration_table(y, proba),
        eval_window=eval_window,
        method=method,
        because=because,
        by_segment=[] if segments is None else _by_segment(y, proba, np.asarray(segments)),
        by_band=[] if bands is None else band_rows(y, proba, bands),
        suggested_bands=None if bands is None else suggested_bands(proba),
    )


def _by_segment(y: np.ndarray, proba: np.ndarray, segments: np.ndarray) -> list[SegmentRow]:
    """Rows, churners, ROC AUC and calibration per segment; AUC only where both outcomes
    have at least MIN_SEGMENT_CLASS rows."""
    rows = []
    churned = y.astype(bool)
    labels = np.array([str(s) for s in segments], dtype=object)
    for segment in sorted(set(labels)):
        mask = labels == segment
        positives = int(churned[mask].sum())
        negatives = int(mask.sum()) - positives
        judged = min(positives, negatives) >= MIN_SEGMENT_CLASS
        rows.append(
            SegmentRow(
                segment=segment,
                rows=int(mask.sum()),
                churned=positives,
                roc_auc=metrics.roc_auc(churned[mask], proba[mask]) if judged else None,
                mean_predicted=float(proba[mask].mean()),
                observed_rate=positives / int(mask.sum()),
            )
        )
    return rows


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]


def _better(model: float | None, baseline: float | None, *, higher_is_better: bool) -> str:
    if model is None or baseline is None:
        return "n/a"
    if model == baseline:
        return "tie"
    return "yes" if (model > baseline) == higher_is_better else "no"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_report(report: EvaluationReport) -> str:
    """A plain-text report for the terminal and the model card: metrics, top-k, calibration."""
    window = f"{report.eval_window[0]} to {report.eval_window[1]}" if report.eval_window else "-"
    lines = [
        # Rows, not accounts: a weekly book has one row per account and date.
        f"Evaluation on {report.n_rows:,} account rows ({window}): {report.n_positive:,} churned, "
        f"base rate {report.base_rate:.1%}",
        f"Baseline: {report.baseline_name}",
        "",
    ]
    if report.caveat:
        lines[1:1] = [
            f"Evaluated by cross-validation, not on a later period, because {report.because}. "
            f"{report.caveat[0].upper()}{report.caveat[1:]}."
            if report.because
            else f"Evaluated by cross-validation, not on a later period: {report.caveat}."
        ]
    metric_rows = []
    for name, label, higher in (
        ("roc_auc", "ROC AUC", True),
        ("pr_auc", "PR AUC (average precision)", True),
        ("top_decile_precision", "Top-decile precision", True),
        ("top_decile_lift", "Top-decile lift", True),
        ("brier", "Brier score (lower is better)", False),
    ):
        model, baseline = getattr(report.model, name), getattr(report.baseline, name)
        metric_rows.append(
            (label, _num(model), _num(baseline), _better(model, baseline, higher_is_better=higher))
        )
    lines += _table(("metric", "model", "baseline", "better?"), metric_rows)

    if report.model.at_k:
        lines += ["", "Precision / recall in the top k accounts"]
        k_rows = []
        for k, (precision, recall) in sorted(report.model.at_k.items()):
            base_precision, base_recall = report.baseline.at_k[k]
            k_rows.append(
                (
                    str(k),
                    _num(precision),
                    _num(recall),
                    _num(base_precision),
                    _num(base_recall),
                )
            )
        header = ("k", "model precision", "model recall", "baseline precision", "baseline recall")
        lines += _table(header, k_rows)

    if report.by_segment:
        lines += ["", "By segment"]
        segment_rows = [
            (
                row.segment,
                str(row.rows),
                str(row.churned),
                "too thin to judge" if row.roc_auc is None else _num(row.roc_auc),
                _num(row.mean_predicted),
                _num(row.observed_rate),
            )
            for row in report.by_segment
        ]
        columns = ("segment", "rows", "churned", "ROC AUC", "predicted", "observed")
        lines += _table(columns, segment_rows)

    if report.by_band:
        lines += ["", "Risk bands (risk_bands in product.yaml)"]
        band_rows_ = [
            (
                row.band,
                f"{row.lower:g}",
                str(row.rows),
                f"{row.rows / report.n_rows:.1%}",
                str(row.churned),
                _num(row.observed_rate),
            )
            for row in report.by_band
        ]
        columns = ("band", "from", "rows", "share", "churned", "observed")
        lines += _table(columns, band_rows_)

    lines += ["", "Calibration (model probability vs observed churn rate per quantile bin)"]
    calibration_rows = [
        (
            str(row.bin),
            f"{row.lower:.3f}-{row.upper:.3f}",
            str(row.count),
            _num(row.mean_predicted),
            _num(row.observed_rate),
        )
        for row in report.calibration
    ]
    lines += _table(("bin", "range", "count", "predicted", "observed"), calibration_rows)
    return "\n".join(lines) + "\n"


def save_report(report: EvaluationReport, path: Path) -> None:
    """Write the report as JSON atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with tmp.open("x", encoding="utf-8") as handle:
            json.dump(report.to_dict(), handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
