"""Train, evaluate and register in one step: what `churnbot train` and the demo both run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from models.band_check import band_warning
from models.contract import AccountSchema
from models.errors import ConfigError
from models.evaluation import EvaluationReport, evaluate
from models.evidence import weight_evidence
from models.explain import reference_point
from models.features import FeatureSet
from models.feedback_labels import FeedbackLabels
from models.fingerprint import frame_fingerprint
from models.health import proportions, quantile_edges
from models.labels import make_labels
from models.leakage import Suspect, suspects
from models.reasons import reason_reference
from models.registry import ModelCard, Registry
from models.spec import ProductSpec
from models.train import TrainResult, train_model


@dataclass(frozen=True)
class TrainOutcome:
    """A trained, registered model; ``held_back`` says why it was not promoted, if it was
    not; ``suspects`` are features that look recorded after the churn (models.leakage)."""

    card: ModelCard
    report: EvaluationReport
    result: TrainResult
    sla_value: float
    held_back: str | None = None
    suspects: tuple[Suspect, ...] = ()
    #: Why the risk bands of product.yaml tell few accounts apart, if they do (band_check).
    bands_warning: str | None = None

    @property
    def promoted(self) -> bool:
        return self.held_back is None


def sla_value(report: EvaluationReport, spec: ProductSpec) -> float:
    """The model's figure on the metric the accuracy SLA names."""
    return float(getattr(report.model, spec.accuracy_sla.metric))


def drift_reference(
    features: pd.DataFrame, eval_risk: np.ndarray, drift_features: tuple[str, ...]
) -> dict[str, dict[str, list[float]]]:
    """Bins and shares of the key features (training rows) and of the risk (evaluation rows).

    Stored on the model card so every scoring run measures drift against the same bins (the
    binning leaves empty cells out).
    """
    columns = {name: features[name].to_numpy(dtype=float) for name in drift_features}
    columns["risk"] = eval_risk
    reference = {}
    for name, values in columns.items():
        edges = quantile_edges(values)
        reference[name] = {
            "edges": edges.tolist(),
            "proportions": proportions(values, edges).tolist(),
        }
    return reference


def train_and_register(
    frame: pd.DataFrame,
    schema: AccountSchema,
    features: FeatureSet,
    spec: ProductSpec,
    registry: Registry,
    *,
    data_source: str,
    promote: bool | None = None,
    progress: Callable[[str], None] | None = None,
    feedback: FeedbackLabels | None = None,
) -> TrainOutcome:
    """Train on ``frame``, evaluate on the later period, save the model with its card.

    ``promote=None`` promotes the new model only when it meets the accuracy floor of the
    product spec (a model below the floor would trip the kill switch on its first run) and no
    feature looks recorded after the churn (:mod:`models.leakage`: its figures would not
    hold in use); ``promote=True`` promotes it whatever either says.
    ``feedback`` (CSM corrections as labels and weights) is used in training and recorded in
    the card's ``notes["feedback"]``: how many corrections, and which were used.
    """
    drift = features.drift_problems(spec.health.drift_features, "product.yaml")
    if drift:  # before the training, not after it
        raise ConfigError("\n".join(drift))
    result = train_model(
        frame,
        schema,
        features,
        horizon_days=spec.horizon_days,
        settings=spec.training,
        progress=progress,
        label_overrides=feedback.labels if feedback else None,
        sample_weight=feedback.weights if feedback else None,
    )
    window = result.split.eval_window
    segment = schema.optional_column("segment")
    report = evaluate(
        result.y_eval,
        result.p_eval,
        result.baseline_eval,
        baseline_name=features.baseline_name(),
        eval_window=(window[0].isoformat(), window[1].isoformat()),
        method=result.split.method,
        because=result.split.because,
        segments=None if segment is None else result.split.evaluate[segment].to_numpy(),
        bands=spec.risk_bands,
    )
    if progress:
        progress("saving the model and its card")
    train_features = features.build(result.split.train)
    churned = make_labels(result.split.train, schema, spec.horizon_days).to_numpy()
    leaks = suspects(
        train_features,
        churned,
        {name: features.label(name) for name in features.names},
        numeric=features.numeric,
        categorical=features.categorical,
        accounts=result.split.train[schema.id_column].to_numpy(),
    )
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
            "notes": {
                "feature_set": features.to_dict(),
                "reason_reference": reason_reference(
                    features, result.split.train, train_features, churned
                ),
                "explain_reference": reference_point(result.estimator, train_features),
                "reason_evidence": weight_evidence(
                    result.estimator,
                    train_features,
                    churned,
                    result.split.train[schema.id_column].to_numpy(),
                ),
                "drift_reference": drift_reference(
                    train_features, result.p_eval, spec.health.drift_features
                ),
                **({"feedback": feedback.notes()} if feedback else {}),
                **({"leakage_suspects": [asdict(s) for s in leaks]} if leaks else {}),
            },
        },
    )
    value = sla_value(report, spec)
    held_back = _held_back(value, spec, leaks, promote)
    if held_back is None:
        registry.promote(card.version)
    bands = band_warning(
        report.by_band,
        report.suggested_bands,
        base_rate=report.base_rate,
        horizon=spec.horizon_days,
    )
    return TrainOutcome(card, report, result, value, held_back, leaks, bands)


def _held_back(
    value: float, spec: ProductSpec, leaks: tuple[Suspect, ...], promote: bool | None
) -> str | None:
    """Why the new model is not promoted, or None to promote it."""
    if promote is not None:
        return None if promote else "--no-promote was given"
    sla = spec.accuracy_sla
    if value < sla.floor:
        return f"{sla.metric} {value:.3f} is below the floor {sla.floor}"
    if leaks:
        names = ", ".join(leak.name for leak in leaks)
        return f"feature(s) {names} look recorded after the churn (see the warning above)"
    return None
