"""Model features declared in config/features.yaml: any company's columns, a small vocabulary.

A CS team's export has its own columns, so the model's inputs are configuration: each feature
names the column(s) it reads and one transform a CSM can follow ("seats used / seats bought",
"logins, change on the previous 30 days", "days until the renewal date"). The transforms are
monotone or simple on purpose, so a linear model fits them without hiding what they mean and
each feature reads as a reason. Nothing here knows a column of the sample book: the sample
book's 18 features are just the content of its config/features.yaml.

The label column is never read here, and an empty cell stays empty (NaN) unless the feature
says how to fill it: the model's imputer learns the median from the training rows, so the
same value fills it at scoring time.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.cell_formats import unit_problem
from models.config_files import load_yaml_model
from models.contract import AccountSchema, ColumnType
from models.errors import ConfigError, DataContractError

if TYPE_CHECKING:  # numpy and pandas where features are built, not where settings are read
    import numpy as np
    import pandas as pd

Transform = Literal[
    "as_is",
    "log",
    "clip",
    "ratio",
    "change",
    "days_until",
    "days_since",
    "missing",
    "yes_no",
    "category",
]
#: What each transform reads: one column, two (a ratio's numerator and denominator, a change's
#: now and before), and which column types it accepts.
TWO_COLUMNS = ("ratio", "change")
NUMERIC_TYPES: tuple[ColumnType, ...] = ("int", "float", "bool")
ACCEPTS: dict[str, tuple[ColumnType, ...]] = {
    "as_is": NUMERIC_TYPES,
    "log": ("int", "float"),
    "clip": ("int", "float"),
    "ratio": ("int", "float"),
    "change": ("int", "float"),
    "days_until": ("date",),
    "days_since": ("date",),
    "missing": ("string", "category", "int", "float", "bool", "date"),
    "yes_no": ("bool",),
    "category": ("string", "category", "bool", "int"),
}
NAME = r"^[a-z][a-z0-9_]*$"
#: Transforms whose reason shows a number a unit can describe: the column's own value (as_is,
#: log, clip) or the ratio of two.
UNIT_TRANSFORMS = ("as_is", "log", "clip", "ratio")


class FeatureDef(BaseModel):
    """One model feature: its columns, its transform, and how a CSM calls it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transform: Transform = "as_is"
    column: str | None = None
    columns: tuple[str, str] | None = None
    label: str | None = Field(default=None, min_length=1, max_length=80)
    clip: tuple[float, float] | None = None
    fill: float | None = None
    #: ``line``: one weight (the default); ``bins``: one weight per quantile bin, for an effect
    #: that bends or steps at a threshold (still one additive term, so its reason stays exact);
    #: ``auto``: bins only where they rank the validation rows better than the line (training
    #: reports both).
    curve: Literal["line", "bins", "auto"] = "line"
    #: How a reason shows the value: ``percent`` for a fraction shown as 41% (a column written
    #: "41%" is read as 0.41 with ``scale: 0.01`` in sources.yaml); None: a plain number.
    unit: Literal["percent"] | None = None

    @field_validator("unit", mode="before")
    @classmethod
    def _known_unit(cls, unit: object) -> object:
        if unit is not None and (problem := unit_problem(unit)):
            raise ValueError(problem)
        return unit

    @model_validator(mode="after")
    def _check(self) -> FeatureDef:
        if self.transform in TWO_COLUMNS:
            if self.columns is None or self.column is not None:
                raise ValueError(
                    f"transform {self.transform} reads two columns: give `columns: [a, b]` "
                    f"({'numerator, denominator' if self.transform == 'ratio' else 'now, before'})"
                )
        elif self.columns is not None:
            raise ValueError(f"transform {self.transform} reads one column: give `column:`")
        if self.transform == "clip" and self.clip is None:
            raise ValueError("transform clip needs `clip: [low, high]`")
        if self.clip is not None:
            if self.transform in ("missing", "yes_no", "category"):
                raise ValueError(f"clip does not apply to transform {self.transform}")
            if self.clip[0] > self.clip[1]:
                raise ValueError(f"clip: low {self.clip[0]} is above high {self.clip[1]}")
        if self.fill is not None and self.transform in ("missing", "category"):
            raise ValueError(f"fill does not apply to transform {self.transform}")
        if self.curve != "line" and self.transform in ("missing", "yes_no", "category"):
            raise ValueError(f"curve does not apply to transform {self.transform}")
        if self.unit is not None and self.transform not in UNIT_TRANSFORMS:
            shown = (
                "a change already reads as a percentage"
                if self.transform == "change"
                else f"its reason shows no number in a unit ({self.transform})"
            )
            raise ValueError(
                f"unit does not apply to transform {self.transform}: {shown}; unit applies to "
                f"{', '.join(UNIT_TRANSFORMS)}"
            )
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        """The account columns this feature reads."""
        if self.columns is not None:
            return self.columns
        return (self.column,) if self.column is not None else ()

    @property
    def categorical(self) -> bool:
        return self.transform == "category"


