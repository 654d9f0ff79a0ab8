"""The data product spec (config/product.yaml).

A model is not a product: the spec names who it serves, the promise (freshness and accuracy)
and the feedback signal. A spec without a feedback signal is refused, because a prediction
nobody can answer never gets better.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.config_files import load_yaml_model

Metric = Literal["roc_auc", "pr_auc", "top_decile_precision"]
FeedbackSignal = Literal["helpful", "not_helpful", "correction", "action_done", "churn_outcome"]


class InferenceContract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str
    output: tuple[str, ...] = Field(min_length=1)
    latency_ms: int = Field(gt=0, lt=3000)


class AccuracySla(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Metric
    target: float = Field(gt=0, le=1)
    floor: float = Field(gt=0, le=1)
    #: The fewest churned accounts among the known outcomes before the floor is judged: a
    #: ROC AUC on six churners swings by a tenth from one week to the next.
    min_churned: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _floor_below_target(self) -> AccuracySla:
        if self.floor > self.target:
            raise ValueError(f"floor {self.floor} must not be above target {self.target}")
        return self


class RiskBands(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    high: float = Field(gt=0, lt=1)
    medium: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> RiskBands:
        if self.medium >= self.high:
            raise ValueError(f"medium ({self.medium}) must be below high ({self.high})")
        return self

    def band(self, probability: float) -> str:
        """The band name for one probability."""
        if probability >= self.high:
            return "high"
        if probability >= self.medium:
            return "medium"
        return "low"


class HealthThresholds(BaseModel):
    """Limits of the health checks run after every scoring run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_data_age_days: int = Field(default=8, ge=0)
    max_reject_share: float = Field(default=0.02, ge=0, le=1)
    #: Share of the accounts of the snapshot before that the newest may leave out (a book
    #: loses a few percent a week; an export cut short, far more).
    max_dropped_share: float = Field(default=0.2, ge=0, le=1)
    psi_threshold: float = Field(default=0.25, gt=0)
    drift_features: tuple[str, ...] = ()


class TrainingSettings(BaseModel):
    """How training splits and judges the data; the minimums say when there is too little.

    ``evaluation``: ``time`` trains on earlier dates and evaluates on later ones (the honest
    check); ``cross_validation`` evaluates by stratified k-fold (an account's rows in one fold),
    for a single snapshot or a history too short for a later period; ``auto`` picks time
    whenever the data's dates span enough for it, else cross-validation, and says why.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    evaluation: Literal["auto", "time", "cross_validation"] = "auto"
    eval_days: int = Field(default=91, ge=1, le=3650)
    min_train_dates: int = Field(default=4, ge=2)
    min_train_positives: int = Field(default=20, ge=2)
    min_eval_positives: int = Field(default=5, ge=1)
    cv_folds: int = Field(default=5, ge=2, le=20)


class AbstainSettings(BaseModel):
    """When an account's data is too thin to score: it is shown as "not enough data to
    score", with what is missing, rather than as a confident percentage.

    ``max_missing_share``: above this share of the model's input columns empty, the account
    is not scored (columns whose emptiness is itself a signal, read by a ``missing`` feature
    or given a ``fill:``, do not count). ``min_history_days``: an account first seen fewer
    days before its row than this has not lived long enough for the features that compare
    with an earlier value (``change``); 0 turns the check off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_missing_share: float = Field(default=0.5, gt=0, le=1)
    min_history_days: int = Field(default=0, ge=0, le=3650)


class TrackRecordSettings(BaseModel):
    """The track record CSMs see (digest line, ``/churn`` card): below ``min_outcomes``
    known outcomes it says there are too few rather than a number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_outcomes: int = Field(default=30, ge=1)
    sample_size: int = Field(default=2000, ge=100, le=100_000)


class ProductSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    consumer: str
    job: str
    unit_of_value: str
    inference_contract: InferenceContract
    horizon_days: int = Field(default=90, gt=0, le=730)
    freshness_sla_hours: float = Field(gt=0)
    accuracy_sla: AccuracySla
    risk_bands: RiskBands
    surface: tuple[str, ...] = Field(min_length=1)
    action: str
    feedback_signal: tuple[FeedbackSignal, ...]
    health: HealthThresholds = HealthThresholds()
    training: TrainingSettings = TrainingSettings()
    abstain: AbstainSettings = AbstainSettings()
    track_record: TrackRecordSettings = TrackRecordSettings()

    @field_validator("feedback_signal")
    @classmethod
    def _needs_feedback(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(
                "a data product needs a feedback signal: list at least one of helpful, "
                "not_helpful, correction, action_done, churn_outcome"
            )
        return value


def load_spec(path: Path) -> ProductSpec:
    return load_yaml_model(path, ProductSpec)
