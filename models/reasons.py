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

import datetime as dt
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from models.cards import IMPACT_SCALE
from models.config_files import load_yaml_model
from models.contract import AccountSchema
from models.errors import ConfigError
from models.features import FeatureDef, FeatureSet
from models.wording import Generated, Template, Wording, countable

if TYPE_CHECKING:  # numpy, pandas: where reasons are learnt and packed, not in the settings
    import numpy as np
    import pandas as pd

    from models.explain import Contributions
    from models.packing import Records

#: Levels (or yes/no values) seen in fewer training rows than this get no churn-rate comparison.
MIN_LEVEL_ROWS = 30
#: Where an unsupported code's impact is moved so that no threshold lets it be shown: finite,
#: so the top reasons are still picked by the k passes of :meth:`ReasonWriter._top`.
UNSUPPORTED = 1e300


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
    #: A reason code whose features' weights training cannot tell from noise at this p-value
    #: is not shown (``models.evidence``); 1 shows every reason, as before it was tested.
    max_p_value: float = Field(default=0.05, gt=0, le=1)
    features: dict[str, FeatureReason] = Field(default_factory=dict)


def reason_code(config: ReasonsConfig, feature: str) -> str:
    """A feature's reason code: its template's, else the feature's own name."""
    entry = config.features.get(feature)
    return entry.reason if entry is not None else feature


def reason_codes(config: ReasonsConfig, features: Sequence[str]) -> tuple[str, ...]:
    """Every reason code the model can give (what playbooks.yaml may match on)."""
    return tuple(sorted({reason_code(config, name) for name in features}))


