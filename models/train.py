"""Train the churn model: a calibrated logistic regression on the configured features.

Why linear: every score shown in Slack comes with reasons, and for a linear model the reasons
are exact, ``coef * (x - mean)`` per feature in one matrix product, with no approximation to
defend. Why calibrated: CSMs read the number as "chance of churning in 90 days" and the risk
bands are probability thresholds. Sigmoid calibration maps the decision function through one
monotone affine step, so the ranking and the exactness of the reasons survive it.

The data is split three ways by as-of date, never at random: the pipeline is fitted on the
earlier training dates, calibrated on the later training dates, and evaluated on a later
period whose churn no training label has seen (see models.labels). A single snapshot has no
later period: it is evaluated by stratified cross-validation (out-of-fold probabilities of the
same calibrated pipeline) and the report says what that cannot check.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import PredefinedSplit, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, StandardScaler

from models.contract import AccountSchema
from models.errors import DataContractError, ModelError
from models.explain import fitted_pipeline
from models.features import FeatureSet
from models.labels import TimeSplit, make_labels, split
from models.spec import TrainingSettings

# Strong L2: the usage columns (and the two overdue columns) move together; shrinking makes them
# share the weight instead of cancelling out with opposite signs, which would make the per-feature
# reasons read backwards. Ranking quality is the same as with C=1 on the sample book.
#
# The strength is per row, so a small export is not shrunk as hard as a large one: C is
# PENALTY_ROWS / (fitting rows) unless ``params`` sets it. 500 gives C = 0.01 on the sample
# book's 50,000 fitting rows; on a 4,000-row snapshot C = 0.16, where a fixed 0.01 cost
# about 0.004 ROC AUC against a plain regression (bench/byo_data.py).
DEFAULT_PARAMS: dict[str, Any] = {"max_iter": 1000}
PENALTY_ROWS = 500.0
CALIBRATION_SHARE = 0.3  # the latest 30% of training as-of dates calibrate the probabilities
CV_SEED = 0  # fixed folds: the same data gives the same model and report
CURVE_BINS = 5
BIN_MIN_WIDTH = 1e-8  # KBinsDiscretizer drops (and warns about) narrower bins
#: A curve is adopted only if it improves the validation ROC AUC by at least this much.
CURVE_MIN_GAIN = 0.005


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


def make_pipeline(
    params: dict[str, Any], features: FeatureSet, curved: Collection[str] = ()
) -> Pipeline:
    """Fill empty numeric cells with the training median and scale them, one-hot the
    categoricals (rare levels pooled, a level never seen in training counted as that pool or
    as none), then a logistic regression. A ``curved`` feature becomes a binned term of its
    own (one weight per quantile bin), so its effect may bend or step at a threshold while
    staying one additive term.

    The one-hot output is dense and each feature's columns are contiguous, so the per-feature
    contributions remain a plain matrix product summed by feature.
    """
    fill = ("fill", SimpleImputer(strategy="median"))
    numeric = Pipeline([fill, ("scale", StandardScaler())])
    categorical = OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        min_frequency=features.config.rare_level_share or None,
        sparse_output=False,
    )
    straight = [name for name in features.numeric if name not in curved]
    binned = [
        (
            f"curve_{name}",
            Pipeline(
                [
                    fill,
                    (
                        "bins",
                        KBinsDiscretizer(
                            n_bins=CURVE_BINS,
                            encode="onehot-dense",
                            strategy="quantile",
                            quantile_method="averaged_inverted_cdf",
                        ),
                    ),
                ]
            ),
            [name],
        )
        for name in features.numeric
        if name in curved
    ]
    preprocess = ColumnTransformer(
        [("num", numeric, straight), *binned, ("cat", categorical, features.categorical)]
    )
    return Pipeline([("preprocess", preprocess), ("model", LogisticRegression(**params))])


def train_model(
    frame: pd.DataFrame,
    schema: AccountSchema,
    features: FeatureSet,
    *,
    horizon_days: int = 90,
    settings: TrainingSettings | None = None,
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
    settings = settings or TrainingSettings()
    report = progress or (lambda _message: None)

    report("splitting the rows for training and evaluation")
    rows = split(frame, schema, horizon_days, settings)
    calibrating = (
        np.zeros(len(rows.train), dtype=bool)
        if rows.method == "cross_validation"
        else _calibration_rows(rows.train, schema)
    )
    if "C" not in model_params:
        if rows.method == "cross_validation":
            n_fit = len(rows.train) * (settings.cv_folds - 1) // settings.cv_folds
        else:
            n_fit = int((~calibrating).sum())
        model_params["C"] = PENALTY_ROWS / max(n_fit, 1)
    report("building features")
    x_train, y_train = _examples(rows.train, schema, features, horizon_days, label_overrides)
    _check_empty_features(x_train, features)
    weights = _weights(rows.train, sample_weight)
    if rows.method == "cross_validation":
        if rows.because:
            report(f"evaluating by cross-validation: {rows.because}")
        estimator, p_eval = _fit_cross_validated(
            x_train,
            y_train,
            rows.train[schema.id_column].to_numpy(),
            weights,
            model_params,
            features,
            settings,
            report,
        )
        x_eval, y_eval = x_train, make_labels(rows.evaluate, schema, horizon_days).to_numpy()
        curves: dict[str, Any] = {}
    else:
        estimator, straight, curves = _fit_time_split(
            x_train, y_train, weights, calibrating, model_params, features, report
        )
        x_eval, y_eval = _examples(rows.evaluate, schema, features, horizon_days)
        report(f"scoring {len(y_eval):,} evaluation rows")
        p_eval = estimator.predict_proba(x_eval)[:, 1]
        if straight is not None and y_eval.any() and not y_eval.all():
            # Both figures on the held-out period: with the adopted curves and without.
            curves = {
                "tried": curves,
                "eval_roc_auc_with_curves": round(float(roc_auc_score(y_eval, p_eval)), 4),
                "eval_roc_auc_straight_lines": round(
                    float(roc_auc_score(y_eval, straight.predict_proba(x_eval)[:, 1])), 4
                ),
            }
        elif curves:
            curves = {"tried": curves}
    pipeline = fitted_pipeline(estimator)
    return TrainResult(
        estimator=estimator,
        split=rows,
        y_eval=y_eval,
        p_eval=p_eval,
        baseline_eval=features.baseline(rows.evaluate),
        feature_names=[str(name) for name in pipeline[:-1].get_feature_names_out()],
        params={
            **model_params,
            "horizon_days": horizon_days,
            "evaluation": rows.method,
            **(
                {"cv_folds": settings.cv_folds}
                if rows.method == "cross_validation"
                else {"eval_days": settings.eval_days, "calibration_share": CALIBRATION_SHARE}
            ),
            "calibration": "sigmoid",
            "curves": _curved(pipeline),
            **({"curve_trials": curves} if curves else {}),
        },
        n_train=len(y_train),
        n_eval=len(y_eval),
        positives_train=int(y_train.sum()),
        positives_eval=int(y_eval.sum()),
    )


def _fit_time_split(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    weights: np.ndarray | None,
    calibrating: np.ndarray,
    params: dict[str, Any],
    features: FeatureSet,
    report: Callable[[str], None],
) -> tuple[CalibratedClassifierCV, CalibratedClassifierCV | None, dict[str, Any]]:
    """Fit on the earlier training dates, calibrate on the later ones (``calibrating``).

    Returns the model, the same model with straight lines where curves were adopted (None
    when none was), and the validation figures of every curve tried.
    """
    fit = ~calibrating
    for name, labels in (("fitting", y_train[fit]), ("calibration", y_train[calibrating])):
        if labels.all() or not labels.any():
            raise ModelError(
                f"cannot train: the {name} dates hold only "
                f"{'churned' if labels.any() else 'retained'} accounts "
                f"({len(labels)} rows); both outcomes are needed"
            )
    x_cal, y_cal = x_train[calibrating], y_train[calibrating]
    w_fit = None if weights is None else weights[fit]
    report(f"fitting on {int(fit.sum()):,} rows")
    pipeline, straight, curves = _fit_with_curves(
        (x_train[fit], y_train[fit], w_fit), (x_cal, y_cal), params, features, report
    )

    def calibrated(fitted: Pipeline) -> CalibratedClassifierCV:
        return CalibratedClassifierCV(FrozenEstimator(fitted), method="sigmoid").fit(x_cal, y_cal)

    report(f"calibrating on {int(calibrating.sum()):,} rows")
    return calibrated(pipeline), None if straight is None else calibrated(straight), curves


def _fit_with_curves(
    fitting: tuple[pd.DataFrame, np.ndarray, np.ndarray | None],
    validation: tuple[pd.DataFrame, np.ndarray],
    params: dict[str, Any],
    features: FeatureSet,
    report: Callable[[str], None],
) -> tuple[Pipeline, Pipeline | None, dict[str, Any]]:
    """The fitted pipeline, with bins for the ``curve: auto`` features that earn them.

    Each candidate is tried one at a time and kept only where it ranks the validation rows
    (the calibration dates, never the evaluation period) better than the straight line by
    CURVE_MIN_GAIN. Returns the chosen pipeline, the straight-line one when it differs (None
    otherwise), and what each try gave; every pipeline is fitted once.
    """
    x_fit, y_fit, w_fit = fitting
    x_val, y_val = validation

    def fitted(curved: list[str]) -> Pipeline:
        pipeline = make_pipeline(params, features, curved)
        return pipeline.fit(x_fit, y_fit, model__sample_weight=w_fit)

    def validation_auc(pipeline: Pipeline) -> float:
        return float(roc_auc_score(y_val, pipeline.decision_function(x_val)))

    chosen = features.curves("bins")
    straight = best = fitted(chosen)
    # Bins need distinct quantile edges: a feature that is mostly one value cannot bend.
    candidates = [name for name in features.curves("auto") if _binnable(x_fit[name])]
    if not candidates:
        return straight, None, {}
    report(f"trying curves for {len(candidates)} feature(s)")
    best_auc = validation_auc(straight)
    tried: dict[str, Any] = {}
    for name in candidates:
        trial = fitted([*chosen, name])
        trial_auc = validation_auc(trial)
        adopted = trial_auc >= best_auc + CURVE_MIN_GAIN
        tried[name] = {"line": round(best_auc, 4), "curve": round(trial_auc, 4), "adopted": adopted}
        if adopted:
            chosen, best, best_auc = [*chosen, name], trial, trial_auc
    return best, None if best is straight else straight, tried


def cv_folds(
    accounts: np.ndarray, settings: TrainingSettings
) -> tuple[StratifiedKFold | StratifiedGroupKFold, np.ndarray | None]:
    """The cross-validation folds for rows of ``accounts``, and the groups they split by.

    An account with several rows (several dates) has all of them in one fold: else a fold
    would be judged on accounts it trained on, and the figures would flatter the model. One
    row per account (a snapshot) keeps plain stratified folds."""
    if len(np.unique(accounts)) < len(accounts):
        return StratifiedGroupKFold(settings.cv_folds, shuffle=True, random_state=CV_SEED), accounts
    return StratifiedKFold(settings.cv_folds, shuffle=True, random_state=CV_SEED), None


def calibration_folds(
    accounts: np.ndarray, y: np.ndarray, settings: TrainingSettings
) -> int | PredefinedSplit:
    """The folds the calibrator of rows of ``accounts`` (labelled ``y``) learns its sigmoid on.

    The sigmoid is fitted on out-of-fold decision values, so each value must come from a
    pipeline that never saw the account: one fitted on an account's other dates scores it
    over-confidently, and the sigmoid learns that confidence. Several rows per account get
    :func:`cv_folds`' grouped folds, handed over as each row's fold number (a PredefinedSplit,
    which the registry trusts; the calibrator is fitted without groups). One row per account
    keeps the plain count (stratified folds in row order), as models saved before had.
    """
    folds, groups = cv_folds(accounts, settings)
    if groups is None:
        return settings.cv_folds
    fold_of_row = np.empty(len(accounts), dtype=np.int64)
    for number, (_, held_out) in enumerate(folds.split(np.zeros((len(y), 1)), y, groups)):
        fold_of_row[held_out] = number
    return PredefinedSplit(fold_of_row)


def _fit_cross_validated(
    x: pd.DataFrame,
    y: np.ndarray,
    accounts: np.ndarray,
    weights: np.ndarray | None,
    params: dict[str, Any],
    features: FeatureSet,
    settings: TrainingSettings,
    report: Callable[[str], None],
) -> tuple[CalibratedClassifierCV, np.ndarray]:
    """No later period: out-of-fold probabilities for the report, then the final model on all
    rows.

    There is no validation period to choose curves on, so ``curve: auto`` stays a line here.
    The folds are :func:`cv_folds`; inside each, and for the final model, the calibrator's own
    folds are :func:`calibration_folds` of the rows it is given. ``weights`` weigh the
    pipeline's fit only: the sigmoid learns from the labels unweighted, as with a later period.

    ``ensemble=False`` calibrates one pipeline on out-of-fold decision values, so the final
    model is a single linear pipeline and its reasons stay exact.
    """

    def calibrated(rows: np.ndarray) -> CalibratedClassifierCV:
        model = CalibratedClassifierCV(
            make_pipeline(params, features, features.curves("bins")),
            method="sigmoid",
            cv=calibration_folds(accounts[rows], y[rows], settings),
            ensemble=False,
        )
        fit_params = {} if weights is None else {"model__sample_weight": weights[rows]}
        return model.fit(x.iloc[rows], y[rows], **fit_params)

    folds, groups = cv_folds(accounts, settings)
    report(f"cross-validating on {len(y):,} rows ({settings.cv_folds} folds)")
    p_eval = np.empty(len(y))
    for fit, held_out in folds.split(x, y, groups):
        p_eval[held_out] = calibrated(fit).predict_proba(x.iloc[held_out])[:, 1]
    report(f"fitting the final model on {len(y):,} rows")
    return calibrated(np.arange(len(y))), p_eval


def _binnable(values: pd.Series) -> bool:
    """Whether the bins' quantile edges, computed as the model computes them (after the
    median fill), are all distinct."""
    filled = values.fillna(values.median()).to_numpy(dtype="float64")
    if not filled.size:
        return False
    quantiles = np.linspace(0, 100, CURVE_BINS + 1)
    edges = np.percentile(filled, quantiles, method="averaged_inverted_cdf")
    return bool((np.diff(edges) > BIN_MIN_WIDTH).all())


def _curved(pipeline: Pipeline) -> list[str]:
    """The features the fitted pipeline models as curves."""
    return [
        str(columns[0])
        for name, _, columns in pipeline[0].transformers_
        if str(name).startswith("curve_")
    ]


def _check_empty_features(x: pd.DataFrame, features: FeatureSet) -> None:
    """A feature with no value in any training row cannot be learned: say which and why."""
    empty = [name for name in features.numeric if x[name].isna().all()]
    if empty:
        columns = {name: ", ".join(features.config.features[name].sources) for name in empty}
        raise DataContractError(
            "feature(s) with no value in any training row: "
            + "; ".join(f"{name} (column {columns[name]})" for name in empty)
            + ". Fill the column(s) in the export, or remove the feature(s) from features.yaml"
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


def _calibration_rows(train: pd.DataFrame, schema: AccountSchema) -> np.ndarray:
    """True for the rows of the latest training dates, which calibrate; the rest fit."""
    as_of = train[schema.date_column]
    dates = np.sort(as_of.unique())
    n_calibration = max(1, round(len(dates) * CALIBRATION_SHARE))
    return (as_of >= dates[-n_calibration]).to_numpy()


def _examples(
    rows: pd.DataFrame,
    schema: AccountSchema,
    features: FeatureSet,
    horizon_days: int,
    overrides: pd.Series | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    labels = make_labels(rows, schema, horizon_days)
    if overrides is not None:
        common = overrides.index.intersection(rows.index)
        labels.loc[common] = overrides.loc[common].to_numpy(dtype=bool)
    return features.build(rows), labels.to_numpy(dtype=bool)


def _weights(rows: pd.DataFrame, weights: pd.Series | None) -> np.ndarray | None:
    return None if weights is None else weights.reindex(rows.index).fillna(1.0).to_numpy()
