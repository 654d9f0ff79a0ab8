"""Profile a CS team's export and propose a starter configuration (``churnbot init``).

Pure functions of a raw table (every cell as the text the file holds): each column's type,
share of empty cells, number of distinct values and skew; then guesses for the columns with a
role (id, as-of date, label, name, owner, segment) and one feature per remaining column with a
transform from features.yaml's vocabulary. Every guess carries its reason, so ``init`` can say
what it guessed and why, and what the user must check. Writing the files is the CLI's job.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.cell_formats import (
    DATE_FORMATS,
    NUMBER_FORMATS,
    PERCENT_CELL,
    PERCENT_SCALE,
    date_example,
    timestamp_days,
    zone_problem,
)
from models.sources_config import EXPORT_DATE
from models.validate import (
    FALSE_TOKENS,
    ISO_DATE,
    NULL_TOKENS,
    TRUE_TOKENS,
    plain_numbers,
    read_days,
)

#: A text column with at most this many distinct values (or this share of rows) is a category.
MAX_LEVELS = 50
#: A label in words ("Status": Active, Churned, ...) has at most this many values.
MAX_LABEL_VALUES = 10
#: An as-of date gives almost every row of an account a day of its own.
OWN_DAYS_SHARE = 0.95
#: A column of at least this many filled cells is a number or a date column though a few of
#: its cells are not (at most this share of them, with at most this many distinct values):
#: "approx. 40" among amounts, "TBD" among renewal dates. Their rows are rejected by train.
MIN_TOLERANT_ROWS = 200
MAX_ODD_SHARE = 0.005
MAX_ODD_VALUES = 5
MAX_LEVEL_SHARE = 0.05
#: Counts and money whose skew exceeds this are logged.
SKEWED = 2.0
#: Numeric columns with more empty cells than this share also get a "was it empty" feature.
MISSING_FLAG_SHARE = 0.05
#: A number with at least this many distinct values may be binned (``curve: auto``).
MIN_CURVE_VALUES = 10
#: A number column is a percentage when more than this share of its filled cells end in "%".
PERCENT_SHARE = 0.5
#: Names for role columns an export lacks (filled by a constant, or from the id column).
NO_NAME = "display_name"
NO_DATE = "snapshot_date"
NO_OWNER = "account_owner"

_ID = re.compile(r"(^|_)(id|key|uuid|number|no)$|^(customer|account|user|client)(_?id)?$")
_DATE = re.compile(r"(^|_)(as_of|asof|snapshot|observ\w*|date|day|month|period|week)($|_)")
#: Names that say "the day this row describes", not another day of the account's (created,
#: renewal, last login); German Stichtag too.
_AS_OF = re.compile(
    r"(^|_)(as_of|asof|snapshot|observ\w*|report(ing)?|extract\w*|export\w*|period|week|"
    r"month|stichtag)($|_)"
)
#: Label names, strongest first: "churn" beats "left" (champion_left_90d is not the label).
_LABELS = (
    # German "gekündigt" / "Kündigung" snake-case to gek_ndigt / k_ndigung.
    re.compile(r"churn|exited|attrit|cancel|k_ndig|kuendig"),
    re.compile(r"^(is_)?(lost|left|retained|active|renewed|stayed)$"),
)
#: A yes/no label that says the account stayed: read the other way round.
_STAYED = re.compile(r"retain|active|renew|stayed")
_CHURN_WORD = re.compile(
    r"churn|exit|attrit|cancel|lost|left|inactive|closed|former|k_ndig|kuendig"
)
# A few German, French and Spanish words too (Firma, Betreuer, société, responsable...).
_NAME = re.compile(
    r"(^|_)(name|company|organi[sz]ation|account_name|customer_name|firma|unternehmen|"
    r"soci_t_|societe|empresa|nom)($|_)"
)
_OWNER = re.compile(
    r"(^|_)(owner|csm|manager|rep|am|success|betreuer|verantwortlich|responsable|gestor)($|_)"
)
_SEGMENT = re.compile(r"(^|_)(segment|tier)($|_)")
#: A name that says a number is a time: Unix time, if its values fit (:func:`_unix_time`).
_TIME = re.compile(r"(^|_)(created|updated|modified|date|time|timestamp|ts|at|since|last)($|_)")
UNIX_2000, UNIX_2100 = 946_684_800, 4_102_444_800
_UNTIL = re.compile(r"renew|expir|end|due|next")


@dataclass(frozen=True)
class ColumnProfile:
    """What one column of the export holds."""

    source: str  # the column's name in the export
    name: str  # our lower_snake_case name for it
    kind: str  # int, float, bool, date or string
    missing_share: float
    distinct: int
    skew: float | None
    minimum: float | None
    #: How its dates or numbers are written when not as 2024-01-31 and 1234.5 (a mapping
    #: ``format:``), and whether another date pattern reads every value too (01/02/2024).
    format: str | None = None
    ambiguous: bool = False
    #: The few values that do not read as its kind (rows train will reject).
    odd: tuple[str, ...] = ()
    #: For a column written as percentages ("78%", "57,5 %"): the decimals they are written
    #: with (0 or 1); None for any other column. Read as fractions (``scale: 0.01``).
    percent: int | None = None

    def describe(self) -> str:
        kind = self.kind if self.percent is None else "percentage"
        shape = f"{kind}, {self.distinct:,} distinct, {self.missing_share:.0%} empty"
        if self.format is not None:
            shape += f", written like {self.example}"
        if self.skew is not None:
            shape += f", skew {self.skew:.1f}"
        return shape

    @property
    def label(self) -> str:
        """How a CSM reads its name: "Monthly charges" for MonthlyCharges, and the export's
        acronyms kept as it writes them ("NPS", "ARR (USD)" -> "ARR USD")."""
        acronyms = {w for w in re.findall(r"[A-Za-z]+", self.source) if len(w) > 1 and w.isupper()}
        spoken = words(self.name).split(" ")
        return " ".join(w.upper() if w.upper() in acronyms else w for w in spoken)

    @property
    def example(self) -> str:
        """How the export writes a value of this column, as the format shows it."""
        if self.format is None:
            return ""
        if self.kind == "date":
            return date_example(self.format)
        if self.percent is None:
            return self.format
        return f"78{NUMBER_FORMATS[self.format][1]}5%"  # the decimal mark is what tells

    @property
    def mapped(self) -> str | dict[str, Any]:
        """Its sources.yaml mapping entry: our name, with the format where there is one, and
        the scale that reads a percentage as a fraction."""
        if self.format is None:
            return self.name
        scale = {} if self.percent is None else {"scale": PERCENT_SCALE}
        return {"to": self.name, "format": self.format, **scale}

    @property
    def context(self) -> str | dict[str, str]:
        """Its entry in a card's context line: the column, with a percentage shown as one."""
        if self.percent is None:
            return self.name
        return {"column": self.name, "format": f"{{value:.{self.percent}%}}"}

    def dates(self, raw: pd.DataFrame) -> pd.Series:
        """The column of ``raw`` read as dates (NaT where a cell is not one)."""
        return _days(raw[self.source], self.format)


