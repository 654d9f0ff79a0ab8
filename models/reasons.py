"""Reasons in plain words: per-account contributions turned into sentences with numbers.

A feature may have a sentence template in config/reasons.yaml and a reason code; features
sharing a code (three usage signals are all "usage_decline") are summed, so an account shows
its strongest *reasons*, not three wordings of one. The sentence comes from the code's
strongest feature for that account. Templates are checked at start-up by rendering them once
against a made-up row, so a typo fails there, not in front of a CSM.

A feature without a template still reads well: its sentence is generated from its label, the
account's value and a reference learned from the training rows ("Posts per month: 3.00
(accounts that stayed: median 28.00)", "Contract: month-to-month (churns 3.1x as often as
two-year)"), and its reason code is the feature's name.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.config_files import load_yaml_model
from models.contract import AccountSchema
from models.errors import ConfigError
from models.explain import Contributions
from models.features import FeatureDef, FeatureSet

#: Levels (or yes/no values) seen in fewer training rows than this get no churn-rate comparison.
MIN_LEVEL_ROWS = 30
HEALTHY = "Healthy: "
PLURAL = "plural:"


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
    features: dict[str, FeatureReason] = Field(default_factory=dict)


def reason_code(config: ReasonsConfig, feature: str) -> str:
    """A feature's reason code: its template's, else the feature's own name."""
    entry = config.features.get(feature)
    return entry.reason if entry is not None else feature


def reason_codes(config: ReasonsConfig, features: Sequence[str]) -> tuple[str, ...]:
    """Every reason code the model can give (what playbooks.yaml may match on)."""
    return tuple(sorted({reason_code(config, name) for name in features}))


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


def load_reasons(path: Path, *, schema: AccountSchema, features: FeatureSet) -> ReasonsConfig:
    """Load config/reasons.yaml; every template names a model feature and renders."""
    config = load_yaml_model(path, ReasonsConfig)
    names = features.names
    problems = [
        f"{path}: features.{name}: not a feature of features.yaml (known: {', '.join(names)})"
        for name in config.features
        if name not in names
    ]
    sample = _sample_values(schema, features.numeric)
    for name in features.categorical:
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
                template.format_map(_countable(sample))
            except (ValueError, TypeError, IndexError) as exc:
                problems.append(f"{path}: features.{name}.{kind}: cannot render: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def reason_reference(
    features: FeatureSet, rows: pd.DataFrame, values: pd.DataFrame, churned: np.ndarray
) -> dict[str, dict[str, Any]]:
    """What generated reasons compare an account with, learned from the training rows.

    Numbers: the median among accounts that stayed (of the user's own column where the
    feature shows it as it is, else of the feature). Categories and yes/no: each level's
    churn rate, for levels seen often enough to say.
    """
    stayed = ~np.asarray(churned, dtype=bool)
    reference: dict[str, dict[str, Any]] = {}
    for name, feature in features.config.features.items():
        if feature.transform in ("category", "yes_no"):
            level = values[name].astype(str) if feature.categorical else values[name]
            table = pd.DataFrame({"level": level, "churned": ~stayed}).dropna()
            grouped = table.groupby("level")["churned"].agg(["mean", "size"])
            grouped = grouped[grouped["size"] >= MIN_LEVEL_ROWS]
            reference[name] = {"rates": {str(k): float(v) for k, v in grouped["mean"].items()}}
        elif feature.transform != "missing":
            shown = _shown_value(name, feature, rows, values)
            median = np.nanmedian(shown[stayed]) if stayed.any() else math.nan
            reference[name] = {"median": None if math.isnan(median) else float(median)}
    return reference


def _shown_value(
    name: str, feature: FeatureDef, rows: pd.DataFrame, values: pd.DataFrame
) -> np.ndarray:
    """The figure a generated reason shows: the user's column for as_is/clip/log, else the
    feature."""
    if feature.transform in ("as_is", "clip", "log") and feature.column is not None:
        return rows[feature.column].astype("Float64").astype("float64").to_numpy()
    return values[name].to_numpy(dtype="float64")


class _Wording(Protocol):
    """How one feature's reason reads: the names it needs and the sentence for one account."""

    fields: tuple[str, ...]

    def render(self, record: dict[str, object]) -> str: ...


class _Template:
    """A sentence template of config/reasons.yaml."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.fields = _template_fields(template)

    def render(self, record: dict[str, object]) -> str:
        return self.template.format_map(_countable(record))


class _Count:
    """A number in a template that can also say how many of something it counts:
    ``{open_escalations:plural:open escalation}`` reads "1 open escalation", "5 open
    escalations". Every other format spec formats the number as it is."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        if spec.startswith(PLURAL):
            count = round(float(cast("float", self.value)))
            return f"{count:,} {spec.removeprefix(PLURAL)}{'' if count == 1 else 's'}"
        return format(self.value, spec)


def _countable(record: Mapping[str, object]) -> dict[str, object]:
    """``record`` with its plain numbers as :class:`_Count` (bools stay bools)."""
    return {
        name: _Count(value)
        if isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
        else value
        for name, value in record.items()
    }


