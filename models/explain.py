"""Exact per-account feature contributions for the calibrated linear model.

The model is ``sigmoid-calibrated(Pipeline(prep, LogisticRegression))``. Its output in log-odds
is ``-(a * f(x) + b)`` with ``f(x) = w . z(x) + c``, where ``z`` is the preprocessed row. So,
relative to a reference row ``z_ref`` (the training mean), the log-odds split exactly into

    base + sum_j  -a * w_j . (z_j(x) - z_ref_j)

with one term per input feature (a categorical's one-hot columns summed). The terms add up to
the model's own output, which is what makes the reasons trustworthy: a test checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from models.errors import ModelError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Contributions:
    """Log-odds contributions: ``base + values.sum(axis=1)`` is the model's log-odds."""

    base: float
    values: np.ndarray  # rows x features
    features: tuple[str, ...]

    def log_odds(self) -> np.ndarray:
        return self.base + self.values.sum(axis=1)


def calibrated_parts(estimator: object) -> tuple[object, object, Any]:
    """The fitted preprocessing, the linear model and the sigmoid calibrator (``a_``, ``b_``)."""
    # Imported here: the web process reads reason codes from this module but never explains,
    # and scikit-learn alone would triple its start-up time.
    from sklearn.calibration import CalibratedClassifierCV

    if not isinstance(estimator, CalibratedClassifierCV):
        raise ModelError(f"explanations need a calibrated model, got {type(estimator).__name__}")
    if len(estimator.calibrated_classifiers_) != 1:
        raise ModelError(
            "explanations need a single calibrated classifier; the model has "
            f"{len(estimator.calibrated_classifiers_)} (an ensemble is not additive)"
        )
    calibrated = estimator.calibrated_classifiers_[0]
    calibrator = calibrated.calibrators[0]
    if not hasattr(calibrator, "a_"):
        raise ModelError("explanations need sigmoid calibration (isotonic is not additive)")
    pipeline = fitted_pipeline(estimator)
    prep, linear = pipeline[0], pipeline[-1]
    return prep, linear, calibrator


def fitted_pipeline(estimator: Any) -> Any:
    """The fitted preprocessing + linear pipeline inside a calibrated model (time-split models
    wrap it in a FrozenEstimator, cross-validated ones do not)."""
    inner = estimator.calibrated_classifiers_[0].estimator
    return getattr(inner, "estimator", inner)


def feature_blocks(prep: object) -> tuple[tuple[str, ...], list[slice]]:
    """Which preprocessed columns belong to which input feature (a run of adjacent ones)."""
    names: list[str] = []
    groups: list[slice] = []
    for name, transformer, columns in prep.transformers_:  # type: ignore[attr-defined]
        if name == "remainder" or transformer == "drop":
            continue
        out = prep.output_indices_[name]  # type: ignore[attr-defined]
        widths = _widths(transformer, len(columns))
        offsets = np.cumsum([0, *widths])
        for column, lo, hi in zip(columns, offsets[:-1], offsets[1:], strict=True):
            names.append(column)
            groups.append(slice(out.start + lo, out.start + hi))
    # In the order of the model's input table (a curved feature has a transformer of its own).
    position = {str(name): i for i, name in enumerate(prep.feature_names_in_)}  # type: ignore[attr-defined]
    order = sorted(range(len(names)), key=lambda i: position[names[i]])
    return tuple(names[i] for i in order), [groups[i] for i in order]


