"""Features that give the outcome away: written after the account churned.

An export is often pulled after the fact, and some of its columns describe the account as it
ended: a cancellation reason, a "closed" status, seats at zero, days since the last login
counted on the day of the export. Such a column separates churned accounts from the others
almost perfectly in the training data and is worthless the day before anyone knows, so a
model built on it scores beautifully on evaluation, by time or by cross-validation alike, and
fails in use; no metric of the report catches it.

So each feature's ranking power on its own is measured on the training rows (its ROC AUC, in
whichever direction it ranks); one at :data:`SUSPECT_AUC` or above is named, with what to
check, and the model is not promoted on its own: a person decides (``churnbot models
promote``). Real leading signals of churn rank far below that on their own (the sample book's
strongest, seat use, 0.70). A category ranks by its levels' churn rates, each row's rate
learnt on the other folds of accounts (:data:`FOLDS`): rates learnt on the rows they score
would flatter every level rarer than a few rows, an id-like column most of all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

#: A feature that ranks the training rows' outcomes this well on its own is suspect.
SUSPECT_AUC = 0.95
#: Folds of accounts a category's level rates are learnt on, each row scored by the others.
FOLDS = 5


@dataclass(frozen=True)
class Suspect:
    """A feature that alone ranks churned rows above the others with ROC AUC ``auc``."""

    name: str
    label: str
    auc: float

    def warning(self) -> str:
        """What a person reads, with what to check."""
        return (
            f"feature {self.name} ({self.label}) alone ranks the churned rows with ROC AUC "
            f"{self.auc:.3f}: is its column recorded after the churn (a cancellation, a closed "
            "status, activity counted on the export's day)? If so the model will fail in use: "
            "remove the feature from features.yaml, or export the column as it stood on each "
            "row's date"
        )


def suspects(
    features: pd.DataFrame,
    churned: np.ndarray,
    labels: dict[str, str],
    *,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    accounts: np.ndarray | None = None,
) -> tuple[Suspect, ...]:
    """The features of ``features`` that rank ``churned`` at :data:`SUSPECT_AUC` or above on
    their own, strongest first, each with its label from ``labels``; none when the rows hold
    one outcome only. ``accounts``: each row's account, so a category's rates are learnt on
    other accounts than the ones they score (default: each row its own)."""
    if churned.all() or not churned.any():
        return ()
    folds = pd.util.hash_array(
        np.asarray(accounts if accounts is not None else np.arange(len(churned)), dtype=object)
    ) % np.uint64(FOLDS)
    ranked = [(name, _alone(features[name].to_numpy(dtype="float64"), churned)) for name in numeric]
    ranked += [(name, _levels_alone(features[name], churned, folds)) for name in categorical]
    found = [
        Suspect(name, labels[name], round(auc, 4))
        for name, auc in ranked
        if auc is not None and auc >= SUSPECT_AUC
    ]
    return tuple(sorted(found, key=lambda suspect: -suspect.auc))


def _levels_alone(levels: pd.Series, churned: np.ndarray, folds: np.ndarray) -> float:
    """How well a category ranks ``churned`` by its levels' churn rates, each row's rate
    learnt on the rows of the other folds (a level they never saw: their overall rate)."""
    text = levels.astype("string").fillna("").to_numpy(dtype=object)
    score = np.empty(len(text))
    for fold in np.unique(folds):
        held = folds == fold
        fit = ~held
        if not fit.any():  # one fold only: nothing to learn from, no ranking
            return 0.5
        rates = pd.Series(churned[fit]).groupby(text[fit]).mean()
        held_levels = pd.Series(text[held])
        score[held] = held_levels.map(rates).fillna(churned[fit].mean()).to_numpy(dtype=float)
    auc = float(roc_auc_score(churned, score))
    return max(auc, 1.0 - auc)


def _alone(values: np.ndarray, churned: np.ndarray) -> float | None:
    """How well ``values`` alone rank ``churned``, in either direction, an empty cell ranked
    below every value or above them all (a column filled in only once an account has gone is
    the commonest leak); None when every cell is empty."""
    empty = np.isnan(values)
    if empty.all():
        return None
    low, high = np.nanmin(values) - 1.0, np.nanmax(values) + 1.0
    best = 0.0
    for filled in (np.where(empty, low, values), np.where(empty, high, values)):
        auc = float(roc_auc_score(churned, filled))
        best = max(best, auc, 1.0 - auc)
    return best