@dataclass
class Proposal:
    """A starter configuration with the reasons for every guess."""

    columns: list[ColumnProfile]
    roles: dict[str, str]  # role -> our column name
    mapping: dict[str, Any]
    constants: dict[str, str]
    schema: dict[str, dict[str, Any]]
    features: dict[str, dict[str, Any]]
    segment_levels: list[str]
    owners: list[str]  # the owner column's values (at most MAX_LEVELS), for a first digest
    newest: dt.date | None
    horizon_days: int | None  # for a yes/no label over a history: the observation cadence
    notes: list[str] = field(default_factory=list)  # what was guessed and why
    checks: list[str] = field(default_factory=list)  # what the user must check
    #: The zone the export's time-zone-aware timestamps are read in, when not UTC.
    timezone: str | None = None


def snake(name: str) -> str:
    """A column name as a lower_snake_case identifier ("Monthly Charges" -> monthly_charges)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    out = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")
    if not out or not out[0].isalpha():
        out = f"c_{out}"
    return out


def words(name: str) -> str:
    """A snake_case name as a CSM reads it: "monthly_charges" -> "Monthly charges"."""
    return name.replace("_", " ").capitalize()


def timestamps_as_days(raw: pd.DataFrame, timezone: str = "UTC") -> pd.DataFrame:
    """``raw`` with its typed timestamp columns (Parquet) read as days, as train and score
    read them (:func:`models.cell_formats.timestamp_days`); ``raw`` itself when it has none."""
    typed = [
        position
        for position, dtype in enumerate(raw.dtypes)
        if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype)
    ]
    if not typed:
        return raw
    out = raw.copy(deep=False)
    for position in typed:
        out.isetitem(position, timestamp_days(raw.iloc[:, position], timezone).array)
    return out


def timestamp_zone(raw: pd.DataFrame) -> str | None:
    """The time zone the export's time-zone-aware timestamps carry, when they all carry one
    other than UTC (a Parquet file written in America/New_York): the zone whose days they
    are read as. None when there are none, they are in UTC, or they disagree."""
    zones = {str(dtype.tz) for dtype in raw.dtypes if isinstance(dtype, pd.DatetimeTZDtype)}
    if len(zones) != 1 or zones & {"UTC", "utc", "Etc/UTC", "+00:00"}:
        return None
    zone = zones.pop()
    return zone if zone_problem(zone) is None else None


def profile_columns(raw: pd.DataFrame) -> list[ColumnProfile]:
    """Each column's kind, empty share, distinct values and skew (for numbers)."""
    raw = timestamps_as_days(raw)
    profiles = []
    used: set[str] = set()
    for source in raw.columns:
        text = raw[source].astype("string").str.strip()
        empty = text.isna() | text.str.lower().isin(NULL_TOKENS)
        values = text[~empty]
        name = snake(str(source))
        found = _kind(values)
        if found.kind == "int" and _TIME.search(name):
            found = _unix_time(values) or found
        while name in used:
            name += "_2"
        used.add(name)
        skew = minimum = None
        numbers = found.numbers
        if numbers is not None and len(numbers) > 2:
            skew = float(np.asarray(pd.Series(numbers).skew(), dtype="float64"))
            minimum = float(np.min(numbers))
        profiles.append(
            ColumnProfile(
                source=str(source),
                name=name,
                kind=found.kind,
                missing_share=float(empty.mean()) if len(text) else 0.0,
                distinct=int(values.nunique()),
                skew=None if skew is None or np.isnan(skew) else skew,
                minimum=minimum,
                format=found.format,
                ambiguous=found.ambiguous,
                odd=found.odd,
                percent=found.percent,
            )
        )
    return profiles


