"""The account-data contract (config/schema.yaml): declared once, checked at every boundary.

The schema says which columns exist, their types and allowed values, and which columns play a
special role (id, as-of date, name, owner, label). Loaders and the validator read it; nothing
else hard-codes a column's type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.config_files import load_yaml_model

ColumnType = Literal["string", "category", "int", "float", "bool", "date"]
Role = Literal["id", "date", "name", "owner", "label", "segment", "url", "feature"]
SPECIAL_ROLES: tuple[Role, ...] = ("id", "date", "name", "owner", "label")
#: Roles a schema may give one column or none: the segment (per-segment reports, digest
#: filters, feedback figures) and the account's CRM page (the card links to it).
OPTIONAL_ROLES: tuple[Role, ...] = ("segment", "url")
LABEL_TYPES: tuple[ColumnType, ...] = ("date", "bool")


class ColumnSpec(BaseModel):
    """One column of the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ColumnType
    role: Role = "feature"
    required: bool = True
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> ColumnSpec:
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise ValueError(f"min/max only apply to int or float columns, not {self.type}")
        if self.allowed is not None and self.type != "category":
            raise ValueError(f"allowed only applies to category columns, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class AccountSchema(BaseModel):
    """All columns of one account row; exactly one column per special role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, ColumnSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_roles(self) -> AccountSchema:
        for role in SPECIAL_ROLES:
            named = [name for name, spec in self.columns.items() if spec.role == role]
            if len(named) != 1:
                raise ValueError(
                    f"exactly one column must have role '{role}', found {len(named)}: {named}"
                )
        for role in OPTIONAL_ROLES:
            named = [name for name, spec in self.columns.items() if spec.role == role]
            if len(named) > 1:
                raise ValueError(f"at most one column may have role '{role}', found {named}")
        for role in ("id", "date"):
            if not self.columns[self.column_for(role)].required:
                raise ValueError(f"the '{role}' column must be required")
        label = self.label_column
        if self.columns[label].type not in LABEL_TYPES:
            raise ValueError(
                f"the label column '{label}' has type {self.columns[label].type}; a label is "
                "either type: date (the day the account churned, empty while it is a "
                "customer) or type: bool (yes/no, true/false or 1/0: churned within "
                "horizon_days after the row's date; for a single snapshot, simply churned)"
            )
        return self

    def optional_column(self, role: Role) -> str | None:
        """The column playing an optional role (segment, url), or None."""
        return next((name for name, spec in self.columns.items() if spec.role == role), None)

    @property
    def label_is_date(self) -> bool:
        return self.columns[self.label_column].type == "date"

    def column_for(self, role: Role) -> str:
        """The name of the column playing ``role`` (id, date, name, owner, label)."""
        return next(name for name, spec in self.columns.items() if spec.role == role)

    @property
    def id_column(self) -> str:
        return self.column_for("id")

    @property
    def date_column(self) -> str:
        return self.column_for("date")

    @property
    def name_column(self) -> str:
        return self.column_for("name")

    @property
    def owner_column(self) -> str:
        return self.column_for("owner")

    @property
    def label_column(self) -> str:
        return self.column_for("label")

    @property
    def required_columns(self) -> list[str]:
        return [name for name, spec in self.columns.items() if spec.required]


def load_schema(path: Path) -> AccountSchema:
    """Load and check config/schema.yaml; errors name the file and key."""
    return load_yaml_model(path, AccountSchema)


#: Every dtype :func:`canonical_dtype` can name (a Literal so pandas' typed ``astype`` accepts it).
CanonicalDtype = Literal["str", "int64", "Int64", "float64", "bool", "boolean", "datetime64[ns]"]


def canonical_dtype(spec: ColumnSpec) -> CanonicalDtype:
    """The pandas dtype a validated column has, so every loader and the generator agree.

    Optional int and bool columns use pandas' nullable dtypes so an empty cell stays empty
    instead of turning into 0 or False.
    """
    if spec.type in ("string", "category"):
        return "str"
    if spec.type == "int":
        return "int64" if spec.required else "Int64"
    if spec.type == "float":
        return "float64"
    if spec.type == "bool":
        return "bool" if spec.required else "boolean"
    return "datetime64[ns]"


def canonical_dtypes(schema: AccountSchema) -> dict[str, CanonicalDtype]:
    return {name: canonical_dtype(spec) for name, spec in schema.columns.items()}
