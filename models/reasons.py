"""Reasons in plain words: per-account contributions turned into sentences with numbers.

Each model feature has a sentence template in config/reasons.yaml and a reason code; features
sharing a code (three usage signals are all "usage_decline") are summed, so an account shows
its strongest *reasons*, not three wordings of one. The sentence comes from the code's
strongest feature for that account. Templates are checked at start-up by rendering them once
against a made-up row, so a typo fails there, not in front of a CSM.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

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
        # Parsed once, used for every chunk: each code's features, each feature's templates.
        self._code_features = tuple(
            np.flatnonzero(self.membership[:, c]) for c in range(len(self.codes))
        )
        self._risk = tuple(config.features[feature].risk for feature in self.features)
        self._healthy = tuple(config.features[feature].healthy for feature in self.features)

    def code_impacts(self, contributions: Contributions) -> np.ndarray:
        """Rows x reason codes: the log-odds each reason adds to each account."""
        self._check(contributions)
        return contributions.values @ self.membership

    def _top(self, impacts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows x top_reasons: code indices by impact, their impacts, and which are shown."""
        k = min(self.config.top_reasons, len(self.codes))
        order = np.argsort(-impacts, axis=1, kind="stable")[:, :k]
        chosen = np.take_along_axis(impacts, order, axis=1)
        return order, chosen, ~(chosen <= self.config.min_impact)

    def top_codes(self, contributions: Contributions) -> np.ndarray:
        """Rows x top_reasons code names ("" where fewer reasons pass min_impact)."""
        order, _, shown = self._top(self.code_impacts(contributions))
        names = np.asarray(self.codes, dtype=object)[order]
        names[~shown] = ""
        return names

    def explain(
        self, contributions: Contributions, rows: pd.DataFrame, features: pd.DataFrame
    ) -> list[Explained]:
        """Reasons for every row of ``rows`` (raw columns) with their ``features``.

        Column-wise rather than row by row: a value becomes a Python object only where a
        template that is actually shown reads it (about 3 placeholders of 4 sentences per
        account instead of every column of every row), which keeps explaining a large book
        within a small multiple of bare prediction.
        """
        impacts = self.code_impacts(contributions)
        n = len(impacts)
        order, chosen, shown = self._top(impacts)
        strongest_up, strongest_down = self._strongest(contributions.values)
        table = _TemplateValues(rows, features, self.features)

        risk_texts = table.render(self._risk, np.take_along_axis(strongest_up, order, 1), shown)

        everyone = np.arange(n)
        healthy_code = np.argmin(impacts, axis=1)
        healthy_impact = impacts[everyone, healthy_code]
        healthy_feature = strongest_down[everyone, healthy_code]
        has_template = np.array([t is not None for t in self._healthy], dtype=bool)
        healthy_shown = (
            ~(healthy_impact > -self.config.healthy_min_impact) & has_template[healthy_feature]
        )
        healthy_texts = table.render(self._healthy, healthy_feature, healthy_shown)

        codes = self.codes
        out = []
        for order_row, chosen_row, shown_row, texts_row, h_shown, h_code, h_impact, h_text in zip(
            order.tolist(),
            chosen.tolist(),
            shown.tolist(),
            risk_texts.tolist(),
            healthy_shown.tolist(),
            healthy_code.tolist(),
            healthy_impact.tolist(),
            healthy_texts.tolist(),
            strict=True,
        ):
            reasons = tuple(
                Reason(codes[c], text, round(impact, 4))
                for c, impact, show, text in zip(
                    order_row, chosen_row, shown_row, texts_row, strict=True
                )
                if show
            )
            healthy = Reason(codes[h_code], h_text, round(h_impact, 4)) if h_shown else None
            out.append(Explained(reasons, healthy))
        return out

    def _strongest(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows x codes: the feature that carries each code most strongly, up and down."""
        up = np.zeros((len(values), len(self.codes)), dtype=np.intp)
        down = np.zeros_like(up)
        for c, members in enumerate(self._code_features):
            block = values[:, members]
            up[:, c] = members[np.nanargmax(block, axis=1)]
            down[:, c] = members[np.nanargmin(block, axis=1)]
        return up, down

    def _check(self, contributions: Contributions) -> None:
        if contributions.features != self.features:
            raise ConfigError(
                f"the model's features {list(contributions.features)} differ from the reasons' "
                f"{list(self.features)}; retrain or update config/reasons.yaml"
            )


def _template_fields(template: str) -> tuple[str, ...]:
    """The names a template reads, nested format specs ("{x:{width}}") included."""
    names: list[str] = []
    for _, field, spec, _ in string.Formatter().parse(template):
        if field:
            names.append(re.split(r"[.\[]", field, maxsplit=1)[0])
        if spec:
            names.extend(_template_fields(spec))
    return tuple(dict.fromkeys(names))


class _TemplateValues:
    """The values templates read: the row's columns, then the model's features, then
    ``<feature>_abs``, resolved by name instead of joining every column of every row.

    A name resolves as in ``rows.join(features, suffixes=("", "_feature"))`` plus the
    ``_abs`` columns: the user's own figure reads best ("120 days late", not a clipped 90), and
    where the row has none the model's feature value stands in. Values are boxed by
    ``DataFrame.to_dict``, so a template sees exactly the Python objects it always saw.
    """

    def __init__(self, rows: pd.DataFrame, features: pd.DataFrame, names: Sequence[str]) -> None:
        self.rows = rows
        self.features = features
        self.names = frozenset(names)
        self.absolute = {
            f"{name}_abs": name for name in names if pd.api.types.is_numeric_dtype(features[name])
        }
        self._fields: dict[str, tuple[str, ...]] = {}

    def column(self, name: str) -> pd.Series | None:
        if name in self.absolute:
            return self.features[self.absolute[name]].abs()
        if name in self.rows.columns:
            return self.rows[name]
        base = name.removesuffix("_feature")
        if base != name and base in self.rows.columns and base in self.features.columns:
            return self.features[base]
        if name in self.features.columns:
            return self.features[name]
        return None

    def _records(self, fields: tuple[str, ...], positions: np.ndarray) -> list[dict[str, object]]:
        columns = {}
        for name in fields:
            column = self.column(name)
            if column is not None:
                columns[name] = column.iloc[positions].reset_index(drop=True)
        frame = pd.DataFrame(columns, index=pd.RangeIndex(len(positions)))
        # The column labels are the str field names (pandas-stubs types them as Hashable).
        records = cast("list[dict[str, object]]", frame.to_dict("records"))
        for name in fields:
            if name not in self.names or name not in columns:
                continue
            missing = np.flatnonzero(columns[name].isna().to_numpy())
            if not missing.size:
                continue
            fill = self.column(f"{name}_feature")
            if fill is None:
                stand_ins: list[object] = [None] * missing.size
            else:
                picked = fill.iloc[positions[missing]].reset_index(drop=True)
                stand_ins = [r[name] for r in pd.DataFrame({name: picked}).to_dict("records")]
            for i, value in zip(missing.tolist(), stand_ins, strict=True):
                records[i][name] = value
        return records

    def render(
        self, templates: Sequence[str | None], feature: np.ndarray, shown: np.ndarray
    ) -> np.ndarray:
        """Texts shaped like ``feature``: ``templates[feature]`` rendered where ``shown``."""
        out = np.full(feature.shape, None, dtype=object)
        for index in np.unique(feature[shown]).tolist():
            template = templates[index]
            if template is None:
                continue
            where = np.nonzero(shown & (feature == index))
            fields = self._fields.get(template)
            if fields is None:
                fields = self._fields[template] = _template_fields(template)
            records = self._records(fields, where[0])
            texts = np.empty(len(records), dtype=object)
            texts[:] = [template.format_map(record) for record in records]
            out[where] = texts
        return out
