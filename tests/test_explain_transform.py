"""models.explain.transformed: the preprocessing applied to distinct text rows only must give
exactly the matrix ``prep.transform`` gives, unknown, rare and empty categories included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.explain import transformed


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=n)
    numbers[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "x": numbers,
            "y": rng.integers(0, 5, n).astype(float),
            "segment": pd.array(
                rng.choice(["smb", "mid", "ent", "rare"], n, p=[0.5, 0.3, 0.195, 0.005]),
                dtype="str",
            ),
            "plan": pd.array(rng.choice(["a", "b", "c"], n), dtype="str"),
        }
    )


def prep(remainder: str = "drop") -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["x"]),
            (
                "cat",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", min_frequency=0.01, sparse_output=False
                ),
                ["segment", "plan"],
            ),
        ],
        remainder=remainder,
        sparse_threshold=0,
    )


@pytest.mark.parametrize("remainder", ["drop", "passthrough"])
def test_the_matrix_is_the_transformers_own(remainder: str) -> None:
    fitted = prep(remainder).fit(frame(2_000, seed=1))
    rows = frame(3_000, seed=2)
    rows.loc[:4, "segment"] = "never seen"
    rows.loc[5:9, "plan"] = pd.NA

    expected = fitted.transform(rows)
    got = transformed(fitted, rows)

    assert got.shape == expected.shape
    assert np.array_equal(got, expected, equal_nan=True)
    assert expected[:5, 1:].sum() > 0, "an unknown level lands in the infrequent column"