class _Generated:
    """The sentence of a feature without a template: label, value, and the reference."""

    def __init__(
        self,
        name: str,
        feature: FeatureDef,
        label: str,
        reference: Mapping[str, Any],
        *,
        healthy: bool,
    ) -> None:
        self.name = name
        self.feature = feature
        self.label = label
        self.reference = reference
        self.prefix = HEALTHY if healthy else ""
        shows_column = feature.transform in ("as_is", "clip", "log") and feature.column
        # The feature's own value, even where a column has the same name (a date feature
        # named after its column shows days, not the date).
        self.field = str(feature.column) if shows_column else f"{name}_feature"
        self.fields: tuple[str, ...] = (self.field,)

    def render(self, record: dict[str, object]) -> str:
        value = record.get(self.field)
        kind = self.feature.transform
        if kind == "missing":
            return f"{self.prefix}{self.label}: {'recorded' if self.prefix else 'not recorded'}"
        if kind in ("category", "yes_no"):
            return self.prefix + self._level(value)
        shown = self._number(value)
        median = self.reference.get("median")
        if median is None:
            return f"{self.prefix}{self.label}: {shown}"
        stayed = self._number(median)
        return f"{self.prefix}{self.label}: {shown} (accounts that stayed: median {stayed})"

    def _number(self, value: object) -> str:
        if _is_missing(value):
            return "not recorded"
        number = float(cast("float", value))
        kind = self.feature.transform
        if kind == "change":
            return f"{number:+.0%}"
        if kind in ("days_until", "days_since"):
            return f"{number:,.0f} day{'' if round(number) == 1 else 's'}"
        if number.is_integer():
            return f"{number:,.0f}"
        return f"{number:,.2f}"

    def _level(self, value: object) -> str:
        if _is_missing(value):
            return f"{self.label}: not recorded"
        level = _level_name(value)
        rates = {_level_name(k): v for k, v in self.reference.get("rates", {}).items()}
        text = f"{self.label}: {level}"
        rate = rates.get(level)
        if rate is None or len(rates) < 2:
            return text
        other_level, other_rate = (min if not self.prefix else max)(
            rates.items(), key=lambda item: item[1]
        )
        if other_level == level or min(rate, other_rate) <= 0:
            return text
        times = rate / other_rate
        return f"{text} (churns {times:.1f}x as often as {other_level})"


def _level_name(value: object) -> str:
    """A level as a CSM reads it: yes/no for booleans and 1.0/0.0 flags, else the text."""
    if isinstance(value, bool | np.bool_) or value in (1.0, 0.0, "True", "False", "1.0", "0.0"):
        return "yes" if value in (True, 1.0, "True", "1.0") else "no"
    return str(value)


def _is_missing(value: object) -> bool:
    """An empty cell, whatever spells it: None, NaN, NA, NaT, or a template's BLANK."""
    if value is BLANK:
        return True
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


class _Blank:
    """An empty cell in a template: reads "not recorded" whatever the format asks for."""

    def __format__(self, spec: str) -> str:
        return "not recorded"


BLANK = _Blank()


class ReasonWriter:
    """Turns a chunk's contributions into ranked, worded reasons for each account."""

    def __init__(
        self,
        config: ReasonsConfig,
        features: FeatureSet,
        reference: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.config = config
        self.features = tuple(features.names)
        self.codes = reason_codes(config, self.features)
        code_index = {code: i for i, code in enumerate(self.codes)}
        self.membership = np.zeros((len(self.features), len(self.codes)))
        for i, feature in enumerate(self.features):
            self.membership[i, code_index[reason_code(config, feature)]] = 1.0
        # Parsed once, used for every chunk: each code's features, each feature's wording.
        self._code_features = tuple(
            np.flatnonzero(self.membership[:, c]) for c in range(len(self.codes))
        )
        self._risk: tuple[_Wording | None, ...] = tuple(
            self._wording(features, reference, name, healthy=False) for name in self.features
        )
        self._healthy = tuple(
            self._wording(features, reference, name, healthy=True) for name in self.features
        )

    def _wording(
        self,
        features: FeatureSet,
        reference: Mapping[str, Mapping[str, Any]],
        name: str,
        *,
        healthy: bool,
    ) -> _Wording | None:
        entry = self.config.features.get(name)
        if entry is not None:
            template = entry.healthy if healthy else entry.risk
            return None if template is None else _Template(template)
        feature = features.config.features[name]
        if healthy and feature.transform == "missing":
            return None
        return _Generated(
            name, feature, features.label(name), reference.get(name, {}), healthy=healthy
        )

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

    def column(self, name: str) -> pd.Series | None:
        if name in self.absolute:
            return self.features[self.absolute[name]].abs()
        if name in self.rows.columns:
            return self.rows[name]
        base = name.removesuffix("_feature")
        if base != name and base in self.features.columns:
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
        for record in records:
            for name, value in record.items():
                if _is_missing(value):
                    record[name] = BLANK
        return records

    def render(
        self, wordings: Sequence[_Wording | None], feature: np.ndarray, shown: np.ndarray
    ) -> np.ndarray:
        """Texts shaped like ``feature``: ``wordings[feature]`` rendered where ``shown``."""
        out = np.full(feature.shape, None, dtype=object)
        for index in np.unique(feature[shown]).tolist():
            wording = wordings[index]
            if wording is None:
                continue
            where = np.nonzero(shown & (feature == index))
            records = self._records(wording.fields, where[0])
            texts = np.empty(len(records), dtype=object)
            texts[:] = [wording.render(record) for record in records]
            out[where] = texts
        return out
