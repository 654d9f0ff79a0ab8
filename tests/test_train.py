"""Training: a calibrated linear model that beats the usage-drop rule on the later period."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import check_cv

from models.contract import AccountSchema, load_schema
from models.errors import ModelError
from models.generator import generate_accounts
from models.labels import make_labels
from models.spec import TrainingSettings
from models.train import TrainResult, calibration_folds, cv_folds, train_model
from tests import sample_config

END = datetime.date(2026, 6, 28)
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
REVIEWED_UNTRUSTED = {
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "numpy.dtype",
}


@pytest.fixture(scope="module")
def schema() -> AccountSchema:
    return load_schema(SCHEMA_PATH)


@pytest.fixture(scope="module")
def trained(schema) -> tuple[TrainResult, list[str]]:
    accounts = generate_accounts(2000, 52, seed=7, end=END).accounts
    messages: list[str] = []
    return train_model(
        accounts, schema, sample_config.features(), progress=messages.append
    ), messages


def test_ranks_well_and_beats_the_baseline(trained):
    result, _ = trained
    model_auc = roc_auc_score(result.y_eval, result.p_eval)
    baseline_auc = roc_auc_score(result.y_eval, result.baseline_eval)
    assert model_auc >= 0.78
    assert model_auc > baseline_auc
    assert average_precision_score(result.y_eval, result.p_eval) > average_precision_score(
        result.y_eval, result.baseline_eval
    )


def test_result_describes_the_split(trained, schema):
    result, messages = trained
    assert result.n_eval == len(result.y_eval) == len(result.p_eval) == len(result.baseline_eval)
    assert result.n_eval == len(result.split.evaluate)
    assert result.n_train == len(result.split.train)
    assert result.positives_eval == int(result.y_eval.sum()) > 0
    expected = make_labels(result.split.train, schema, 90)
    assert result.positives_train == int(expected.sum())
    assert result.params["C"] > 0
    assert result.params["horizon_days"] == 90
    assert messages


def test_probabilities_are_calibrated_on_the_later_period(trained):
    result, _ = trained
    assert ((result.p_eval >= 0) & (result.p_eval <= 1)).all()
    base_rate = result.y_eval.mean()
    assert abs(result.p_eval.mean() - base_rate) < 0.35 * base_rate


def test_calibration_is_a_monotone_affine_map_of_the_linear_score(trained):
    """What keeps per-feature explanations exact: logit(p) = a * decision_function + b."""
    result, _ = trained
    features = sample_config.features().build(result.split.evaluate)
    pipeline = result.estimator.estimator.estimator
    decision = pipeline.decision_function(features)
    p = result.estimator.predict_proba(features)[:, 1]
    logit = np.log(p / (1 - p))
    slope, intercept = np.polyfit(decision, logit, 1)
    assert slope > 0
    assert np.abs(logit - (slope * decision + intercept)).max() < 1e-6
    assert result.feature_names == list(pipeline[:-1].get_feature_names_out())


def test_saves_with_skops_and_only_reviewed_types_are_untrusted(trained):
    result, _ = trained
    data = skops.io.dumps(result.estimator)
    untrusted = skops.io.get_untrusted_types(data=data)
    assert set(untrusted) <= REVIEWED_UNTRUSTED
    loaded = skops.io.loads(data, trusted=untrusted)
    features = sample_config.features().build(result.split.evaluate)
    np.testing.assert_array_equal(
        loaded.predict_proba(features), result.estimator.predict_proba(features)
    )


def test_unknown_model_parameters_are_refused(schema, trained):
    result, _ = trained
    with pytest.raises(ModelError, match=r"unknown model parameter.*'depth'"):
        train_model(result.split.train, schema, sample_config.features(), params={"depth": 3})


def test_cross_validation_keeps_each_accounts_rows_in_one_fold() -> None:
    """Several dates per account: a fold never holds out an account it also trained on."""
    accounts = np.repeat([f"A{i:03d}" for i in range(60)], 4)
    churned = np.repeat(np.arange(60) % 5 == 0, 4)
    folds, groups = cv_folds(accounts, TrainingSettings(cv_folds=5))
    splits = list(folds.split(np.zeros((len(accounts), 1)), churned, groups))
    assert len(splits) == 5
    for fit, held_out in splits:
        assert not set(accounts[fit]) & set(accounts[held_out])
        assert churned[held_out].any()
    assert sorted(np.concatenate([held for _, held in splits])) == list(range(len(accounts)))


def test_one_row_per_account_keeps_plain_stratified_folds() -> None:
    accounts = np.array([f"A{i:03d}" for i in range(60)])
    folds, groups = cv_folds(accounts, TrainingSettings(cv_folds=5))
    assert groups is None
    assert type(folds).__name__ == "StratifiedKFold"


def test_calibration_folds_never_split_an_account() -> None:
    """The calibrator learns its sigmoid on out-of-fold scores: an account scored by a fold
    that fitted its other dates would teach it over-confidence."""
    accounts = np.tile([f"A{i:03d}" for i in range(60)], 4)  # date by date, as exports come
    churned = np.tile(np.arange(60) % 5 == 0, 4)
    folds = check_cv(calibration_folds(accounts, churned, TrainingSettings(cv_folds=5)))
    splits = list(folds.split(np.zeros((len(accounts), 1)), churned))
    assert len(splits) == 5
    for fit, held_out in splits:
        assert not set(accounts[fit]) & set(accounts[held_out])
        assert churned[held_out].any()
    assert sorted(np.concatenate([held for _, held in splits])) == list(range(len(accounts)))
    # One row per account: the plain count, as models saved before the grouping had.
    assert calibration_folds(accounts[:60], churned[:60], TrainingSettings(cv_folds=5)) == 5


@pytest.fixture(scope="module")
def cross_validated(schema) -> tuple[TrainResult, pd.DataFrame]:
    """Several weekly dates per account, judged by cross-validation."""
    book = generate_accounts(400, 26, seed=3, end=END).accounts
    settings = TrainingSettings(evaluation="cross_validation")
    return train_model(book, schema, sample_config.features(), settings=settings), book


def test_the_fitted_calibrator_kept_each_accounts_rows_in_one_fold(cross_validated, schema):
    result, _ = cross_validated
    accounts = result.split.train[schema.id_column].to_numpy()
    assert len(set(accounts)) < len(accounts)
    x = sample_config.features().build(result.split.train)
    folds = check_cv(result.estimator.cv, result.y_eval, classifier=True)
    splits = list(folds.split(x, result.y_eval))
    assert len(splits) == 5
    for fit, held_out in splits:
        assert not set(accounts[fit]) & set(accounts[held_out])
    assert result.p_eval.shape == result.y_eval.shape
    assert ((result.p_eval > 0) & (result.p_eval < 1)).all()
    assert roc_auc_score(result.y_eval, result.p_eval) >= 0.7


def test_cross_validated_weights_fit_the_pipeline_not_the_sigmoid(cross_validated, schema):
    """Feedback weights reach the logistic regression (scikit-learn's calibrator alone would
    give them to the sigmoid only, with a warning, which fails this test)."""
    result, book = cross_validated
    weights = pd.Series(1.0, index=book.index)
    weights[book[schema.label_column].notna()] = 5.0
    weighted = train_model(
        book,
        schema,
        sample_config.features(),
        settings=TrainingSettings(evaluation="cross_validation"),
        sample_weight=weights,
    )
    coef = result.estimator.calibrated_classifiers_[0].estimator[-1].coef_
    weighted_coef = weighted.estimator.calibrated_classifiers_[0].estimator[-1].coef_
    assert not np.allclose(coef, weighted_coef)