class ContextItem(BaseModel):
    """One entry of a card's context line: a column, how it is called, how it is written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    label: str | None = Field(default=None, min_length=1, max_length=40)
    format: str | None = Field(default=None, pattern=r"\{value[:}!]")


class CardConfig(BaseModel):
    """What a card shows besides the score: the context line's columns, in order, and where
    the account's CRM record is (a URL template over the row's columns, e.g.
    ``https://crm.example.com/accounts/{account_id}``), for a schema without a url column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context: tuple[str | ContextItem, ...] = Field(default=(), max_length=9)
    crm_url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=500)

    @property
    def url_fields(self) -> tuple[str, ...]:
        """The columns the CRM URL template reads."""
        if self.crm_url is None:
            return ()
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.crm_url) if f)

    @property
    def items(self) -> tuple[ContextItem, ...]:
        return tuple(
            ContextItem(column=item) if isinstance(item, str) else item for item in self.context
        )


class BaselineConfig(BaseModel):
    """The rule a CS team would use without a model, to compare the model against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: str
    riskier: Literal["higher", "lower"]
    name: str | None = None


class FeaturesConfig(BaseModel):
    """config/features.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: dict[str, FeatureDef] = Field(min_length=1)
    card: CardConfig = CardConfig()
    baseline: BaselineConfig | None = None
    #: Category levels rarer than this share of training rows are pooled into one "other".
    rare_level_share: float = Field(default=0.01, ge=0, lt=0.5)

    @model_validator(mode="after")
    def _names(self) -> FeaturesConfig:
        bad = [name for name in self.features if not re.match(NAME, name)]
        if bad:
            raise ValueError(
                f"feature names must be lower_snake_case (they become reason codes): {bad}"
            )
        return self


def feature_label(name: str, feature: FeatureDef) -> str:
    """What a CSM reads for the feature: its label, else its name in words."""
    return feature.label or name.replace("_", " ").capitalize()