@dataclass(frozen=True)
class _Kind:
    """What :func:`_kind` found: the type, the numbers (for the skew), the format and whether
    it was a guess between two, and the few cells that do not follow it (``odd``)."""

    kind: str
    numbers: np.ndarray | None = None
    format: str | None = None
    ambiguous: bool = False
    odd: tuple[str, ...] = ()
    percent: int | None = None


def _kind(values: pd.Series) -> _Kind:
    """The column's type from its filled cells: every one a number, a date or yes/no as one
    spelling writes it; else, with at least :data:`MIN_TOLERANT_ROWS` cells, all but a few
    (:data:`MAX_ODD_SHARE`, :data:`MAX_ODD_VALUES`: "approx. 40" among amounts, "TBD" among
    renewal dates), whose rows train will reject; else text. Each distinct value is read once
    per spelling tried."""
    if values.empty:
        return _Kind("string")
    lowered = values.str.lower()
    two_words = lowered.isin(TRUE_TOKENS + FALSE_TOKENS).all() and lowered.nunique() <= 2
    if two_words and (not lowered.isin(("0", "1")).all() or values.nunique() == 2):
        return _Kind("bool")
    codes, uniques = pd.factorize(values)
    distinct = pd.Series(uniques, dtype=object)
    counts = np.bincount(codes, minlength=len(distinct))
    readings = [_Reading("number", fmt, _numbers(distinct, fmt)) for fmt in (None, *NUMBER_FORMATS)]
    readings += [
        _Reading("date", fmt, _days(distinct, fmt).to_numpy()) for fmt in (None, *DATE_FORMATS)
    ]
    whole = [reading for reading in readings if reading.read.all()]
    odd: tuple[str, ...] = ()
    if whole:
        found = whole[0]
    else:
        tolerable = [
            reading
            for reading in readings
            if reading.read.any()
            and len(values) >= MIN_TOLERANT_ROWS
            and counts[~reading.read].sum() <= MAX_ODD_SHARE * len(values)
            and (~reading.read).sum() <= MAX_ODD_VALUES
        ]
        if not tolerable:
            return _Kind("string")
        found = min(tolerable, key=lambda reading: counts[~reading.read].sum())
        odd = tuple(str(value) for value in distinct[~found.read])
    if found.kind == "date":
        dates = [r for r in whole if r.kind == "date"]
        return _Kind("date", None, found.format, found.format is not None and len(dates) > 1, odd)
    numbers = found.values[codes][found.read[codes]]
    integral = bool(np.all(np.mod(numbers, 1) == 0))
    written = distinct.astype(str).str.contains(PERCENT_CELL).to_numpy()
    if found.format is not None and counts[written].sum() > PERCENT_SHARE * len(values):
        # 78% is 0.78, as scale: 0.01 reads it and a spreadsheet's percentage cell holds it.
        places = 0 if integral else 1
        return _Kind("float", numbers * PERCENT_SCALE, found.format, False, odd, places)
    return _Kind("int" if integral else "float", numbers, found.format, False, odd)