def _widths(transformer: object, n_columns: int) -> list[int]:
    """Output columns per input column: one for a scaled number, one per bin of a binned
    term, one per kept level for a one-hot column (levels pooled as infrequent share a single
    extra output)."""
    if n_columns == 0:
        return []  # a transformer given no columns (a model with no categories) is not fitted
    categories = getattr(transformer, "categories_", None)
    if categories is None:
        # Scaled numbers give one column each, a binned term several: all of one feature.
        return [len(transformer.get_feature_names_out()) // n_columns] * n_columns  # type: ignore[attr-defined]
    infrequent = getattr(transformer, "infrequent_categories_", None) or [None] * n_columns
    return [
        len(levels) if rare is None else len(levels) - len(rare) + 1
        for levels, rare in zip(categories, infrequent, strict=True)
    ]


def reference_point(estimator: object, features: pd.DataFrame) -> list[float]:
    """Mean preprocessed row of the training features; stored on the model card."""
    prep, *_ = calibrated_parts(estimator)
    matrix = prep.transform(features)  # type: ignore[attr-defined]
    return np.asarray(matrix.mean(axis=0)).ravel().tolist()


def explain(estimator: object, features: pd.DataFrame, reference: list[float]) -> Contributions:
    """Contributions of every input feature to every row's calibrated log-odds."""
    return risk_and_contributions(estimator, features, reference)[1]


def risk_and_contributions(
    estimator: object, features: pd.DataFrame, reference: list[float]
) -> tuple[np.ndarray, Contributions]:
    """Every row's calibrated risk and its contributions, from one pass of the preprocessing.

    The risk is computed as ``predict_proba`` computes it for a single sigmoid-calibrated
    binary classifier (the calibrator applied to the linear model's decision function on the
    same preprocessed rows), so it is the same number, at the cost of one transform instead
    of two.
    """
    prep, linear, calibrator = calibrated_parts(estimator)
    a, b = float(calibrator.a_), float(calibrator.b_)
    weights = np.asarray(linear.coef_).ravel()  # type: ignore[attr-defined]
    ref = np.asarray(reference, dtype=float)
    if ref.shape != weights.shape:
        raise ModelError(
            f"the explanation reference has {ref.size} values but the model has {weights.size} "
            "inputs; retrain so the model card carries a matching reference"
        )
    matrix = transformed(prep, features)
    decision = linear.decision_function(matrix)  # type: ignore[attr-defined]
    risk: np.ndarray = np.asarray(calibrator.predict(decision), dtype=np.float64)
    dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix, dtype=float)
    # Built feature by feature (the transpose, one contiguous row per column): every later
    # step reads the contributions feature by feature, so ``values`` is column-major.
    per_column = np.subtract(dense.T, ref[:, None])
    per_column *= (-a * weights)[:, None]
    names, groups = feature_blocks(prep)
    by_feature = np.empty((len(groups), len(dense)))
    for j, group in enumerate(groups):
        if group.stop - group.start == 1:
            by_feature[j] = per_column[group.start]
        else:
            np.sum(per_column[group], axis=0, out=by_feature[j])
    values = by_feature.T
    intercept = float(np.asarray(linear.intercept_).ravel()[0])  # type: ignore[attr-defined]
    base = -(a * (intercept + float(weights @ ref)) + b)
    return risk, Contributions(base=base, values=values, features=names)


def transformed(prep: Any, features: pd.DataFrame) -> Any:
    """``prep.transform(features)``, with each transformer of text columns applied to the
    distinct rows of its columns only and its output spread back by index.

    A transform is row-wise, so this is the same matrix; but one-hot encoding looks each text
    up one by one, and a book repeats a handful of segments and plans a million times. Falls
    back to ``prep.transform`` for anything but a plain column transformer with a dense
    output."""
    import pandas as pd

    blocks = getattr(prep, "output_indices_", None)
    if blocks is None or getattr(prep, "sparse_output_", True) is not False:
        return prep.transform(features)
    steps = [
        (blocks[name], transformer, columns)
        for name, transformer, columns in prep.transformers_
        if transformer != "drop" and blocks[name].stop > blocks[name].start
    ]
    if any(isinstance(transformer, str) for _, transformer, _ in steps):  # "passthrough"
        return prep.transform(features)
    out = np.empty((len(features), max((s.stop for s in blocks.values()), default=0)))
    for block, transformer, columns in steps:
        frame = features[columns]
        if all(pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes):
            part = transformer.transform(frame)
        else:
            part = _by_distinct(transformer, frame)
        out[:, block] = part.toarray() if hasattr(part, "toarray") else part
    return out


def _by_distinct(transformer: Any, frame: pd.DataFrame) -> np.ndarray:
    """``transformer.transform(frame)`` computed on the distinct rows of ``frame``."""
    import pandas as pd

    combined = np.zeros(len(frame), dtype=np.int64)
    span = 1
    for column in frame.columns:
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=False)
        span *= len(uniques) + 1
        if span > 2**62:  # too many combinations to number: transform every row
            return np.asarray(transformer.transform(frame))
        combined = combined * (len(uniques) + 1) + codes
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    if len(first) * 4 > len(frame):  # mostly distinct: nothing to share
        part = transformer.transform(frame)
        return np.asarray(part.toarray() if hasattr(part, "toarray") else part)
    table = transformer.transform(frame.iloc[first])
    table = np.asarray(table.toarray() if hasattr(table, "toarray") else table)
    return table[inverse.ravel()]
