"""Explanations add up exactly to the model's output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.errors import ModelError
from models.explain import explain, reference_point


def toy_model(method: str = "sigmoid") -> tuple[CalibratedClassifierCV, pd.DataFrame]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(
        {
            "usage_change": rng.normal(size=2000),
            "escalations": rng.poisson(1, 2000).astype(float),
            "segment": rng.choice(["smb", "mid_market", "enterprise"], 2000),
        }
    )
    y = (-x.usage_change + 0.5 * x.escalations + (x.segment == "smb") + rng.normal(size=2000)) > 1
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["usage_change", "escalations"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["segment"]),
        ]
    )
    fitted = Pipeline([("prep", prep), ("model", LogisticRegression())]).fit(x[:1000], y[:1000])
    model = CalibratedClassifierCV(FrozenEstimator(fitted), method=method)
    return model.fit(x[1000:], y[1000:]), x


def test_contributions_add_up_to_the_model_output() -> None:
    model, x = toy_model()
    reference = reference_point(model, x[:1000])
    result = explain(model, x, reference)
    assert result.features == ("usage_change", "escalations", "segment")
    assert result.values.shape == (len(x), 3)
    proba = model.predict_proba(x)[:, 1]
    np.testing.assert_allclose(result.log_odds(), logit(proba), atol=1e-9)


def test_signs_follow_the_story() -> None:
    model, x = toy_model()
    result = explain(model, x, reference_point(model, x[:1000]))
    usage = result.values[:, 0]
    # Falling usage (negative change) raises risk; rising usage lowers it.
    assert np.corrcoef(x.usage_change, usage)[0, 1] < -0.99


def test_isotonic_calibration_is_refused() -> None:
    model, x = toy_model("isotonic")
    with pytest.raises(ModelError, match="sigmoid calibration"):
        explain(model, x, [0.0] * 5)


def test_mismatched_reference_is_refused() -> None:
    model, x = toy_model()
    with pytest.raises(ModelError, match="reference has 2 values but the model has 5 inputs"):
        explain(model, x, [0.0, 0.0])