@dataclass(frozen=True)
class _Reading:
    """The distinct values of a column read one way: as numbers or dates (``kind``), plainly
    or in ``format``; ``values`` (NaN / NaT where a value does not read)."""

    kind: str
    format: str | None
    values: np.ndarray

    @property
    def read(self) -> np.ndarray:
        return ~pd.isna(self.values)


def _days(cells: pd.Series, fmt: str | None) -> pd.Series:
    """``cells`` read as days as train reads them: an ISO date or timestamp as the day it
    writes (2026-11-16T09:14:03-05:00 is 2026-11-16, whatever offsets its neighbours carry),
    another spelling by its ``fmt`` (:func:`models.validate.read_days`); NaT where not."""
    if fmt is not None:
        return read_days(cells, fmt)
    text = cells.astype("string").str.strip()
    iso = text.str.fullmatch(ISO_DATE).fillna(False).astype(bool)
    return pd.to_datetime(text.str[:10].where(iso), format="%Y-%m-%d", errors="coerce")


def _numbers(distinct: pd.Series, fmt: str | None) -> np.ndarray:
    """``distinct`` as numbers, plainly or written in ``fmt`` (NaN where not)."""
    text = (
        distinct if fmt is None else plain_numbers(distinct, fmt, np.zeros(len(distinct), bool))[0]
    )
    return pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(float)


@dataclass(frozen=True)
class Chosen:
    """Columns the user names for a role (``init --id/--date/--label``), as the export names
    them: no guess is made for those."""

    account: str | None = None
    date: str | None = None
    label: str | None = None


