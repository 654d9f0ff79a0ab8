"""Train, evaluate and register in one step: what `churnbot train` and the demo both run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from models.contract import AccountSchema
from models.evaluation import EvaluationReport, evaluate
from models.fingerprint import frame_fingerprint
from models.registry import ModelCard, Registry
from models.spec import ProductSpec
from models.train import TrainResult, train_model


@dataclass(frozen=True)
class TrainOutcome:
    card: ModelCard
    report: EvaluationReport
    result: TrainResult
    promoted: bool
    sla_value: float


def sla_value(report: EvaluationReport, spec: ProductSpec) -> float:
    """The model's figure on the metric the accuracy SLA names."""
    return float(getattr(report.model, spec.accuracy_sla.metric))


def train_and_register(
    frame: pd.DataFrame,
    schema: AccountSchema,
    spec: ProductSpec,
    registry: Registry,
    *,
    data_source: str,
    promote: bool | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainOutcome:
    """Train on ``frame``, evaluate on the later period, save the model with its card.

    ``promote=None`` promotes the new model only when it meets the accuracy floor of the
    product spec: a model below the floor would trip the kill switch on its first run.
    """
    result = train_model(frame, schema, horizon_days=spec.horizon_days, progress=progress)
    window = result.split.eval_window
    report = evaluate(
        result.y_eval,
        result.p_eval,
        result.baseline_eval,
        eval_window=(window[0].isoformat(), window[1].isoformat()),
    )
    if progress:
        progress("saving the model and its card")
    card = registry.save(
        result.estimator,
        {
            "model_class": type(result.estimator).__name__,
            "data_fingerprint": frame_fingerprint(frame),
            "data_source": data_source,
            "training_window": tuple(d.isoformat() for d in result.split.train_window),
            "eval_window": tuple(d.isoformat() for d in window),
            "horizon_days": spec.horizon_days,
            "features": list(result.feature_names),
            "params": result.params,
            "metrics": report.to_dict(),
            "n_train": result.n_train,
            "n_eval": result.n_eval,
        },
    )
    value = sla_value(report, spec)
    should_promote = value >= spec.accuracy_sla.floor if promote is None else promote
    if should_promote:
        registry.promote(card.version)
    return TrainOutcome(card, report, result, should_promote, value)
