"""Abstaining when the data is thin: which accounts are not scored, and what they lack.

A model fills an empty cell with the training median and still answers with a percentage;
for an account whose row is mostly empty, or too new for the features that compare with an
earlier value, that percentage says more about the medians than about the account. Such an
account is shown as "not enough data to score", with what is missing, so a CSM knows what to
fix instead of trusting a number.

Pure: takes account rows, the model's feature set and the settings of config/product.yaml
(``abstain:``); returns, per row, None (enough data) or the list of what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.cards import missing_words
from models.features import FeatureSet
from models.spec import AbstainSettings

#: Transforms that compare a value with an earlier one: they need the account's history.
HISTORY_TRANSFORMS = ("change",)


@dataclass(frozen=True)
class InputColumns:
    """The columns whose emptiness counts as missing data, and the features reading each.

    A column read by a ``missing`` feature, or by a feature with a ``fill:``, is left out:
    there an empty cell is itself information (never surveyed, no open escalation).
    """

    columns: tuple[str, ...]
    readers: dict[str, tuple[str, ...]]  # column -> labels of the features that read it
    history: tuple[str, ...]  # labels of the features that need history

    def labels(self) -> list[str]:
        """Each column as the label of the first feature reading it (a CSM knows "Seats
        used", not ``seats_active``): what a missing column is called."""
        return [self.readers[column][0] for column in self.columns]

    @classmethod
    def of(cls, features: FeatureSet) -> InputColumns:
        meaningful = {
            column
            for feature in features.config.features.values()
            if feature.transform == "missing" or feature.fill is not None
            for column in feature.sources
        }
        readers: dict[str, list[str]] = {}
        for name, feature in features.config.features.items():
            for column in feature.sources:
                if column not in meaningful:
                    readers.setdefault(column, []).append(features.label(name))
        history = tuple(
            features.label(name)
            for name, feature in features.config.features.items()
            if feature.transform in HISTORY_TRANSFORMS
        )
        return cls(
            columns=tuple(readers),
            readers={column: tuple(labels) for column, labels in readers.items()},
            history=history,
        )


@dataclass(frozen=True)
class Thin:
    """Which rows of a chunk are too thin to score, as arrays (no object per row)."""

    empty: np.ndarray  # rows x InputColumns.columns: the cell is empty
    too_empty: np.ndarray  # bool per row: more of its inputs empty than allowed
    too_new: np.ndarray  # bool per row: first seen too recently for the history features
    age: np.ndarray  # days since first seen, inf where unknown

    @property
    def abstained(self) -> np.ndarray:
        return self.too_empty | self.too_new


def thin(
    rows: pd.DataFrame,
    inputs: InputColumns,
    settings: AbstainSettings,
    *,
    date_column: str,
    first_seen: pd.Series | None = None,
) -> Thin:
    """Each row's verdict as arrays (see :func:`thin_rows`); ``inputs`` is the model's
    :meth:`InputColumns.of`, computed once per run."""
    n = len(rows)
    empty = _empty(rows, inputs.columns)
    share = empty.mean(axis=1) if inputs.columns else np.zeros(n)
    known = _age_days(rows, date_column, first_seen)
    age = np.full(n, np.inf) if known is None else known
    judged = known is not None and inputs.history and settings.min_history_days
    return Thin(
        empty=empty,
        too_empty=share > settings.max_missing_share,
        too_new=age < settings.min_history_days if judged else np.zeros(n, dtype=bool),
        age=age,
    )


def _empty(rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Rows x ``columns``: which cells are empty, column by column (no copy of the table): a
    plain integer or flag column has no empty cell, a plain float's is NaN."""
    empty = np.empty((len(rows), len(columns)), dtype=bool, order="F")
    for j, name in enumerate(columns):
        column = rows[name]
        dtype = column.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biu":
            empty[:, j] = False
        elif isinstance(dtype, np.dtype) and dtype.kind == "f":
            np.isnan(column.to_numpy(), out=empty[:, j])
        else:
            empty[:, j] = column.isna().to_numpy()
    return empty


def thin_rows(
    rows: pd.DataFrame,
    features: FeatureSet,
    settings: AbstainSettings,
    *,
    first_seen: pd.Series | None = None,
) -> list[list[str] | None]:
    """For each row of ``rows`` (in order): None when there is enough data to score it, else
    what is missing, in words a CSM reads.

    ``first_seen`` (same index as ``rows``) is the date each account first appears in the
    data; without it (a single snapshot says nothing about age) the history check is skipped.
    """
    inputs = InputColumns.of(features)
    verdict = thin(rows, inputs, settings, date_column=features.date_column, first_seen=first_seen)
    labels = inputs.labels()
    result: list[list[str] | None] = [None] * len(rows)
    for i in np.flatnonzero(verdict.abstained).tolist():  # few rows: words only for them
        empty = verdict.empty[i] if verdict.too_empty[i] else np.zeros(len(labels), dtype=bool)
        result[i] = missing_words(
            [label for label, gone in zip(labels, empty.tolist(), strict=True) if gone],
            int(verdict.age[i]) if verdict.too_new[i] else None,
            needed_days=settings.min_history_days,
            history=inputs.history,
        )
    return result


def _age_days(
    rows: pd.DataFrame, date_column: str, first_seen: pd.Series | None
) -> np.ndarray | None:
    if first_seen is None:
        return None
    days = (rows[date_column] - first_seen.reindex(rows.index)).dt.days
    return days.fillna(np.inf).to_numpy(dtype=float)  # age unknown: not judged


def first_seen(
    live: pd.DataFrame, history: pd.DataFrame, *, id_column: str, date_column: str
) -> pd.Series | None:
    """The date each account of ``live`` first appears in ``history`` (same index as
    ``live``); None when ``history`` has a single as-of date, which says nothing of age.

    An account already there on the data's first date may be far older than the data, so
    its age is unknown (NaT) rather than counted from that date: a short export must not
    make every account look new."""
    dates = history[date_column]
    if dates.nunique() < 2:
        return None
    first = dates.groupby(history[id_column].astype(str)).min()
    first = first.where(first > dates.min())
    return pd.Series(
        live[id_column].astype(str).map(first).to_numpy(), index=live.index, name=date_column
    )