def propose(raw: pd.DataFrame, exported: dt.date, chosen: Chosen | None = None) -> Proposal:
    """Guess roles and features for the export ``raw`` (cells as text), but for the roles
    ``chosen`` names; ``exported`` is the day it was written (its file's date), the as-of
    date of an export without one."""
    chosen = chosen or Chosen()
    notes: list[str] = []
    checks: list[str] = []
    # Typed timestamps (Parquet) are days from here on, as train and score read them.
    zone = timestamp_zone(raw)
    raw = timestamps_as_days(raw, zone or "UTC")
    if zone is not None:
        notes.append(
            f"time zone: the export's timestamps are in {zone}, so each is read as its day "
            f"there (timezone: {zone} in sources.yaml; else their day in UTC)"
        )
    columns = profile_columns(raw)
    rows = len(raw)
    by_name = {c.name: c for c in columns}

    def pick(pattern: re.Pattern[str], kinds: tuple[str, ...], exclude: set[str]) -> str | None:
        found = [
            c.name
            for c in columns
            if c.kind in kinds and c.name not in exclude and pattern.search(c.name)
        ]
        return found[0] if found else None

    def named(source: str | None, option: str, kinds: tuple[str, ...]) -> str | None:
        """Our name for the column ``source`` the user chose with ``option``, if any."""
        if source is None:
            return None
        found = [c for c in columns if c.source.strip().lower() == source.strip().lower()]
        if not found:
            known = ", ".join(repr(c.source) for c in columns)
            raise ValueError(f"{option} {source!r}: no such column (the export has {known})")
        if found[0].kind not in kinds:
            raise ValueError(
                f"{option} {source!r}: the column holds {found[0].kind} values, not "
                f"{' or '.join(kinds)}"
            )
        return found[0].name

    taken: set[str] = set()
    id_column = named(chosen.account, "--id", ("string", "int")) or _pick_id(columns, rows)
    taken.add(id_column)
    notes.append(f"account id: {by_name[id_column].source} ({_why_id(by_name[id_column], rows)})")
    date_column = named(chosen.date, "--date", ("date",)) or _pick_date(
        raw, columns, by_name[id_column], taken
    )
    label_column = named(chosen.label, "--label", ("bool", "date", "string", "int"))
    for pattern in _LABELS:
        for kinds in (("bool", "date"), ("int", "string")):
            label_column = label_column or pick(pattern, kinds, taken)
    by_values = None
    if label_column is None:
        by_values = _label_by_values(raw, columns, taken)
        label_column = by_values.name if by_values else None
    if label_column is None:
        raise ValueError(
            "no churn label found: name the column that says whether (or when) an account "
            "churned with a word like churn, churned, exited or cancelled, as yes/no, "
            "true/false, 1/0 or a date (or give it values such as Churned and Active)"
        )
    taken.add(label_column)
    label = by_name[label_column]
    if date_column is not None:
        taken.add(date_column)
    name_column = pick(_NAME, ("string",), taken)
    owner_column = pick(_OWNER, ("string",), taken | {name_column or ""})
    segment_column = pick(_SEGMENT, ("string",), taken | {name_column or "", owner_column or ""})

    mapping: dict[str, Any] = {}
    constants: dict[str, str] = {}
    owners: list[str] = []
    schema: dict[str, dict[str, Any]] = {}
    newest: dt.date | None = None
    horizon: int | None = None

    # Role columns keep the export's own names (snake_cased); where the export has none, the
    # column is filled by a constant or from the id, under a name of our choosing.
    id_name = by_name[id_column].name
    schema[id_name] = {"type": "string", "role": "id", "description": "Account id"}
    name_name = by_name[name_column].name if name_column else _unused(NO_NAME, by_name)
    if name_column is None:
        mapping[by_name[id_column].source] = [id_name, name_name]
        notes.append("account name: none found, the id is shown instead")
        checks.append(
            "map a column with the account's name to the name column, if the export has one"
        )
    else:
        mapping[by_name[id_column].source] = id_name
        mapping[by_name[name_column].source] = name_name
        notes.append(f"account name: {by_name[name_column].source}")
        taken.add(name_column)
    schema[name_name] = {"type": "string", "role": "name", "description": "Account name"}

    if date_column is None:
        date_name = _unused(NO_DATE, by_name)
        constants[date_name] = EXPORT_DATE
        newest = exported
        notes.append(
            f"as-of date: none found, so each export is one snapshot dated the day its file "
            f"was written ({exported} for this one: constants.{date_name}: {EXPORT_DATE} in "
            "sources.yaml, so next week's export needs no edit); it is evaluated by "
            "cross-validation"
        )
        checks.append(
            f"if a copy resets the file's date, or the export describes an earlier day, set "
            f"constants.{date_name} in sources.yaml to that day instead (e.g. {exported})"
        )
    else:
        date_name = by_name[date_column].name
        mapping[by_name[date_column].source] = by_name[date_column].mapped
        dates = by_name[date_column].dates(raw)
        newest = dates.max().date() if dates.notna().any() else None
        notes.append(
            f"as-of date: {by_name[date_column].source} ({dates.nunique():,} distinct dates, "
            f"newest {newest})"
        )
    schema[date_name] = {"type": "date", "role": "date", "description": "Date the row describes"}

    if owner_column is None:
        owner_name = _unused(NO_OWNER, by_name)
        constants[owner_name] = "unassigned"
        notes.append("owner: none found, every account is owned by 'unassigned'")
        checks.append(f"map the column naming each account's CSM to {owner_name}, if there is one")
    else:
        owner_name = by_name[owner_column].name
        mapping[by_name[owner_column].source] = owner_name
        owner_values = raw[by_name[owner_column].source].astype("string").str.strip().dropna()
        owners = sorted(str(v) for v in owner_values.unique() if v)[:MAX_LEVELS]
        notes.append(f"owner: {by_name[owner_column].source} ({len(owners)} owners)")
        taken.add(owner_column)
    schema[owner_name] = {"type": "string", "role": "owner", "description": "Owner CSM"}

    label_type = "date" if label.kind == "date" else "bool"
    inverted = label.kind == "bool" and bool(_STAYED.search(label.name))
    mapping[label.source] = (
        _label_map(raw, label, inverted=inverted)
        if inverted or label.kind not in ("date", "bool")
        else label.mapped
    )
    entry = mapping[label.source]
    value_map: dict[str, bool] = entry.get("values", {}) if isinstance(entry, dict) else {}
    if value_map and not any(value_map.values()):
        checks.append(
            f"none of {label.source}'s values ({', '.join(value_map)}) reads as "
            f"churned: set the ones that mean churned to true under mapping.{label.source}"
            ".values in sources.yaml, or train finds no churn to learn from"
        )
    if by_values is not None:
        checks.append(
            f"check mapping.{label.source}.values in sources.yaml: true marks the values that "
            "mean the account churned"
        )
    notes.append(_label_note(label.source, label_type, inverted, by_values is not None, value_map))
    if label_type != "date":
        if date_column is not None:
            horizon = _cadence(raw[by_name[id_column].source], dates)
            notes.append(
                f"horizon: {horizon} days, the usual gap between an account's observations "
                "(a yes/no label usually means churned before the next one)"
            )
        checks.append(
            "check horizon_days in product.yaml: the window the label means (e.g. 30 for "
            "'churned within a month')"
        )
    schema[label.name] = {
        "type": label_type,
        "role": "label",
        "required": False,
        "description": f"Churn label ({label.source})",
    }

    features: dict[str, dict[str, Any]] = {}
    segment_levels: list[str] = []
    if segment_column is not None:
        segment = by_name[segment_column]
        levels = sorted(raw[segment.source].astype("string").dropna().str.strip().unique())
        segment_levels = [str(level) for level in levels if level]
    for column in columns:
        if column.name in taken - ({segment_column} if segment_column else set()):
            continue
        spec, feature, why = _feature(column, rows)
        if spec is None:
            notes.append(f"skipped {column.source}: {why}")
            continue
        if column.name == segment_column:
            spec["role"] = "segment"
        mapping[column.source] = column.mapped
        schema[column.name] = spec
        if feature is not None:
            features[column.name] = feature
            notes.append(f"feature {column.name} ({feature.get('transform', 'as_is')}): {why}")
        if column.missing_share > MISSING_FLAG_SHARE and column.kind in ("int", "float"):
            features[f"{column.name}_missing"] = {
                "transform": "missing",
                "column": column.name,
                "label": f"{column.label} recorded",
            }
    for column in columns:
        if column.odd and column.source in mapping:
            what = "dates" if column.kind == "date" else "numbers"
            checks.append(
                f"{column.source}: {', '.join(repr(v) for v in column.odd)} are not {what}; "
                "train rejects their rows: blank those cells or fix them in the export"
            )
        if column.format is None or column.source not in mapping:
            continue
        notes.append(f"{column.source}: written like {column.example} (format {column.format!r})")
        if column.percent is not None:
            notes.append(
                f"{column.source}: percentages, read as fractions (scale: {PERCENT_SCALE} in "
                "sources.yaml: 78% is 0.78, as a spreadsheet's percentage cell holds it) and "
                "shown as percentages in reasons (unit: percent in features.yaml); a "
                f"playbooks.yaml condition on it is a fraction too (at_most: {{{column.name}: "
                "0.5}} for 50%)"
            )
        if column.ambiguous:
            checks.append(
                f"check mapping.{column.source}.format in sources.yaml: no day in the export "
                f"is above 12, so which part of {column.format!r} is the day is a guess"
            )
    if not features:
        raise ValueError("no usable feature found: every other column is text or empty")
    return Proposal(
        columns=columns,
        roles={
            "id": id_column,
            "date": date_column or "",
            "label": label_column,
            "name": name_column or "",
            "owner": owner_column or "",
            "segment": segment_column or "",
        },
        mapping=mapping,
        constants=constants,
        schema=schema,
        features=features,
        segment_levels=segment_levels,
        owners=owners,
        newest=newest,
        horizon_days=horizon,
        notes=notes,
        checks=checks,
        timezone=zone,
    )


