"""Train the churn model: a calibrated logistic regression on the features of models.features.

Why linear: every score shown in Slack comes with reasons, and for a linear model the reasons
are exact, ``coef * (x - mean)`` per feature in one matrix product, with no approximation to
defend. Why calibrated: CSMs read the number as "chance of churning in 90 days" and the risk
bands are probability thresholds. Sigmoid calibration maps the decision function through one
monotone affine step, so the ranking and the exactness of the reasons survive it.

The data is split three ways by as-of date, never at random: the pipeline is fitted on the
earlier training weeks, calibrated on the later training weeks, and evaluated on a later
period whose churn no training label has seen (see models.labels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.contract import AccountSchema
from models.errors import ModelError
from models.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES, baseline_score, build_features
from models.labels import TimeSplit, make_labels, time_split

# Strong L2: the usage columns (and the two overdue columns) move together; shrinking makes them
# share the weight instead of cancelling out with opposite signs, which would make the per-feature
# reasons read backwards. Ranking quality is the same as with C=1 on the sample book.
DEFAULT_PARAMS: dict[str, Any] = {"C": 0.01, "max_iter": 1000}
CALIBRATION_SHARE = 0.3  # the latest 30% of training as-of dates calibrate the probabilities


@dataclass(frozen=True)
class TrainResult:
    """A fitted, calibrated model and everything needed to evaluate and document it."""

    estimator: CalibratedClassifierCV
    split: TimeSplit
    y_eval: np.ndarray
    p_eval: np.ndarray
    baseline_eval: np.ndarray
    feature_names: list[str]
    params: dict[str, Any]
    n_train: int
    n_eval: int
    positives_train: int
    positives_eval: int


def make_pipeline(params: dict[str, Any]) -> Pipeline:
    """Scale numeric features, one-hot the categoricals, then a logistic regression.

    Dense one-hot output keeps the per-feature contributions a plain matrix product.
    """
    preprocess = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC_FEATURES),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                CATEGORICAL_FEATURES,
            ),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("model", LogisticRegression(**params))])


def train_model(
    frame: pd.DataFrame,
    schema: AccountSchema,
    *,
    horizon_days: int = 90,
    eval_weeks: int = 13,
    params: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    label_overrides: pd.Series | None = None,
    sample_weight: pd.Series | None = None,
) -> TrainResult:
    """Fit, calibrate and score the later period of validated account rows.

    ``label_overrides`` (bool) and ``sample_weight`` (float), indexed like ``frame``, change
    the labels of training rows and the weights of fitting rows (CSM corrections, see
    models.feedback_labels). Calibration uses the corrected labels unweighted, so the
    probabilities keep matching the churn rate rather than the weights; the evaluation rows
    always keep the labels of the data, so runs stay comparable.
    """
    model_params = _model_params(params)
    report = progress or (lambda _message: None)

    report("splitting by as-of date")
    split = time_split(frame, schema, horizon_days, eval_weeks)
    fit_rows, calibration_rows = _calibration_split(split.train, schema)

    report("building features")
    x_fit, y_fit = _examples(fit_rows, schema, horizon_days, label_overrides)
    x_cal, y_cal = _examples(calibration_rows, schema, horizon_days, label_overrides)
    x_eval, y_eval = _examples(split.evaluate, schema, horizon_days)
    for name, labels in (("fitting", y_fit), ("calibration", y_cal)):
        if labels.all() or not labels.any():
            raise ModelError(
                f"cannot train: the {name} weeks hold only "
                f"{'churned' if labels.any() else 'retained'} accounts "
                f"({len(labels)} rows); both outcomes are needed"
            )

    report(f"fitting on {len(y_fit):,} rows")
    pipeline = make_pipeline(model_params).fit(
        x_fit, y_fit, model__sample_weight=_weights(fit_rows, sample_weight)
    )

    report(f"calibrating on {len(y_cal):,} rows")
    estimator = CalibratedClassifierCV(FrozenEstimator(pipeline), method="sigmoid")
    estimator.fit(x_cal, y_cal)

    report(f"scoring {len(y_eval):,} evaluation rows")
    y_train = np.concatenate([y_fit, y_cal])
    return TrainResult(
        estimator=estimator,
        split=split,
        y_eval=y_eval,
        p_eval=estimator.predict_proba(x_eval)[:, 1],
        baseline_eval=baseline_score(split.evaluate),
        feature_names=[str(name) for name in pipeline[:-1].get_feature_names_out()],
        params={
            **model_params,
            "horizon_days": horizon_days,
            "eval_weeks": eval_weeks,
            "calibration": "sigmoid",
            "calibration_share": CALIBRATION_SHARE,
        },
        n_train=len(y_train),
        n_eval=len(y_eval),
        positives_train=int(y_train.sum()),
        positives_eval=int(y_eval.sum()),
    )


def _model_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """DEFAULT_PARAMS overridden by ``params``; unknown names are refused by name."""
    known = set(LogisticRegression().get_params())
    unknown = sorted(set(params or {}) - known)
    if unknown:
        raise ModelError(
            f"unknown model parameter(s) {unknown}; LogisticRegression accepts {sorted(known)}"
        )
    return {**DEFAULT_PARAMS, **(params or {})}


def _calibration_split(
    train: pd.DataFrame, schema: AccountSchema
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earlier training weeks fit the model, the latest ones calibrate it."""
    as_of = train[schema.date_column]
    dates = np.sort(as_of.unique())
    n_calibration = max(1, round(len(dates) * CALIBRATION_SHARE))
    first_calibration = dates[-n_calibration]
    return train[as_of < first_calibration], train[as_of >= first_calibration]


def _examples(
    rows: pd.DataFrame,
    schema: AccountSchema,
    horizon_days: int,
    overrides: pd.Series | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    labels = make_labels(rows, schema, horizon_days)
    if overrides is not None:
        common = overrides.index.intersection(rows.index)
        labels.loc[common] = overrides.loc[common].to_numpy(dtype=bool)
    return build_features(rows), labels.to_numpy(dtype=bool)


def _weights(rows: pd.DataFrame, weights: pd.Series | None) -> np.ndarray | None:
    return None if weights is None else weights.reindex(rows.index).fillna(1.0).to_numpy()
