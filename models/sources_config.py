"""config/sources.yaml: how a user's columns become ours, how strict loading is, and the optional
HTTP and SQL sources.

A mapping entry is one of three shapes, so the plain rename a user writes first stays one line:
``their column: our column``; ``their column: {to: our column, values: {...}}``, ``{to: ...,
scale: 0.01}`` or ``{to: ..., format: "%m/%d/%Y"}``; or a list of those when one of their
columns feeds several of ours. Every shape
is read into the same tuple of :class:`ColumnMap`, so the validator handles one form.

Value maps and constants are stored as the text a CSV cell would hold (``true``, ``2024-01-31``):
the validator then parses them exactly like data, with the same types, ranges and messages.
Checks that need the contract (does the target exist, is a scaled column numeric, does a mapped
value parse) live in :func:`sources_problems` below
(value parsing borrows the validator's parsers, imported only when there is a value to parse).

The config remembers the file it was read from, so every message names the real file even when
``CHURNBOT_CONFIG`` points elsewhere.
"""

from __future__ import annotations

import codecs
import datetime as dt
import difflib
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from models.cell_formats import format_problem, zone_problem
from models.config_files import load_yaml_model
from models.contract import AccountSchema, ColumnSpec

DEFAULT_FILE = Path("config/sources.yaml")
SCHEMA_FILE_NAME = "schema.yaml"
#: A date constant meaning "the day this export was written": a file's last modification
#: (UTC), the day a SQL or HTTP source is read. A one-snapshot export that arrives again each
#: week is then dated by its own arrival, with no edit, and a file that stops arriving ages.
EXPORT_DATE = "export_date"
URL_NOT_SHOWN = "<a URL, not shown>"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAPPING_SHAPES = (
    "expected our column name, {to: our column, values: {their value: our value}}, "
    "{to: our column, scale: number}, {to: our column, format: '%m/%d/%Y' or '1,234.5'}, "
    "or a list of those"
)