def _unix_time(values: pd.Series) -> _Kind | None:
    """A column of whole numbers named like a time ("created", "updated_at") whose every value
    is Unix time of 2000-2099, in seconds or milliseconds: a date, read as its UTC day."""
    numbers = pd.to_numeric(values)
    for fmt, scale in (("epoch", 1), ("epoch_ms", 1000)):
        if numbers.between(UNIX_2000 * scale, UNIX_2100 * scale).all():
            return _Kind("date", format=fmt)
    return None


def _pick_date(
    raw: pd.DataFrame, columns: list[ColumnProfile], account: ColumnProfile, taken: set[str]
) -> str | None:
    """The as-of date: the day each row describes. With several rows per account, a date
    column under which each account's rows have days of their own (a created or renewal date
    repeats within an account), a name that says so first (:data:`_AS_OF`, then any
    date-like name); with one row per account, only a column whose name says so (a created
    or renewal date there is an account's attribute, and the export is one snapshot)."""
    dates = [c for c in columns if c.kind == "date" and c.name not in taken]
    ids = raw[account.source]
    several = ids.nunique() < len(ids)

    def rank(column: ColumnProfile) -> tuple[int, int]:
        named = 0 if _AS_OF.search(column.name) else 1 if _DATE.search(column.name) else 2
        return named, columns.index(column)

    if several:
        own = [c for c in dates if _own_days(ids, c.dates(raw)) >= OWN_DAYS_SHARE]
        if not own:
            raise ValueError(
                f"several rows per account ({account.source} repeats) but no date column "
                "gives an account's rows days of their own: the export needs the date each "
                "row describes (a snapshot or report date), or one row per account"
            )
        return min(own, key=rank).name
    named = [c for c in dates if _AS_OF.search(c.name)]
    return min(named, key=rank).name if named else None