class FeatureSet:
    """The validated features of one config, bound to the schema's as-of column.

    ``build`` turns validated account rows into the model's input table; the set is also
    stored on the model card (``to_dict``), so a model is always scored with the features it
    was trained on, whatever config/features.yaml says later.
    """

    def __init__(self, config: FeaturesConfig, date_column: str) -> None:
        self.config = config
        self.date_column = date_column

    @property
    def numeric(self) -> list[str]:
        return [name for name, f in self.config.features.items() if not f.categorical]

    @property
    def categorical(self) -> list[str]:
        return [name for name, f in self.config.features.items() if f.categorical]

    @property
    def names(self) -> list[str]:
        """Numeric features first, then categorical: the model's column order."""
        return self.numeric + self.categorical

    def curves(self, kind: str) -> list[str]:
        """Numeric features whose ``curve`` is ``kind`` (line, bins or auto)."""
        return [name for name in self.numeric if self.config.features[name].curve == kind]

    @property
    def source_columns(self) -> set[str]:
        return {column for f in self.config.features.values() for column in f.sources}

    def columns_outside(self, schema: AccountSchema) -> list[str]:
        """The columns these features read that ``schema`` does not declare: a model trained
        with them was trained under another data configuration."""
        return sorted(self.source_columns - set(schema.columns))

    def drift_problems(self, names: Sequence[str], source: str) -> list[str]:
        """One line per drift feature (product.yaml) that is not a numeric feature here."""
        return [
            f"{source}: health.drift_features: '{name}' is not a numeric feature of "
            f"features.yaml (known: {', '.join(self.numeric)})"
            for name in names
            if name not in self.numeric
        ]

    def label(self, name: str) -> str:
        return feature_label(name, self.config.features[name])

    def to_dict(self) -> dict[str, object]:
        return {"date_column": self.date_column, **self.config.model_dump(mode="json")}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FeatureSet:
        values = dict(data)
        date_column = str(values.pop("date_column"))
        return cls(FeaturesConfig.model_validate(values), date_column)

    def build(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns (``names`` order), same index as ``frame``."""
        import pandas as pd

        missing = sorted(self.source_columns - set(frame.columns))
        if missing:
            users = [n for n, f in self.config.features.items() if set(f.sources) & set(missing)]
            raise DataContractError(
                f"the account rows lack column(s) {', '.join(missing)} read by feature(s) "
                f"{', '.join(users)}; map them in sources.yaml or remove the feature(s) from "
                "features.yaml"
            )
        numeric = {name: self._numeric(name, frame) for name in self.numeric}
        out = pd.DataFrame(numeric, index=frame.index, dtype="float64")
        for name in self.categorical:
            out[name] = _levels(frame[self._column(name)])
        return out

    def _column(self, name: str) -> str:
        column = self.config.features[name].column
        assert column is not None  # FeatureDef guarantees one column for one-column transforms
        return column

    def _numeric(self, name: str, frame: pd.DataFrame) -> pd.Series:
        import numpy as np
        import pandas as pd

        feature = self.config.features[name]
        kind = feature.transform
        if kind in TWO_COLUMNS:
            assert feature.columns is not None
            first, second = (_floats(frame[c]) for c in feature.columns)
            if kind == "ratio":
                values = first / second.where(second != 0)
            else:
                values = relative_change(first, second)
        elif kind in ("days_until", "days_since"):
            days = (frame[self._column(name)] - frame[self.date_column]).dt.days.astype("float64")
            values = days if kind == "days_until" else -days
        elif kind == "missing":
            return frame[self._column(name)].isna().astype("float64")
        else:
            values = _floats(frame[self._column(name)])
        if feature.fill is not None:
            values = values.fillna(feature.fill)
        if kind == "log":
            values = pd.Series(np.log1p(values.clip(lower=0.0)), index=values.index)
        if feature.clip is not None:
            values = values.clip(*feature.clip)
        return values

    def baseline(self, frame: pd.DataFrame) -> np.ndarray:
        """The configured baseline rule's score (higher = riskier); zeros when none is set,
        which ranks every account alike (ROC AUC 0.5)."""
        import numpy as np

        rule = self.config.baseline
        if rule is None:
            return np.zeros(len(frame))
        values = self.build(frame)[rule.feature].to_numpy(dtype="float64")
        score = values if rule.riskier == "higher" else -values
        return np.nan_to_num(score, nan=float(np.nanmedian(score)) if len(score) else 0.0)

    def baseline_name(self) -> str:
        rule = self.config.baseline
        if rule is None:
            return "none configured (every account ranked alike)"
        return rule.name or f"{self.label(rule.feature)}, {rule.riskier} is riskier"


def relative_change(now: pd.Series, before: pd.Series) -> pd.Series:
    """(now - before) / before, in [-1, 1]: -0.48 reads "down 48%".

    A zero "before" counts as one, so a brand-new account ramping up from nothing reads as a
    rise, not as a division by zero.
    """
    before = before.astype("float64")
    change = (now.astype("float64") - before) / before.clip(lower=1.0)
    return change.clip(-1.0, 1.0)


def _floats(column: pd.Series) -> pd.Series:
    """A numeric or bool column as float64, empty cells as NaN."""
    return column.astype("Float64").astype("float64")


def _levels(column: pd.Series) -> pd.Series:
    """A categorical column as text; an empty cell is its own level, "(missing)"."""
    return column.astype("object").where(column.notna(), "(missing)").astype("str")


def check_features(
    config: FeaturesConfig, schema: AccountSchema, source: str
) -> tuple[list[str], list[str]]:
    """Problems (errors) and warnings of a feature config against the account schema."""
    problems: list[str] = []
    roles = {schema.id_column, schema.label_column, schema.date_column}
    for name, feature in config.features.items():
        where = f"{source}: features.{name}"
        for column in feature.sources:
            spec = schema.columns.get(column)
            if spec is None:
                problems.append(
                    f"{where}: column '{column}' is not in schema.yaml; add it there (and map "
                    "it in sources.yaml if your export calls it something else) or remove "
                    "the feature"
                )
            elif column in roles:
                problems.append(
                    f"{where}: column '{column}' is the {spec.role} column and cannot be a "
                    "feature (the label would leak the outcome)"
                )
            elif spec.type not in ACCEPTS[feature.transform]:
                problems.append(
                    f"{where}: transform {feature.transform} needs a column of type "
                    f"{' or '.join(ACCEPTS[feature.transform])}; '{column}' is {spec.type}"
                )
    names = set(config.features)
    numeric = {n for n, f in config.features.items() if not f.categorical}
    if config.baseline is not None and config.baseline.feature not in numeric:
        problems.append(
            f"{source}: baseline.feature: '{config.baseline.feature}' is not a numeric "
            f"feature of this file (known: {', '.join(sorted(numeric))})"
        )
    context = [item.column for item in config.card.items]
    for column in context:
        if column not in schema.columns and column not in names:
            problems.append(
                f"{source}: card.context: '{column}' is neither a column of schema.yaml nor "
                "a feature"
            )
    unknown = [f for f in config.card.url_fields if f not in schema.columns]
    if unknown:
        problems.append(
            f"{source}: card.crm_url: {{{unknown[0]}}} is not a column of schema.yaml; the "
            "template may use the account's columns, e.g. {" + schema.id_column + "}"
        )
    used = {c for f in config.features.values() for c in f.sources}
    special = {name for name, spec in schema.columns.items() if spec.role != "feature"}
    unused = [name for name in schema.columns if name not in used | special | set(context)]
    warnings = (
        [f"{source}: schema.yaml column(s) {', '.join(unused)} feed no feature"] if unused else []
    )
    return problems, warnings


def load_features(path: Path, schema: AccountSchema) -> tuple[FeatureSet, list[str]]:
    """Load config/features.yaml against the schema: the feature set and any warnings."""
    config = load_yaml_model(path, FeaturesConfig)
    problems, warnings = check_features(config, schema, str(path))
    if problems:
        raise ConfigError("\n".join(problems))
    return FeatureSet(config, schema.date_column), warnings
