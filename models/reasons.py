"""Reasons in plain words: per-account contributions turned into sentences with numbers.

Each model feature has a sentence template in config/reasons.yaml and a reason code; features
sharing a code (three usage signals are all "usage_decline") are summed, so an account shows
its strongest *reasons*, not three wordings of one. The sentence comes from the code's
strongest feature for that account. Templates are checked at start-up by rendering them once
against a made-up row, so a typo fails there, not in front of a CSM.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.config_files import load_yaml_model
from models.contract import AccountSchema
from models.errors import ConfigError
from models.explain import Contributions


class FeatureReason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    risk: str = Field(min_length=1, max_length=200)
    healthy: str | None = Field(default=None, max_length=200)


class ReasonsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_impact: float = Field(default=0.05, ge=0)
    healthy_min_impact: float = Field(default=0.4, ge=0)
    top_reasons: int = Field(default=3, ge=1, le=5)
    features: dict[str, FeatureReason]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(sorted({entry.reason for entry in self.features.values()}))


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    impact: float  # log-odds this reason adds (negative: lowers risk)


@dataclass(frozen=True)
class Explained:
    reasons: tuple[Reason, ...]
    healthy: Reason | None


def _sample_values(schema: AccountSchema, features: Sequence[str]) -> dict[str, object]:
    """A made-up row with a value of the right type for every placeholder a template may use."""
    by_type = {
        "string": "Acme",
        "category": "smb",
        "int": 1,
        "float": 1.0,
        "bool": True,
        "date": pd.Timestamp("2026-01-05"),
    }
    values: dict[str, object] = {name: by_type[spec.type] for name, spec in schema.columns.items()}
    for feature in features:
        values.setdefault(feature, 1.0)
        values[f"{feature}_abs"] = 1.0
    return values


def load_reasons(
    path: Path, *, schema: AccountSchema, numeric: Sequence[str], categorical: Sequence[str]
) -> ReasonsConfig:
    """Load config/reasons.yaml; every model feature needs a template that renders."""
    config = load_yaml_model(path, ReasonsConfig)
    features = [*numeric, *categorical]
    problems = [
        f"{path}: features.{name}: no template for this model feature; add one"
        for name in features
        if name not in config.features
    ]
    problems += [
        f"{path}: features.{name}: not a model feature (known: {', '.join(features)})"
        for name in config.features
        if name not in features
    ]
    sample = _sample_values(schema, numeric)
    for name in categorical:
        sample[name] = "smb"
    for name, entry in config.features.items():
        for kind in ("risk", "healthy"):
            template = getattr(entry, kind)
            if template is None:
                continue
            fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
            unknown = sorted(f for f in fields if f not in sample)
            if unknown:
                problems.append(
                    f"{path}: features.{name}.{kind}: unknown placeholder {{{unknown[0]}}}; use a "
                    "column of schema.yaml, a model feature or <feature>_abs"
                )
                continue
            try:
                template.format(**sample)
            except (ValueError, TypeError, IndexError) as exc:
                problems.append(f"{path}: features.{name}.{kind}: cannot render: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
    return config


class ReasonWriter:
    """Turns a chunk's contributions into ranked, worded reasons for each account."""

    def __init__(self, config: ReasonsConfig, features: Sequence[str]) -> None:
        self.config = config
        self.features = tuple(features)
        self.codes = config.codes
        code_index = {code: i for i, code in enumerate(self.codes)}
        self.membership = np.zeros((len(self.features), len(self.codes)))
        for i, feature in enumerate(self.features):
            self.membership[i, code_index[config.features[feature].reason]] = 1.0

    def code_impacts(self, contributions: Contributions) -> np.ndarray:
        """Rows x reason codes: the log-odds each reason adds to each account."""
        self._check(contributions)
        return contributions.values @ self.membership

    def top_codes(self, contributions: Contributions) -> np.ndarray:
        """Rows x top_reasons code names ("" where fewer reasons pass min_impact)."""
        impacts = self.code_impacts(contributions)
        k = min(self.config.top_reasons, len(self.codes))
        order = np.argsort(-impacts, axis=1, kind="stable")[:, :k]
        chosen = np.take_along_axis(impacts, order, axis=1)
        names = np.asarray(self.codes, dtype=object)[order]
        names[chosen <= self.config.min_impact] = ""
        return names

    def explain(
        self, contributions: Contributions, rows: pd.DataFrame, features: pd.DataFrame
    ) -> list[Explained]:
        """Reasons for every row of ``rows`` (raw columns) with their ``features``."""
        impacts = self.code_impacts(contributions)
        values = contributions.values
        top = self.top_codes(contributions)
        code_index = {code: i for i, code in enumerate(self.codes)}
        # The feature that carries each code most strongly, up and down, for every row.
        masked = np.where(self.membership.T[None, :, :] > 0, values[:, None, :], np.nan)
        strongest_up = np.nanargmax(masked, axis=2)
        strongest_down = np.nanargmin(masked, axis=2)
        healthy_code = np.argmin(impacts, axis=1)
        merged = rows.reset_index(drop=True).join(
            features.reset_index(drop=True), suffixes=("", "_feature")
        )
        for feature in self.features:
            if pd.api.types.is_numeric_dtype(features[feature]):
                merged[f"{feature}_abs"] = features[feature].abs().to_numpy()
        records = merged.to_dict("records")
        out = []
        for row, record in enumerate(records):
            for feature in self.features:
                # The user's own figure reads best ("120 days late", not a clipped 90); the
                # model's feature value stands in where the row has none.
                if pd.isna(record.get(feature)):
                    record[feature] = record.get(f"{feature}_feature")
            reasons = []
            for code in top[row]:
                if not code:
                    continue
                c = code_index[code]
                feature = self.features[strongest_up[row, c]]
                text = self.config.features[feature].risk.format(**record)
                reasons.append(Reason(code, text, round(float(impacts[row, c]), 4)))
            out.append(
                Explained(
                    tuple(reasons),
                    self._healthy(row, record, impacts, strongest_down, healthy_code),
                )
            )
        return out

    def _healthy(
        self,
        row: int,
        record: dict[str, object],
        impacts: np.ndarray,
        strongest_down: np.ndarray,
        healthy_code: np.ndarray,
    ) -> Reason | None:
        c = healthy_code[row]
        if impacts[row, c] > -self.config.healthy_min_impact:
            return None
        feature = self.features[strongest_down[row, c]]
        template = self.config.features[feature].healthy
        if template is None:
            return None
        return Reason(self.codes[c], template.format(**record), round(float(impacts[row, c]), 4))

    def _check(self, contributions: Contributions) -> None:
        if contributions.features != self.features:
            raise ConfigError(
                f"the model's features {list(contributions.features)} differ from the reasons' "
                f"{list(self.features)}; retrain or update config/reasons.yaml"
            )
