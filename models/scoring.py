"""Batch scoring: the newest snapshot of every live account, scored in chunks.

Chunks keep memory flat as the book grows: features are built and scored a slice at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from models.contract import AccountSchema
from models.features import build_features

DEFAULT_CHUNK = 100_000


def latest_rows(frame: pd.DataFrame, schema: AccountSchema) -> pd.DataFrame:
    """Rows of the newest as-of date for accounts that had not churned by then."""
    as_of = frame[schema.date_column]
    latest = frame[as_of == as_of.max()]
    churned = latest[schema.label_column]
    live = churned.isna() | (churned > latest[schema.date_column])
    return latest[live].reset_index(drop=True)


def predict_risk(
    estimator: object,
    frame: pd.DataFrame,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Probability of churn within the horizon for every row, computed chunk by chunk."""
    total = len(frame)
    out = np.empty(total, dtype=float)
    for start in range(0, total, chunk_size):
        chunk = frame.iloc[start : start + chunk_size]
        out[start : start + len(chunk)] = estimator.predict_proba(build_features(chunk))[:, 1]  # type: ignore[attr-defined]
        if progress:
            progress(start + len(chunk), total)
    return out