def _sample_values(schema: AccountSchema, features: Sequence[str]) -> dict[str, object]:
    """A made-up row with a value of the right type for every placeholder a template may use."""
    by_type = {
        "string": "Acme",
        "category": "smb",
        "int": 1,
        "float": 1.0,
        "bool": True,
        "date": dt.datetime(2026, 1, 5),
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
                template.format_map(countable(sample))
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
    import numpy as np
    import pandas as pd

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
            shown = _shown_value(name, feature, rows, values)[stayed]
            # None where no account that stayed has a value (a column filled only on churn).
            median = np.median(shown[~np.isnan(shown)]) if (~np.isnan(shown)).any() else math.nan
            reference[name] = {"median": None if math.isnan(median) else float(median)}
    return reference


def _shown_value(
    name: str, feature: FeatureDef, rows: pd.DataFrame, values: pd.DataFrame
) -> np.ndarray:
    """The figure a generated reason shows: the user's column for as_is/clip/log, else the
    feature."""
    if _shows_column(feature):
        return rows[str(feature.column)].astype("Float64").astype("float64").to_numpy()
    return values[name].to_numpy(dtype="float64")


def _shows_column(feature: FeatureDef) -> bool:
    """Whether a generated reason shows the user's own column (as_is, clip, log) rather than
    the feature's value."""
    return feature.transform in ("as_is", "clip", "log") and feature.column is not None


@dataclass(frozen=True)
class ChosenReasons:
    """A chunk's reasons as arrays, before any text: per row, the top reason codes with their
    impacts (the shown ones a prefix), the feature whose wording each uses, and the healthy
    reason."""

    order: np.ndarray  # rows x top_reasons: code indices, strongest first
    impact: np.ndarray  # rows x top_reasons: log-odds each adds
    shown: np.ndarray  # rows x top_reasons: bool, impact above min_impact
    feature: np.ndarray  # rows x top_reasons: the code's strongest risk-raising feature
    healthy_feature: np.ndarray  # rows: the strongest risk-lowering code's strongest feature
    healthy_impact: np.ndarray  # rows
    healthy_shown: np.ndarray  # rows: bool

    def counts(self) -> np.ndarray:
        """The record's count byte: reasons shown, and 0x80 where a healthy one follows."""
        import numpy as np

        return (self.shown.sum(axis=1) | (self.healthy_shown.astype(np.int64) << 7)).astype(
            np.uint8
        )


class ReasonWriter:
    """Ranks each account's reasons, and writes what their sentences need into its record.

    The sentences themselves are rendered when a card is read, from :meth:`spec` (each
    feature's reason code and wordings, and the value fields in record order).
    """

    def __init__(
        self,
        config: ReasonsConfig,
        features: FeatureSet,
        reference: Mapping[str, Mapping[str, Any]],
        *,
        evidence: Mapping[str, Any] | None = None,
    ) -> None:
        """``evidence``: the weights' covariance from training (``models.evidence``); a code
        whose features the data does not support (p above ``config.max_p_value``) is never
        a reason; it still counts in the risk. None (a model trained before it was
        recorded): every code may be."""
        import numpy as np

        self.config = config
        self.features = tuple(features.names)
        self.codes = reason_codes(config, self.features)
        code_index = {code: i for i, code in enumerate(self.codes)}
        self.feature_codes = np.array(
            [code_index[reason_code(config, feature)] for feature in self.features]
        )
        # Parsed once, used for every chunk: each code's features, each feature's wording.
        self._code_features = tuple(
            np.flatnonzero(self.feature_codes == c) for c in range(len(self.codes))
        )
        #: Per code: whether the data supports it as a reason (its features tested together).
        self.supported = np.ones(len(self.codes), dtype=bool)
        if evidence is not None and config.max_p_value < 1:
            from models.evidence import p_value

            for c, members in enumerate(self._code_features):
                names = [self.features[m] for m in members]
                self.supported[c] = p_value(evidence, names) <= config.max_p_value
        self._risk: tuple[Wording | None, ...] = tuple(
            self._wording(features, reference, name, healthy=False) for name in self.features
        )
        self._healthy = tuple(
            self._wording(features, reference, name, healthy=True) for name in self.features
        )
        wordings = [w for w in (*self._risk, *self._healthy) if w is not None]
        #: Every value a wording reads, in the order a record holds them.
        self.fields = tuple(dict.fromkeys(f for w in wordings for f in w.fields))
        self._reads = {
            kind: np.array(
                [[w is not None and field in w.fields for w in wordings] for field in self.fields],
                dtype=bool,
            ).reshape(len(self.fields), len(self.features))
            for kind, wordings in (("risk", self._risk), ("healthy", self._healthy))
        }
        from models.packing import slot_row

        self._slot = slot_row(len(self.features))

    def _wording(
        self,
        features: FeatureSet,
        reference: Mapping[str, Mapping[str, Any]],
        name: str,
        *,
        healthy: bool,
    ) -> Wording | None:
        entry = self.config.features.get(name)
        if entry is not None:
            template = entry.healthy if healthy else entry.risk
            return None if template is None else Template(template)
        feature = features.config.features[name]
        if healthy and feature.transform == "missing":
            return None
        return Generated(
            label=features.label(name),
            transform=feature.transform,
            # The feature's own value, even where a column has the same name (a date feature
            # named after its column shows days, not the date).
            field=str(feature.column) if _shows_column(feature) else f"{name}_feature",
            reference=reference.get(name, {}),
            healthy=healthy,
            unit=feature.unit,
        )

    def spec(self) -> dict[str, Any]:
        """What a card reader needs to word the reasons (see :class:`models.cards.ReasonReader`)."""
        return {
            "codes": [self.codes[c] for c in self.feature_codes],
            "fields": list(self.fields),
            "risk": [None if w is None else w.to_spec() for w in self._risk],
            "healthy": [None if w is None else w.to_spec() for w in self._healthy],
        }

    def code_impacts(self, contributions: Contributions) -> np.ndarray:
        """Rows x reason codes: the log-odds each reason adds to each account (its features'
        contributions summed, in feature order)."""
        import numpy as np

        self._check(contributions)
        values = contributions.values
        # Code by code into contiguous rows (``values`` is feature-major too), handed out as
        # its transpose: rows x codes, column-major.
        impacts = np.empty((len(self.codes), len(values)))
        for c, members in enumerate(self._code_features):
            if len(members) == 1:
                impacts[c] = values[:, members[0]]
                continue
            np.add(values[:, members[0]], values[:, members[1]], out=impacts[c])
            for member in members[2:]:
                impacts[c] += values[:, member]
        return impacts.T

    def _top(self, impacts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows x top_reasons: code indices by impact, their impacts, and which are shown.

        Ties go to the lower code index (a stable sort's order): with finite impacts, picking
        the largest k times gives exactly that, in k passes instead of a sort.
        """
        import numpy as np

        k = min(self.config.top_reasons, len(self.codes))
        if np.isfinite(impacts).all():
            order = np.empty((len(impacts), k), dtype=np.intp)
            left = np.array(impacts, order="C")  # row by row, as argmax reads it
            everyone = np.arange(len(impacts))
            for j in range(k):
                order[:, j] = np.argmax(left, axis=1)
                left[everyone, order[:, j]] = -np.inf
        else:
            order = np.argsort(-impacts, axis=1, kind="stable")[:, :k]
        chosen = np.take_along_axis(impacts, order, axis=1)
        return order, chosen, ~(chosen <= self.config.min_impact)

    def top_codes(self, contributions: Contributions) -> np.ndarray:
        """Rows x top_reasons code names ("" where fewer reasons pass min_impact)."""
        order, _, shown = self._top(self._ranked(self.code_impacts(contributions), risk=True))
        return self.code_names(order, shown)

    def _ranked(self, impacts: np.ndarray, *, risk: bool) -> np.ndarray:
        """``impacts`` with each code the data does not support pushed past every threshold
        (last as a risk reason, or as a healthy one), so that it never takes a slot and the
        shown reasons stay a prefix of each row's slots."""
        import numpy as np

        if self.supported.all():
            return impacts
        return np.where(self.supported, impacts, -UNSUPPORTED if risk else UNSUPPORTED)

    def code_names(self, order: np.ndarray, shown: np.ndarray) -> np.ndarray:
        """Code indices as names, "" where not shown."""
        import numpy as np

        names = np.asarray(self.codes, dtype=object)[order]
        names[~shown] = ""
        return names

    def choose(self, contributions: Contributions) -> ChosenReasons:
        """Each row's top reasons and healthy reason, as arrays."""
        import numpy as np

        impacts = self.code_impacts(contributions)
        order, chosen, shown = self._top(self._ranked(impacts, risk=True))
        strongest_up, strongest_down = self._strongest(contributions.values)
        everyone = np.arange(len(impacts))
        healthy = self._ranked(impacts, risk=False)
        healthy_code = np.argmin(healthy, axis=1)
        healthy_impact = healthy[everyone, healthy_code]
        healthy_feature = strongest_down[everyone, healthy_code]
        has_template = np.array([t is not None for t in self._healthy], dtype=bool)
        healthy_shown = (
            ~(healthy_impact > -self.config.healthy_min_impact) & has_template[healthy_feature]
        )
        return ChosenReasons(
            order=order,
            impact=chosen,
            shown=shown,
            feature=np.take_along_axis(strongest_up, order, 1),
            healthy_feature=healthy_feature,
            healthy_impact=healthy_impact,
            healthy_shown=healthy_shown,
        )

    def pack(
        self, chosen: ChosenReasons, rows: pd.DataFrame, features: pd.DataFrame, out: Records
    ) -> None:
        """Write each row's reason slots, then the values their wordings read, into ``out``
        (the layout :class:`models.cards.ReasonReader` reads)."""
        import numpy as np

        slots = [
            (chosen.shown[:, s], chosen.feature[:, s], chosen.impact[:, s])
            for s in range(chosen.shown.shape[1])
        ]
        slots.append((chosen.healthy_shown, chosen.healthy_feature, chosen.healthy_impact))
        for shown, feature, impact in slots:
            where = np.flatnonzero(shown)
            slot = np.empty(len(where), dtype=self._slot)
            slot["feature"] = feature[where]
            slot["impact"] = ten_thousandths(impact[where])
            out.add_fixed(where, slot.view(np.uint8).reshape(len(where), self._slot.itemsize))
        values = _TemplateValues(rows, features, self.features)
        for name, needed in zip(self.fields, self._needed(chosen), strict=True):
            for where, column in values.parts(name, np.flatnonzero(needed)):
                out.add_values(where, column)

    def _needed(self, chosen: ChosenReasons) -> np.ndarray:
        """Fields x rows: whether a wording the row shows reads the field."""
        import numpy as np

        # Rows x fields, one table row copied per account (a gather of whole rows), then
        # turned fields x rows so that each field's rows are contiguous.
        risk, healthy = self._reads["risk"].T, self._reads["healthy"].T
        needed = np.take(healthy, chosen.healthy_feature, axis=0)
        needed &= chosen.healthy_shown[:, None]
        for s in range(chosen.shown.shape[1]):
            slot = np.take(risk, chosen.feature[:, s], axis=0)
            slot &= chosen.shown[:, s, None]
            needed |= slot
        return np.ascontiguousarray(needed.T)

    def _strongest(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows x codes: the feature that carries each code most strongly, up and down (the
        first of equals, as ``argmax`` picks; a code of one feature needs no search)."""
        import numpy as np

        # Feature indices in bytes where they fit (the usual case): an eighth of the traffic.
        index = np.uint8 if len(self.features) <= 256 else np.intp
        up = np.empty((len(values), len(self.codes)), dtype=index, order="F")
        down = np.empty_like(up)
        if np.isnan(values).any():
            for c, members in enumerate(self._code_features):
                block = values[:, members]
                up[:, c] = members[np.nanargmax(block, axis=1)]
                down[:, c] = members[np.nanargmin(block, axis=1)]
            return up, down
        for c, members in enumerate(self._code_features):
            # Written in place into the code's (contiguous) column of ``up`` and ``down``.
            strongest, weakest = up[:, c], down[:, c]
            strongest[:] = weakest[:] = members[0]
            high = low = values[:, members[0]]
            for member in members[1:]:
                column = values[:, member]
                strongest[column > high] = member
                weakest[column < low] = member
                # No NaN here, so the running extremes are plain maxima and minima.
                high, low = np.maximum(high, column), np.minimum(low, column)
        return up, down

    def _check(self, contributions: Contributions) -> None:
        if contributions.features != self.features:
            raise ConfigError(
                f"the model's features {list(contributions.features)} differ from the reasons' "
                f"{list(self.features)}; retrain or update config/reasons.yaml"
            )


def ten_thousandths(impact: np.ndarray) -> np.ndarray:
    """``round(x, 4) * 10_000`` as integers, exactly as Python's ``round`` would give it
    (the few values within a hair of a tie are rounded by Python itself)."""
    import numpy as np

    scaled = impact * IMPACT_SCALE
    out = np.rint(scaled)
    near_tie = np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 1e-6
    for i in np.flatnonzero(near_tie).tolist():
        out[i] = round(round(float(impact[i]), 4) * IMPACT_SCALE)
    return out.astype(np.int32)


class _TemplateValues:
    """The values templates read: the row's columns, then the model's features, then
    ``<feature>_abs``, resolved by name instead of joining every column of every row.

    A name resolves as in ``rows.join(features, suffixes=("", "_feature"))`` plus the
    ``_abs`` columns: the user's own figure reads best ("120 days late", not a clipped 90), and
    where the row's cell of a feature's name is empty the model's feature value stands in.
    """

    def __init__(self, rows: pd.DataFrame, features: pd.DataFrame, names: Sequence[str]) -> None:
        from pandas.api.types import is_numeric_dtype

        self.rows = rows
        self.features = features
        self.names = frozenset(names)
        self.absolute = {f"{name}_abs": name for name in names if is_numeric_dtype(features[name])}

    def column(self, name: str) -> pd.Series | np.ndarray | None:
        if name in self.absolute:
            import numpy as np

            return np.abs(self.features[self.absolute[name]].to_numpy())
        if name in self.rows.columns:
            return self.rows[name]
        base = name.removesuffix("_feature")
        if base != name and base in self.features.columns:
            return self.features[base]
        if name in self.features.columns:
            return self.features[name]
        return None

    def parts(
        self, name: str, positions: np.ndarray
    ) -> list[tuple[np.ndarray, pd.Series | np.ndarray]]:
        """``name``'s values at ``positions``: (positions, values) pairs covering them all."""
        column = self.column(name)
        if column is None:  # read as empty ("not recorded")
            import pandas as pd

            return [(positions, pd.Series([None] * len(positions), dtype=object))]
        values = _take(column, positions)
        fill = self.column(f"{name}_feature") if name in self.names else None
        if fill is None:
            return [(positions, values)]
        missing = _missing(values)
        if not missing.any():
            return [(positions, values)]
        return [
            (positions[~missing], values[~missing]),
            (positions[missing], _take(fill, positions[missing])),
        ]


def _take(column: pd.Series | np.ndarray, positions: np.ndarray) -> pd.Series | np.ndarray:
    """``column`` at ``positions``: plain numbers as a numpy array (no pandas take per field
    and chunk), anything else (text, dates, numbers with empty cells) as a Series."""
    import numpy as np

    if isinstance(column, np.ndarray):
        return column[positions]
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
        return column.to_numpy()[positions]
    return column.iloc[positions]


def _missing(values: pd.Series | np.ndarray) -> np.ndarray:
    """Which of ``values`` are empty (NaN for plain floats; plain ints and flags never are)."""
    import numpy as np

    if isinstance(values, np.ndarray):
        return np.isnan(values) if values.dtype.kind == "f" else np.zeros(len(values), dtype=bool)
    return values.isna().to_numpy()