def _own_days(ids: pd.Series, days: pd.Series) -> float:
    """The share of rows whose (account, day) no other row has."""
    return float((~pd.DataFrame({"id": ids, "day": days}).duplicated(keep=False)).mean())


def _unused(name: str, by_name: dict[str, ColumnProfile]) -> str:
    """``name`` for a column the export lacks, unless one of the export's has that name."""
    while name in by_name:
        name += "_2"
    return name


def _cadence(accounts: pd.Series, dates: pd.Series) -> int:
    """The median gap in days between one account's consecutive observations."""
    frame = pd.DataFrame({"account": accounts, "date": dates}).dropna()
    gaps = frame.sort_values("date").groupby("account")["date"].diff().dt.days.dropna()
    return int(gaps.median()) if len(gaps) and gaps.median() > 0 else 90


def _label_note(
    source: str, label_type: str, inverted: bool, by_values: bool, value_map: dict[str, bool]
) -> str:
    """One line on the label: how it was found, when not by its name, and what it means."""
    if label_type == "date":
        meaning = "the date an account churned"
    else:
        meaning = (
            "yes/no: churned within horizon_days after the row's date (for one snapshot: churned)"
        )
    if inverted:
        return (
            f"label: {source} says the account stayed, so it is read the other way round "
            f"(yes = stayed = not churned); {meaning}"
        )
    if by_values:
        churn_values = ", ".join(value for value, gone in value_map.items() if gone)
        return (
            f"label: {source}, no column is named like a churn label, but its values "
            f"{churn_values} say an account has gone; {meaning}"
        )
    return f"label: {source}, {meaning}"