def cell_text(value: object) -> str:
    """A YAML scalar as the text a CSV cell would hold, so the validator parses it like data.

    YAML reads ``true`` as a bool and ``2024-01-31`` as a date; writing them back the way an
    export spells them keeps one parser for files, value maps and constants.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float | str):
        return str(value).strip()
    raise ValueError(f"expected a single value (text, number, true/false or a date), got {value!r}")


class ColumnMap(BaseModel):
    """One of our columns filled from one of theirs, optionally through a value map or a scale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str = Field(min_length=1)
    # Their value (as text) -> our value (as text the validator parses). Matched ignoring case
    # and surrounding spaces; a cell whose value is not listed is rejected, never guessed.
    values: dict[str, str] | None = Field(default=None, min_length=1)
    # Multiplies a number after parsing (0.01: cents to dollars); int or float columns only.
    scale: float | None = None
    # How their cells spell a date ("%m/%d/%Y") or a number ("1,234.5", "1.234,5"); see
    # models.cell_formats. A cell that does not follow it is rejected, never guessed.
    format: str | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain_rename(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"to": data}
        if not isinstance(data, dict):
            raise ValueError(MAPPING_SHAPES)
        return data

    @field_validator("values", mode="before")
    @classmethod
    def _values_as_text(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        out: dict[str, str] = {}
        for key, value in values.items():
            if isinstance(key, bool):
                # PyYAML reads unquoted Yes/No/On/Off/true/false keys as booleans, losing the
                # spelling the data uses.
                raise ValueError(
                    f"the key {key} was read by YAML as true/false; quote it as the data spells "
                    f'it, e.g. "Yes": true'
                )
            out[cell_text(key)] = cell_text(value)
        return out

    @field_validator("scale")
    @classmethod
    def _usable_scale(cls, scale: float | None) -> float | None:
        if scale is not None and (scale == 0 or not math.isfinite(scale)):
            raise ValueError("scale must be a finite number other than 0")
        return scale

    @model_validator(mode="after")
    def _one_rule(self) -> ColumnMap:
        if self.values is not None and self.scale is not None:
            raise ValueError("use either values or scale on one target, not both")
        if self.values is not None and self.format is not None:
            raise ValueError(
                "use either values or format on one target, not both (values name the whole "
                "cell as the data spells it)"
            )
        if self.values is not None:
            seen: dict[str, str] = {}
            for key in self.values:
                if key.lower() in seen:
                    raise ValueError(
                        f"values: '{seen[key.lower()]}' and '{key}' differ only in case "
                        "(values are matched ignoring case)"
                    )
                seen[key.lower()] = key
        return self

    def lookup(self) -> dict[str, str]:
        """Their values, lower-cased, to our values: what a cell is matched against."""
        return {key.lower(): value for key, value in (self.values or {}).items()}


def _one_or_many(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Read a single target as a one-element list, keeping error locations as the user wrote
    them (``mapping.Churn.to``, not ``mapping.Churn.0.to``)."""
    if isinstance(value, list):
        if not value:
            raise ValueError(f"an empty list maps to nothing; {MAPPING_SHAPES}")
        return handler(value)
    try:
        return handler([value])
    except ValidationError as exc:
        errors = [{**error, "loc": error["loc"][1:]} for error in exc.errors()]
        raise ValidationError.from_exception_data(exc.title, errors) from None  # type: ignore[arg-type]


Targets = Annotated[tuple[ColumnMap, ...], WrapValidator(_one_or_many)]


class HttpSourceConfig(BaseModel):
    """A paginated JSON endpoint serving account rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    token_env: str = "CHURNBOT_SOURCE_TOKEN"
    pagination: Literal["cursor", "page"] = "cursor"
    items_field: str = "items"
    cursor_field: str = "next_cursor"
    cursor_param: str = "cursor"
    page_param: str = "page"
    page_size_param: str = "page_size"
    page_size: int = Field(default=500, gt=0, le=100_000)
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff_seconds: float = Field(default=0.5, ge=0)


class SqlSourceConfig(BaseModel):
    """A query over a database that SQLAlchemy reaches; the URL (with its password) stays in
    the environment, never in a file that gets committed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url_env: str = "CHURNBOT_SQL_URL"
    query: str = Field(min_length=1)
    chunk_rows: int = Field(default=50_000, gt=0, le=10_000_000)
    connect_timeout_seconds: int = Field(default=10, gt=0, le=600)

    @model_validator(mode="before")
    @classmethod
    def _hide_a_url(cls, data: Any) -> Any:
        # Errors echo the bad value; a URL pasted here may carry a password.
        if isinstance(data, dict) and "://" in str(data.get("url_env", "")):
            return {**data, "url_env": URL_NOT_SHOWN}
        return data

    @field_validator("url_env")
    @classmethod
    def _a_variable_name(cls, name: str) -> str:
        if name == URL_NOT_SHOWN:
            raise ValueError(
                "url_env is the name of the environment variable holding the database URL "
                "(e.g. CHURNBOT_SQL_URL), not the URL itself: keep passwords out of config files"
            )
        if not ENV_NAME.fullmatch(name):
            raise ValueError("expected an environment variable name like CHURNBOT_SQL_URL")
        return name


class SourcesConfig(BaseModel):
    """How a user's table maps onto the contract and how strict loading is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mapping: dict[str, Targets] = Field(default_factory=dict)
    # Our column -> one value for every row, for a column the export lacks (a one-off
    # snapshot has no as-of date).
    constants: dict[str, str] = Field(default_factory=dict)
    max_reject_share: float = Field(default=0.05, ge=0, le=1)
    # How a CSV file's bytes are text: Excel on Windows saves "CSV (Comma delimited)" in the
    # system's code page (cp1252 in Western Europe and the Americas), not UTF-8.
    encoding: str = "utf-8"
    # The zone whose calendar day a time-zone-aware timestamp (a Parquet or SQL column) is
    # read as: 2026-11-17 03:00 UTC is 2026-11-16 in America/Los_Angeles.
    timezone: str = "UTC"
    http: HttpSourceConfig | None = None
    sql: SqlSourceConfig | None = None
    _file: Path = PrivateAttr(default=DEFAULT_FILE)

    @field_validator("mapping", mode="before")
    @classmethod
    def _their_names_stripped(cls, mapping: Any) -> Any:
        """Their column names as the loader finds them, without the spaces an export may pad
        a header name with (" Account Name "), which would otherwise never match."""
        if not isinstance(mapping, dict):
            return mapping
        stripped: dict[str, Any] = {}
        for name, targets in mapping.items():
            key = str(name).strip()
            if key in stripped:
                raise ValueError(
                    f"'{name}' and '{key}' name one column (spaces around a name do not count)"
                )
            stripped[key] = targets
        return stripped

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        try:
            return codecs.lookup(encoding).name
        except LookupError:
            raise ValueError(
                f"unknown encoding {encoding!r}; e.g. utf-8, cp1252 (Windows, Western "
                "Europe and the Americas) or latin-1"
            ) from None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, timezone: str) -> str:
        problem = zone_problem(timezone)
        if problem:
            raise ValueError(problem)
        return timezone

    @field_validator("constants", mode="before")
    @classmethod
    def _constants_as_text(cls, constants: Any) -> Any:
        if not isinstance(constants, dict):
            return constants
        return {name: cell_text(value) for name, value in constants.items()}

    @property
    def file(self) -> Path:
        """The file this config came from (``config/sources.yaml`` when built in code)."""
        return self._file

    @property
    def schema_file(self) -> Path:
        """The contract beside it: one config folder holds both."""
        return self._file.with_name(SCHEMA_FILE_NAME)

    @property
    def export_dated(self) -> bool:
        """Whether a constant is :data:`EXPORT_DATE`, to be resolved by :meth:`dated`."""
        return EXPORT_DATE in self.constants.values()

    def dated(self, day: dt.date) -> SourcesConfig:
        """This config with every :data:`EXPORT_DATE` constant set to ``day``."""
        if not self.export_dated:
            return self
        constants = {
            name: day.isoformat() if value == EXPORT_DATE else value
            for name, value in self.constants.items()
        }
        return self.model_copy(update={"constants": constants})

    def with_file(self, path: Path) -> SourcesConfig:
        """This config, naming ``path`` in its messages."""
        copy = self.model_copy()
        copy._file = path
        return copy


def load_sources_config(path: Path) -> SourcesConfig:
    return load_yaml_model(path, SourcesConfig).with_file(path)


def sources_problems(sources: SourcesConfig, schema: AccountSchema) -> list[str]:
    """Every way the mapping and constants of ``sources`` break the contract, one line each.

    Checked before any row is read (and by whoever checks the config folder): a target that is
    not a column, a scale on a non-number, a mapped value or constant that would not parse,
    two entries filling one column.
    """
    file, problems = sources.file, []
    filled_by: dict[str, list[str]] = {}
    for theirs, rules in sources.mapping.items():
        for key, rule in rule_keys(theirs, rules):
            filled_by.setdefault(rule.to, []).append(key)
            spec = schema.columns.get(rule.to)
            if spec is None:
                problems.append(
                    f"{file}: mapping: '{theirs}' maps to '{rule.to}', which is not a column "
                    f"of {sources.schema_file}{_did_you_mean(rule.to, schema)}"
                )
                continue
            if rule.scale is not None and spec.type not in ("int", "float"):
                problems.append(
                    f"{file}: {key}.scale: '{rule.to}' is a {spec.type} column; scale applies "
                    "to int or float columns only"
                )
            if rule.format is not None and (problem := format_problem(rule.format, spec.type)):
                problems.append(f"{file}: {key}.format: {problem}")
            for their_value, our_value in (rule.values or {}).items():
                problem = _cell_problem(rule.to, spec, our_value)
                if problem:
                    problems.append(f"{file}: {key}.values.{their_value}: {problem}")
    for name, value in sources.constants.items():
        filled_by.setdefault(name, []).append(f"constants.{name}")
        spec = schema.columns.get(name)
        if spec is None:
            problems.append(
                f"{file}: constants.{name}: not a column of {sources.schema_file}"
                f"{_did_you_mean(name, schema)}"
            )
        elif value == EXPORT_DATE:
            if spec.type != "date":
                problems.append(
                    f"{file}: constants.{name}: {EXPORT_DATE} is a date, and '{name}' is not "
                    f"a date column (its type is {spec.type})"
                )
        elif problem := _cell_problem(name, spec, value):
            problems.append(f"{file}: constants.{name}: {problem}")
    for ours, keys in filled_by.items():
        if len(keys) < 2:
            continue
        if any(key.startswith("constants.") for key in keys):
            problems.append(
                f"{file}: {' and '.join(keys)} all fill '{ours}'; keep one (a constant is for "
                "a column the data lacks)"
            )
        else:
            names = quoted([key.removeprefix("mapping.") for key in keys])
            problems.append(
                f"{file}: mapping: several columns map to '{ours}' ({names}); map one each"
            )
    return problems


def rule_keys(theirs: str, rules: tuple[ColumnMap, ...]) -> list[tuple[str, ColumnMap]]:
    """Each target with the key a user finds it under: mapping.Churn, or mapping.Signup.1."""
    if len(rules) == 1:
        return [(f"mapping.{theirs}", rules[0])]
    return [(f"mapping.{theirs}.{index}", rule) for index, rule in enumerate(rules)]


def _did_you_mean(name: str, schema: AccountSchema) -> str:
    close = difflib.get_close_matches(name, schema.columns, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _cell_problem(name: str, spec: ColumnSpec, text: str) -> str | None:
    """A mapped value or constant parsed like data, by the validator's own parsers. Imported
    here, not at the top: they need pandas, which a process that only loads its settings (the
    web process) never imports unless sources.yaml maps values or sets constants."""
    from models.validate import cell_problem

    return cell_problem(name, spec, text)


def quoted(names: list[str]) -> str:
    """Column names for a message: 'a', 'b'."""
    return ", ".join(f"'{name}'" for name in names)