def _pick_id(columns: list[ColumnProfile], rows: int) -> str:
    named = [c for c in columns if _ID.search(c.name) and c.kind in ("string", "int")]
    if named:
        return max(named, key=lambda c: c.distinct).name
    candidates = [c for c in columns if c.kind in ("string", "int") and c.missing_share == 0]
    if not candidates:
        raise ValueError("no account id found: the export needs a column naming each account")
    return max(candidates, key=lambda c: c.distinct).name


def _why_id(column: ColumnProfile, rows: int) -> str:
    if column.distinct == rows:
        return "one row per value: a single snapshot or one row per account"
    return f"{column.distinct:,} accounts over {rows:,} rows"


def _label_map(raw: pd.DataFrame, label: ColumnProfile, *, inverted: bool) -> dict[str, Any]:
    """A value map for a label written in words ("Churned"/"Active"), or a yes/no label that
    means "stayed" (``inverted``): the user must check it."""
    if inverted:
        values = sorted(raw[label.source].astype("string").dropna().str.strip().unique())
        churned = {str(v): str(v).lower() in FALSE_TOKENS for v in values if v}
    else:
        churned = dict(_label_values(raw, label))
    return {"to": label.name, "values": churned}


def _label_values(raw: pd.DataFrame, column: ColumnProfile) -> list[tuple[str, bool]]:
    """Each value of a label in words, and whether it says the account has gone."""
    values = sorted(raw[column.source].astype("string").dropna().str.strip().unique())
    return [(str(v), bool(_CHURN_WORD.search(snake(str(v))))) for v in values if v]


def _label_by_values(
    raw: pd.DataFrame, columns: list[ColumnProfile], taken: set[str]
) -> ColumnProfile | None:
    """A label no name gives away: a text column of a few values ("Status": Active,
    Churned, Onboarding) some of which say the account has gone and some not."""
    for column in columns:
        if column.kind != "string" or column.name in taken or column.distinct > MAX_LABEL_VALUES:
            continue
        gone = [flag for _, flag in _label_values(raw, column)]
        if any(gone) and not all(gone):
            return column
    return None


def _feature(
    column: ColumnProfile, rows: int
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str]:
    """The schema entry and feature for a data column, and why (None: skipped)."""
    required = column.missing_share == 0
    spec: dict[str, Any] = {"type": column.kind, "required": required}
    label = column.label
    if column.missing_share == 1:
        return None, None, "empty in every row"
    if column.kind == "bool":
        return spec, {"transform": "yes_no", "column": column.name, "label": label}, "yes/no"
    if column.kind in ("int", "float"):
        if column.distinct <= 1:
            return None, None, "the same value in every row"
        # Bins are tried where there are values enough to bend (kept only if they help).
        curve = {"curve": "auto"} if column.distinct >= MIN_CURVE_VALUES else {}
        # A percentage is read as a fraction and shown as a percentage again.
        unit = {} if column.percent is None else {"unit": "percent"}
        if column.skew is not None and column.skew > SKEWED and (column.minimum or 0) >= 0:
            feature = {"transform": "log", "column": column.name, "label": label, **unit, **curve}
            return spec, feature, f"skewed (skew {column.skew:.1f}), so logged"
        feature = {"column": column.name, "label": label, **unit, **curve}
        return spec, feature, "a percentage, as it is" if unit else "a number, as it is"
    if column.kind == "date":
        kind = "days_until" if _UNTIL.search(column.name) else "days_since"
        return spec, {"transform": kind, "column": column.name, "label": label}, f"a date: {kind}"
    if column.distinct <= MAX_LEVELS or column.distinct <= MAX_LEVEL_SHARE * rows:
        spec["type"] = "category"
        feature = {"transform": "category", "column": column.name, "label": label}
        return spec, feature, f"{column.distinct} levels"
    return None, None, f"free text or an identifier ({column.distinct:,} distinct values)"
