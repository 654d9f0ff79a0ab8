"""Check a user's table against the contract, quarantine bad rows and let the good ones go on.

Every source (CSV, Parquet, HTTP, SQL) ends here, so a bad cell is reported the same way
wherever it came from: its line (or record), its column, the value and what was expected. The
column is named as the user's data names it, with ours beside it when the mapping renamed it
("CustomerID (account_id)"), since a user fixing an export searches it for its own names. One
pass reports every failure, pandera-style, because a user fixing an export wants the whole list,
not one error per run. A few bad rows must not stop a weekly digest, so they are set aside in a
rejects file; many bad rows usually mean a wrong export or mapping, so past a configurable share
the run stops instead of training on a sliver of the data.

All checks are pandas operations over whole columns: Python only touches the cells that failed.
Columns that already have the right dtype (Parquet written by churnbot) skip text parsing but
still get the range, required and allowed-value checks.

The mapping in sources.yaml is applied here too: a value map turns their spelling into ours
before parsing (a value it does not list is a rejected cell, never a guess), a scale multiplies
parsed numbers, and a constant fills a column the export lacks. Mapped values and constants are
checked against the contract once, before any row, so a wrong config is one config error rather
than every row rejected.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models.cell_formats import EPOCH_UNITS, date_example, number_pattern, timestamp_days
from models.contract import AccountSchema, ColumnSpec, canonical_dtypes
from models.errors import ConfigError, DataContractError
from models.listing import Unlisted, unlisted
from models.sources_config import ColumnMap, SourcesConfig, quoted, rule_keys, sources_problems

# Spellings that mean "no value" in typed columns. pandas treats them as missing by default;
# we read CSVs with that turned off so a name like "NA" survives in text columns, and accept
# them here only where they cannot be a real value.
# A dash and Excel's #N/A are how spreadsheets leave a number or a date blank.
NULL_TOKENS = ("", "na", "n/a", "nan", "null", "none", "-", "–", "—", "#n/a")
# A CRM's Y/N and a database's t/f too: in a yes/no column neither letter can mean anything
# else; and yes and no as German, French and Spanish exports write them.
TRUE_TOKENS = ("true", "yes", "1", "y", "t", "ja", "oui", "si", "sí")
FALSE_TOKENS = ("false", "no", "0", "n", "f", "nein", "non")
# A date, or an ISO 8601 timestamp whose date part is read as the day (CRMs export
# "2025-01-31T08:00:00.000Z"; a Parquet or SQL timestamp prints as "2025-01-31 08:00:00").
ISO_DATE = (
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
# Integers short enough to convert exactly; longer ones go through float and the range check.
INT_LITERAL = r"-?\d{1,18}"
INFINITY = ("inf", "+inf", "-inf", "infinity", "+infinity", "-infinity")
INT64_LIMIT = 2.0**63
#: A number in parentheses, as accounts write a negative amount; its inside is the number.
ACCOUNTING_NEGATIVE = r"^\s*\(([^()]*[0-9][^()]*)\)\s*$"
PROBLEMS_SHOWN = 5
VALUE_SHOWN = 40
# A column name shown as it is; any other (a space, a parenthesis, a colon) is quoted, so
# "column 'ARR (cents)' (arr)" still tells their name from ours.
PLAIN_NAME = re.compile(r"[\w.-]+")

ReasonFor = Callable[[str], str]
Describe = Callable[[np.ndarray], list[tuple[str, str]]]


@dataclass(frozen=True)
class Reject:
    """One failed cell (or, for a duplicate, one failed row: ``column`` is None).

    ``record`` is the line a user sees in an editor for CSV (header = line 1), else the
    1-based record number.
    """

    record: int
    column: str | None
    value: str
    reason: str
    #: The column as the user's data names it, with ours beside it ("CustomerID (account_id)",
    #: or for a constant "as_of (constants.as_of in config/sources.yaml)"); None when the data
    #: uses our name. ``column`` stays ours, for code; this is what a user is shown.
    label: str | None = None

    @property
    def shown_column(self) -> str | None:
        """The column as messages and the rejects file name it: a user fixing an export looks
        for the export's own column, which our name alone would not find."""
        return self.label or self.column


@dataclass(frozen=True)
class LoadResult:
    """The good rows in canonical dtypes, plus everything a user needs to fix the rest."""

    frame: pd.DataFrame
    rejects: tuple[Reject, ...]
    rejected_rows: pd.DataFrame
    warnings: tuple[str, ...]
    total_rows: int
    #: The accounts the newest snapshot no longer lists, found from every row's id and date
    #: (models.listing), of the whole source even when only some rows were read.
    unlisted: Unlisted
    record_label: str = "record"
    #: Rows in the source when only some were read and checked (see models.scoring_rows).
    source_rows: int | None = None

    @property
    def reject_share(self) -> float:
        """Share of input rows quarantined (0 for an empty input)."""
        return len(self.rejected_rows) / self.total_rows if self.total_rows else 0.0

    def describe_rejects(self, limit: int = PROBLEMS_SHOWN) -> str:
        """The first ``limit`` problems as one line, for a CLI summary or an error message."""
        return _describe(self.rejects[:limit], self.record_label)


class RejectLimitError(DataContractError):
    """Too many rows were rejected.

    ``result`` still carries every rejected row, so a caller can write the rejects file, but
    its ``rejects`` describe only the first few problems: describing every cell of a wrongly
    mapped million-row export would cost more than the failure it reports.
    """

    def __init__(self, message: str, result: LoadResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class _Failure:
    """The cells of one column (or rows, when ``column`` is None) that broke one rule."""

    column: str | None
    mask: np.ndarray
    describe: Describe


@dataclass(frozen=True)
class _Picked:
    """Where one of our columns comes from: their cells (or a constant) and the rule to apply.

    ``key`` is the sources.yaml key that put it there, for messages; "" for a column that
    already had our name. ``label`` is how a reject names the column when that differs from
    our name (see :func:`_column_label`), else "".
    """

    raw: pd.Series
    rule: ColumnMap | None = None
    key: str = ""
    constant: bool = False
    label: str = ""


@dataclass(frozen=True)
class _Column:
    """One column after coercion: values in a nullable dtype, which cells were empty, failures."""

    values: pd.Series
    empty: np.ndarray
    failures: list[_Failure]


def validate_frame(
    raw: pd.DataFrame,
    schema: AccountSchema,
    *,
    source: str,
    sources: SourcesConfig | None = None,
    first_record: int = 1,
    record_label: str = "record",
    records: np.ndarray | None = None,
    unreadable: Sequence[Reject] = (),
    unlisted: Unlisted | None = None,
) -> LoadResult:
    """Map, check and type ``raw``; raise :class:`DataContractError` if it cannot be used.

    ``raw`` holds cells as read: strings ("" when empty) from a CSV, typed columns from
    Parquet, JSON values from the HTTP source or database values from SQL. ``sources`` gives
    the mapping, constants and reject limit (defaults when None) and names the real config
    files in messages. ``first_record`` is the number of its first row (2 for a CSV with a
    header), ``record_label`` how a user calls those numbers ("line", "record" or "row");
    ``records`` numbers every row instead, where the numbers skip (a CSV record spanning
    lines). ``unreadable`` names rows (by number) that the reader could not split into cells
    and why: each is rejected whole with that reason, its cells unchecked, and counts towards
    the reject limit like any bad row. ``unlisted``: the accounts the newest snapshot no
    longer lists, when the caller found them from more rows than ``raw`` holds (else they are
    found from ``raw``).
    """
    sources = sources or SourcesConfig()
    problems = sources_problems(sources, schema)
    if problems:
        raise ConfigError("\n".join(problems))
    picked, warnings = _select_columns(raw, schema, source, sources)
    n_rows = len(raw)
    if records is None:
        records = np.arange(first_record, first_record + n_rows)

    columns = {
        name: _convert(name, schema.columns[name], item, sources) for name, item in picked.items()
    }
    # A constant fills every row, so only the data's own cells say whether a row is blank.
    filled = [~columns[name].empty for name, item in picked.items() if not item.constant]
    blank = ~_any(filled) if filled else np.zeros(n_rows, dtype=bool)
    failures = [failure for column in columns.values() for failure in column.failures]
    aside = _set_aside(unreadable, records)
    if aside is not None:
        # One reason per unreadable row: its cells (padded, cut or shifted) prove nothing.
        blank &= ~aside.mask
        failures = [replace(f, mask=f.mask & ~aside.mask) for f in failures] + [aside]
    # How rejects name each column: one lookup per column, never per row.
    labels = {name: item.label for name, item in picked.items() if item.label}
    id_codes, ids = pd.factorize(columns[schema.id_column].values)
    duplicates = _duplicates(
        schema, columns, id_codes, failures, blank, records, record_label, labels
    )
    if aside is not None:
        duplicates = replace(duplicates, mask=duplicates.mask & ~aside.mask)
    failures.append(duplicates)
    bad = _any([failure.mask for failure in failures]) & ~blank
    if blank.any():
        skipped = ", ".join(str(record) for record in records[blank][:PROBLEMS_SHOWN])
        more = ", ..." if blank.sum() > PROBLEMS_SHOWN else ""
        warnings.append(
            f"{source}: skipped {int(blank.sum())} empty row(s) ({record_label} {skipped}{more})"
        )

    total = int(n_rows - blank.sum())
    share = bad.sum() / total if total else 0.0
    max_reject_share = sources.max_reject_share
    over_limit = share > max_reject_share
    # Past the limit only the first few problems are shown, so don't describe thousands.
    rejects = _rejects(
        failures, blank, records, schema, labels, PROBLEMS_SHOWN if over_limit else None
    )
    good = ~bad & ~blank
    rejected_rows = raw.iloc[np.flatnonzero(bad)].set_axis(
        pd.Index(records[bad], name=record_label)
    )
    result = LoadResult(
        frame=_good_frame(schema, columns, good),
        rejects=rejects,
        rejected_rows=rejected_rows,
        warnings=tuple(warnings),
        total_rows=total,
        record_label=record_label,
        unlisted=(
            _unlisted(schema, columns, id_codes, pd.Index(ids), blank)
            if unlisted is None
            else unlisted
        ),
    )
    if over_limit:
        raise RejectLimitError(
            f"{source}: {int(bad.sum())} of {total} rows ({share:.1%}) rejected, over the "
            f"{max_reject_share:.1%} limit set by max_reject_share in {sources.file}; "
            f"first problems: {result.describe_rejects()}"
            f"{_mostly_duplicates(duplicates.mask & bad, bad, schema, labels, sources)}",
            result,
        )
    return result


def _mostly_duplicates(
    doubled: np.ndarray,
    bad: np.ndarray,
    schema: AccountSchema,
    labels: dict[str, str],
    sources: SourcesConfig,
) -> str:
    """When most rejected rows repeat an (account, date) key, what that usually means: the
    date column is not the day each row describes (a created or renewal date), or the id is
    not the account's. Raising the reject limit would not help, so the message says so."""
    if doubled.sum() * 2 <= bad.sum():
        return ""
    date, account = (labels.get(n, n) for n in (schema.date_column, schema.id_column))
    return (
        f". Most of them repeat an account and date: is {date} the day each row describes "
        f"(role: date in {sources.schema_file}), and {account} the account? A created or "
        "renewal date repeats within an account; raising max_reject_share will not help"
    )


def write_rejects(result: LoadResult, path: Path) -> None:
    """Write the quarantined rows as they were read, with their number and every reason.

    The columns keep the user's names, so after fixing the rows a user can feed the file back
    as it is (the two extra columns are ignored with a warning); the reasons name the columns
    the same way, with ours beside a mapped one, so each reason points at a column of the file.
    """
    reasons: dict[int, list[str]] = {}
    for reject in result.rejects:
        where = reject.shown_column or "row"
        reasons.setdefault(reject.record, []).append(f"{where}: {reject.reason}")
    out = result.rejected_rows.reset_index(drop=True)
    records = result.rejected_rows.index.to_numpy()
    out.insert(0, f"reject_{result.record_label}", records)
    out.insert(1, "reject_reasons", ["; ".join(reasons.get(int(r), [])) for r in records])
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)


def _describe(rejects: tuple[Reject, ...], record_label: str) -> str:
    parts = []
    for reject in rejects:
        column = f", column {reject.shown_column}" if reject.column else ""
        parts.append(f"{record_label} {reject.record}{column}: {reject.reason}")
    return "; ".join(parts)


def cell_problem(name: str, spec: ColumnSpec, text: str) -> str | None:
    """Why one cell of ``text`` would be rejected in column ``name``, or None if it is fine:
    the parsers and messages of data, for the mapped values and constants of sources.yaml."""
    column = _coerce(name, spec, pd.Series([text], dtype=object))
    for failure in column.failures:
        if failure.mask[0]:
            return failure.describe(np.array([0]))[0][1]
    return None


def _select_columns(
    raw: pd.DataFrame, schema: AccountSchema, source: str, sources: SourcesConfig
) -> tuple[dict[str, _Picked], list[str]]:
    """Match the user's columns (and constants) to ours, drop unknown ones, fail on a missing
    required one. ``sources`` has passed :func:`sources_problems`."""
    mapping, file = sources.mapping, sources.file
    warnings: list[str] = []
    found = [str(column).strip() for column in raw.columns]
    absent = [theirs for theirs in mapping if theirs not in found]
    if absent:
        warnings.append(
            f"{source}: mapping in {file} names column(s) {quoted(absent)}, not found in the data"
        )
    mapped_targets = {rule.to for name in found for rule in mapping.get(name, ())}
    doubled = [name for name in sources.constants if name in found or name in mapped_targets]
    if doubled:
        raise ConfigError(
            f"{file}: constants: {source} has its own column(s) {quoted(doubled)}; remove the "
            "constant, or the column from the export (a constant is for a column the data lacks)"
        )
    picked, shadowed, unknown = _match_columns(raw, schema, sources)
    if shadowed:
        warnings.append(
            f"{source}: ignoring column(s) {quoted(shadowed)}: the mapping in {file} "
            "fills them from another column"
        )
    if unknown:
        warnings.append(
            f"{source}: ignoring column(s) not in {sources.schema_file}: {quoted(unknown)} "
            f"(add them to the schema, or map them in {file}, to use them)"
        )

    missing = [name for name in schema.required_columns if name not in picked]
    if missing:
        unused = [name for name in found if name not in mapping and name not in schema.columns]
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, unused, n=1, cutoff=0.6)
            if close:
                hints.append(f"'{close[0]}' -> {name}?")
        suggestion = f" Possible matches: {', '.join(hints)}." if hints else ""
        where = (
            f"Check the mapping in {file} (their column: our column)."
            if mapping
            else f"Rename the column(s) or add a mapping (their column: our column) in {file}."
        )
        raise DataContractError(
            f"{source}: missing required column(s) {quoted(missing)}. {where}{suggestion}"
        )
    return picked, warnings


def _match_columns(
    raw: pd.DataFrame, schema: AccountSchema, sources: SourcesConfig
) -> tuple[dict[str, _Picked], list[str], list[str]]:
    """Our columns by where they come from, then the user's columns that the mapping shadows
    and those the schema does not know; no checks."""
    mapping = sources.mapping
    found = [str(column).strip() for column in raw.columns]
    mapped_targets = {rule.to for name in found for rule in mapping.get(name, ())}
    picked: dict[str, _Picked] = {}
    unknown: list[str] = []
    shadowed: list[str] = []
    for position, name in enumerate(found):
        if name in mapping:
            for key, rule in rule_keys(name, mapping[name]):
                label = _column_label(name, rule.to)
                picked[rule.to] = _Picked(raw.iloc[:, position], rule, key, label=label)
        elif name in mapped_targets:
            shadowed.append(name)
        elif name not in schema.columns or name in picked:
            unknown.append(name)
        else:
            picked[name] = _Picked(raw.iloc[:, position])
    for name, value in sources.constants.items():
        every_row = pd.Series([value] * len(raw), dtype=object)
        key = f"constants.{name}"
        label = f"{name} ({key} in {sources.file})"
        picked[name] = _Picked(every_row, key=key, constant=True, label=label)
    return picked, shadowed, unknown


def _column_label(theirs: str, ours: str) -> str:
    """How a reject names a column the mapping fills: their name, which a user finds in the
    export, then ours, which the schema and the mapping's target use; "" when they are one.
    One of their columns may fill several of ours, so ours tells those rejects apart."""
    if theirs == ours:
        return ""
    shown = theirs if PLAIN_NAME.fullmatch(theirs) else repr(theirs)
    return f"{shown} ({ours})"


@dataclass(frozen=True)
class RowKeys:
    """Each row's account, as-of date and label as validation will read them.

    ``accounts`` numbers the accounts 0, 1, ... (-1 where the id would be rejected or is
    empty); ``dates`` is NaT where the cell would be rejected or is empty; ``labels`` holds
    churn dates (NaT when empty) or, for a yes/no label, booleans (no when empty).
    """

    accounts: np.ndarray
    dates: np.ndarray
    labels: np.ndarray
    #: The account id of each number in ``accounts``, as validation writes it.
    ids: pd.Index


def key_columns(
    columns: Sequence[str], schema: AccountSchema, sources: SourcesConfig
) -> list[str] | None:
    """Which of a table's ``columns`` hold the id, as-of date and label (after the mapping),
    for a reader that reads those first: none for a constant; None when a name repeats, since
    a name then does not tell one column from another."""
    names = [str(column) for column in columns]
    if len(set(names)) < len(names):
        return None
    picked, _, _ = _match_columns(pd.DataFrame(columns=names), schema, sources)
    keys = [picked.get(name) for name in _key_names(schema)]
    return [str(item.raw.name) for item in keys if item is not None and not item.constant]


def row_keys(raw: pd.DataFrame, schema: AccountSchema, sources: SourcesConfig) -> RowKeys | None:
    """The id, as-of date and label of every row of ``raw`` (which needs only the columns
    :func:`key_columns` names), parsed and mapped exactly as :func:`validate_frame` does;
    None when the table lacks the id or the date, which :func:`validate_frame` then reports.

    Each distinct text cell is parsed once: a weekly export repeats every id once a week and
    has a few dozen dates, so this parses a few percent of its cells. Typed cells (Parquet
    dates) are cheap to check as they are.
    """
    picked, _, _ = _match_columns(raw, schema, sources)
    if schema.label_column not in picked:  # an optional label: no row says churned
        empty = pd.Series([None] * len(raw), dtype=object)
        picked[schema.label_column] = _Picked(empty, constant=True)
    keys = []
    for name in _key_names(schema):
        if name not in picked:
            return None
        item = picked[name]
        codes, distinct = _distinct(item.raw)
        column = _convert(name, schema.columns[name], replace(item, raw=distinct), sources)
        bad = _any([column.empty, *(failure.mask for failure in column.failures)])
        keys.append((codes, column.values.mask(bad) if bad.any() else column.values))
    (id_codes, ids), (date_codes, dates), (label_codes, labels) = keys
    accounts, account_ids = pd.factorize(ids)  # cells that differ as read may be one id
    label_values: np.ndarray
    no_label: np.datetime64 | bool
    if schema.label_is_date:
        label_values, no_label = labels.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT")
    else:
        label_values, no_label = labels.astype("boolean").fillna(False).to_numpy(bool), False
    return RowKeys(
        accounts=_every_row(accounts, -1, id_codes),
        dates=_every_row(dates.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT"), date_codes),
        labels=_every_row(label_values, no_label, label_codes),
        ids=pd.Index(account_ids),
    )


def _distinct(raw: pd.Series) -> tuple[np.ndarray | None, pd.Series]:
    """Codes into the distinct cells of ``raw`` (-1 for a missing cell) and those cells; no
    codes, and every cell, for typed cells (nothing to parse) or cells that cannot be hashed
    (a JSON list in a record)."""
    if _is_number(raw.dtype) or pd.api.types.is_datetime64_dtype(raw.dtype):
        return None, raw.reset_index(drop=True)
    try:
        codes, distinct = pd.factorize(raw)
    except TypeError:
        return None, raw.reset_index(drop=True)
    return codes, pd.Series(distinct, dtype=raw.dtype)


def _every_row(values: np.ndarray, missing: object, codes: np.ndarray | None) -> np.ndarray:
    """The value of each row from the values of its distinct cell; code -1 (a missing cell)
    picks ``missing``, appended last."""
    if codes is None:
        return values
    return np.append(values, np.array([missing], dtype=values.dtype))[codes]


def _key_names(schema: AccountSchema) -> tuple[str, str, str]:
    return schema.id_column, schema.date_column, schema.label_column


def _convert(name: str, spec: ColumnSpec, picked: _Picked, sources: SourcesConfig) -> _Column:
    """Apply the mapping's rule for one column, then parse it like any other."""
    if spec.type == "date":  # a typed timestamp is its day, as a CSV date is
        picked = replace(picked, raw=timestamp_days(picked.raw, sources.timezone))
    rule = picked.rule
    if rule is not None and rule.format is not None:
        return _formatted(name, spec, picked, rule, sources)
    if rule is None or rule.values is None:
        return _coerce(name, spec, picked.raw, scale=rule.scale if rule else None)
    mapped, unmapped = _map_values(picked.raw, rule.lookup())
    choices = ", ".join(rule.values)
    where = f"{picked.key}.values in {sources.file}"
    return _own_failure(
        _coerce(name, spec, mapped),
        _failure(
            name, unmapped, picked.raw, lambda v: f"{_quote(v)} is not one of {choices} ({where})"
        ),
    )


def _own_failure(column: _Column, failure: _Failure) -> _Column:
    """``column`` with the cells of ``failure`` failing for it alone: a value the map does not
    list, or a cell the format does not read, is one problem, not also "empty" or "not a
    date"."""
    if not failure.mask.any():
        return column
    others = [replace(other, mask=other.mask & ~failure.mask) for other in column.failures]
    return _Column(column.values, column.empty & ~failure.mask, [failure, *others])


def _formatted(
    name: str, spec: ColumnSpec, picked: _Picked, rule: ColumnMap, sources: SourcesConfig
) -> _Column:
    """A column whose cells follow ``format:`` (a date pattern or a number's separators),
    turned into the plain text every other column is parsed from; each reject shows the
    cell as the data writes it. Cells a typed source (Parquet, SQL) already gives as dates
    or numbers need no format."""
    raw, fmt, scale = picked.raw, str(rule.format), rule.scale
    if spec.type == "date" and not pd.api.types.is_datetime64_dtype(raw.dtype):
        convert, expected = _iso_dates, f"a date like {date_example(fmt)}"
    elif spec.type in ("int", "float") and not _is_number(raw.dtype):
        convert, expected = plain_numbers, f"a number like {fmt}"
    else:
        return _coerce(name, spec, raw, scale=scale)
    text = _text(raw)
    plain, unread = convert(text, fmt, _null(text))
    column = _coerce(name, spec, plain, scale=scale)
    shown = _Column(column.values, column.empty, [_as_written(f, raw) for f in column.failures])
    where = f"{picked.key}.format in {sources.file}"
    return _own_failure(
        shown, _failure(name, unread, raw, lambda v: f"{_quote(v)} is not {expected} ({where})")
    )


def _as_written(failure: _Failure, raw: pd.Series) -> _Failure:
    """``failure`` showing each cell as ``raw`` holds it (its reason names the value read)."""

    def describe(positions: np.ndarray) -> list[tuple[str, str]]:
        written = [_show(value) for value in raw.iloc[positions].tolist()]
        read = failure.describe(positions)
        return [(cell, reason) for cell, (_, reason) in zip(written, read, strict=True)]

    return replace(failure, describe=describe)


def plain_numbers(text: pd.Series, fmt: str, empty: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """``text`` (stripped cells) with every cell written in ``fmt`` as a plain number
    ("$1,234.50" -> "1234.50", "(1,234)" -> "-1234"; a currency sign and a percent sign
    dropped), and which filled
    cells do not follow it (those keep their text). Arrow's regex kernels do the work, so a
    column of a million amounts costs no Python per cell."""
    cells = pa.array(text.to_numpy(dtype=object), pa.string())
    # An accountant's negative: "(1,234.50)" is -1234.50.
    negative = pc.match_substring_regex(cells, ACCOUNTING_NEGATIVE)
    cells = pc.replace_substring_regex(cells, ACCOUNTING_NEGATIVE, r"\1")
    parts = pc.extract_regex(cells, number_pattern(fmt).pattern)
    matched = parts.is_valid().to_numpy(zero_copy_only=False)
    whole = pc.replace_substring_regex(parts.field("whole"), r"\D", "")
    part = parts.field("part")
    decimals = pc.if_else(pc.equal(part, ""), "", pc.binary_join_element_wise(".", part, ""))
    sign = pc.if_else(negative, "-", parts.field("sign"))
    plain = pc.binary_join_element_wise(sign, whole, decimals, "")
    out = np.where(matched, plain.to_numpy(zero_copy_only=False), text.to_numpy(dtype=object))
    return pd.Series(out, index=text.index, dtype=object), ~matched & ~empty


def read_days(cells: pd.Series, fmt: str | None) -> pd.Series:
    """``cells`` read as days: ISO (``fmt`` None), a strftime pattern, or Unix time (its UTC
    day); NaT where a cell does not read."""
    if fmt in EPOCH_UNITS:
        numbers = pd.to_numeric(cells, errors="coerce")
        whole = numbers.where(numbers == numbers.round())
        return pd.to_datetime(whole, unit=EPOCH_UNITS[str(fmt)], errors="coerce").dt.normalize()
    return pd.to_datetime(cells, errors="coerce", format=fmt or "ISO8601")


def _iso_dates(text: pd.Series, fmt: str, empty: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """``text`` (stripped cells) with every cell written in ``fmt`` as 2024-01-31, and which
    filled cells do not follow it (those keep their text). Each distinct value is read once."""
    codes, distinct = pd.factorize(text)
    days = read_days(pd.Series(distinct, dtype=object), fmt)
    iso = days.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    read = days.notna().to_numpy()[codes]
    out = pd.Series(np.where(read, iso[codes], text), index=text.index, dtype=object)
    return out, ~read & ~empty


def _map_values(raw: pd.Series, lookup: dict[str, str]) -> tuple[pd.Series, np.ndarray]:
    """Their cells through a value map (ignoring case and spaces), and which filled cells it
    does not list. Empty cells stay empty unless the map names "" itself."""
    text = _text(raw)
    ours = text.str.lower().map(lookup)
    listed = ours.notna().to_numpy()
    unmapped = ~listed & ~_null(text)
    mapped = pd.Series(np.where(listed, ours, np.where(unmapped, "", text)), dtype=object)
    return mapped, unmapped


def _coerce(name: str, spec: ColumnSpec, raw: pd.Series, scale: float | None = None) -> _Column:
    """Parse one column into its type and record every cell that breaks the contract.

    ``scale`` (numbers only) multiplies each parsed value before the range checks.
    """
    if spec.type in ("int", "float"):
        column = _numbers(name, spec, raw, scale)
    elif spec.type == "date":
        column = _dates(name, raw)
    elif spec.type == "bool":
        column = _bools(name, raw)
    else:
        column = _strings(name, spec, raw)
    if spec.required:
        column.failures.insert(
            0,
            _failure(
                name,
                column.empty,
                raw,
                lambda value: (
                    f"{_quote(value)} is missing, but the column is required"
                    if value.strip()
                    else "empty, but the column is required"
                ),
            ),
        )
    return column


def _numbers(name: str, spec: ColumnSpec, raw: pd.Series, scale: float | None) -> _Column:
    failures: list[_Failure] = []
    number: np.ndarray
    if _is_number(raw.dtype):
        empty = raw.isna().to_numpy()
        if spec.type == "int" and scale is None and pd.api.types.is_signed_integer_dtype(raw.dtype):
            if not empty.any():  # compared as they are: no nullable copy, no float copy
                values = raw.astype("int64")
                return _Column(values, empty, _ranges(name, spec, raw, values.to_numpy()))
            values = raw.astype("Int64")
            number = values.to_numpy(dtype="float64", na_value=np.nan)
            return _Column(values, empty, _ranges(name, spec, raw, number))
        number = raw.to_numpy(dtype="float64", na_value=np.nan)
        literal = None
    else:
        text = _text(raw)
        empty = _null(text)
        # A scaled value is a float product anyway; exact integer literals would be lost.
        exact = spec.type == "int" and scale is None
        number, literal = _parse_numbers(text, empty, exact_ints=exact)
        infinity = text.str.lower().isin(INFINITY).to_numpy()
        number[infinity] = np.inf
        failures.append(
            _failure(
                name,
                ~empty & np.isnan(number) & ~infinity,
                raw,
                lambda v: f"{_quote(v)} is not a number",
            )
        )
    note = ""
    if scale is not None:
        number = number * scale
        note = f" after scaling by {scale:g}"
    infinite = np.isinf(number)
    failures.append(
        _failure(name, infinite, raw, lambda v: f"{_quote(v)} is not a finite number{note}")
    )
    number = np.where(infinite, np.nan, number)
    if spec.type == "float":
        return _Column(
            pd.Series(number, dtype="float64"),
            empty,
            failures + _ranges(name, spec, raw, number, note),
        )

    whole = np.isnan(number) | (number == np.floor(number))
    failures.append(
        _failure(name, ~whole, raw, lambda v: f"{_quote(v)} is not a whole number{note}")
    )
    huge = np.abs(number) >= INT64_LIMIT
    failures.append(
        _failure(name, huge, raw, lambda v: f"{_quote(v)} is too large for a whole number{note}")
    )
    usable = whole & ~huge & ~np.isnan(number)
    ints = np.zeros(len(number), dtype="int64")
    ints[usable] = number[usable]
    if literal is not None:
        ints[literal.mask] = literal.values
    values = pd.Series(pd.arrays.IntegerArray(ints, ~usable))
    return _Column(
        values, empty, failures + _ranges(name, spec, raw, np.where(usable, number, np.nan), note)
    )


@dataclass(frozen=True)
class _Literals:
    """Integer literals converted exactly, and where they were."""

    mask: np.ndarray
    values: np.ndarray


def _parse_numbers(
    text: pd.Series, empty: np.ndarray, *, exact_ints: bool
) -> tuple[np.ndarray, _Literals | None]:
    """Numbers as float64 (NaN where the text is not a number) and, for int columns, the exact
    values of plain integer literals, which float parsing would round past 2**53.

    The common case, every filled cell a plain number, is one Arrow cast over the column.
    Otherwise only cells matching a number pattern are converted, so a few bad cells cost a
    regex pass, not a per-cell parser.
    """
    number = np.full(len(text), np.nan)
    filled = ~empty
    cells = pc.filter(pa.array(text.array), pa.array(filled))
    try:
        parsed = pc.cast(cells, pa.int64() if exact_ints else pa.float64()).to_numpy()
    except pa.ArrowInvalid:
        pass
    else:
        number[filled] = parsed
        return number, _Literals(filled, parsed) if exact_ints else None

    literal = None
    pending = _matches(text, NUMBER)
    if exact_ints:
        mask = _matches(text, INT_LITERAL)
        literal = _Literals(mask, text[mask].astype("int64").to_numpy())
        number[mask] = literal.values
        pending = pending & ~mask
    if pending.any():
        number[pending] = text[pending].astype("float64").to_numpy()
    return number, literal


def _ranges(
    name: str, spec: ColumnSpec, raw: pd.Series, number: np.ndarray, note: str = ""
) -> list[_Failure]:
    failures = []
    if spec.min is not None:
        low = spec.min
        failures.append(
            _failure(
                name,
                number < low,
                raw,
                lambda v: f"{_quote(v)}{note} is below the minimum {low:g}",
            )
        )
    if spec.max is not None:
        high = spec.max
        failures.append(
            _failure(
                name,
                number > high,
                raw,
                lambda v: f"{_quote(v)}{note} is above the maximum {high:g}",
            )
        )
    return failures


def _dates(name: str, raw: pd.Series) -> _Column:
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed = raw
        empty = raw.isna().to_numpy()
        failures = []
    else:
        # A date column of an export repeats a few hundred dates: each is parsed once.
        codes, distinct = pd.factorize(_text(raw))
        text = pd.Series(distinct, dtype="str")
        iso_text = _matches(text, ISO_DATE)
        days = pd.to_datetime(text.str[:10].where(iso_text), format="%Y-%m-%d", errors="coerce")
        empty, iso = _null(text)[codes], iso_text[codes]
        parsed = pd.Series(days.to_numpy()[codes])  # in its own unit: 9999 fits
        failures = [
            _failure(
                name, ~empty & ~iso, raw, lambda v: f"{_quote(v)} is not a date like 2024-01-31"
            ),
            _failure(
                name,
                iso & parsed.isna().to_numpy(),
                raw,
                lambda v: f"{_quote(v)} is not a real date",
            ),
        ]
    outside = ((parsed < pd.Timestamp.min) | (parsed > pd.Timestamp.max)).to_numpy()
    failures.append(
        _failure(name, outside, raw, lambda v: f"{_quote(v)} is outside the years 1678-2261")
    )
    values = parsed.mask(outside).astype("datetime64[ns]")
    return _Column(values, empty, failures)


def _bools(name: str, raw: pd.Series) -> _Column:
    if pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.astype("boolean")
        return _Column(values, values.isna().to_numpy(), [])
    text = _text(raw).str.lower()
    empty = _null(text)
    true = text.isin(TRUE_TOKENS).to_numpy()
    known = true | text.isin(FALSE_TOKENS).to_numpy()
    failures = [
        _failure(
            name,
            ~empty & ~known,
            raw,
            lambda v: (
                f"{_quote(v)} is not true/false (expected true/false, yes/no, y/n, t/f, 1/0, "
                "ja/nein, oui/non or sí/no)"
            ),
        )
    ]
    return _Column(pd.Series(pd.arrays.BooleanArray(true, ~known)), empty, failures)


def _strings(name: str, spec: ColumnSpec, raw: pd.Series) -> _Column:
    text = _text(raw)
    empty = (text == "").to_numpy()
    if spec.allowed is None:
        return _Column(text.mask(empty), empty, [])
    spelling = {value.lower(): value for value in spec.allowed}
    # One Arrow lookup in the few allowed spellings, not a pandas map over every cell.
    lower = pc.utf8_lower(pa.array(text.array, type=pa.large_string()))
    position = pc.index_in(lower, value_set=pa.array(list(spelling), pa.large_string()))
    values = pc.take(pa.array(list(spelling.values()), pa.large_string()), position)
    choices = ", ".join(spec.allowed)
    unknown = ~empty & position.is_null().to_numpy(zero_copy_only=False)
    failures = [_failure(name, unknown, raw, lambda v: f"{_quote(v)} is not one of {choices}")]
    return _Column(pd.Series(values, dtype="str"), empty, failures)


def _unlisted(
    schema: AccountSchema,
    columns: dict[str, _Column],
    id_codes: np.ndarray,
    ids: pd.Index,
    blank: np.ndarray,
) -> Unlisted:
    """The accounts the newest snapshot no longer lists, from the id and date of every row
    whose two cells are good (:func:`row_keys` reads the same), whatever its other cells."""
    id_column, date_column = columns[schema.id_column], columns[schema.date_column]
    bad = _any([blank, *(f.mask for column in (id_column, date_column) for f in column.failures)])
    usable = ~bad & id_column.values.notna().to_numpy()
    dates = date_column.values.to_numpy(dtype="datetime64[ns]")
    return unlisted(np.where(usable, id_codes, -1), dates, ids)


def _duplicates(
    schema: AccountSchema,
    columns: dict[str, _Column],
    id_codes: np.ndarray,
    failures: list[_Failure],
    blank: np.ndarray,
    records: np.ndarray,
    record_label: str,
    labels: dict[str, str],
) -> _Failure:
    """Later rows repeating an (id, as-of) pair; the first row that is otherwise good wins.

    The reason names the id and date columns as the data does (``labels``), like a cell's."""
    ids, dates = columns[schema.id_column].values, columns[schema.date_column].values
    keyed = (ids.notna() & dates.notna()).to_numpy() & ~blank
    # One integer per (id, date) pair, the same for equal pairs: hashing integers is cheaper
    # than pairs of strings. Pairs with a missing half are negative, and not keyed anyway.
    date_codes, seen = pd.factorize(dates)
    pair = id_codes * (len(seen) + 1) + date_codes
    repeated = keyed & pd.Series(pair).duplicated(keep=False).to_numpy()
    duplicate = np.zeros(len(pair), dtype=bool)
    first_of = np.zeros(len(pair), dtype="int64")
    if repeated.any():
        bad = _any([failure.mask for failure in failures])
        candidates = pd.DataFrame({"pair": pair[repeated], "position": np.flatnonzero(repeated)})
        firsts = candidates[~bad[repeated]].drop_duplicates("pair")
        matched = candidates.merge(firsts, on="pair", how="inner", suffixes=("", "_first"))
        later = matched[matched["position"] > matched["position_first"]]
        duplicate[later["position"].to_numpy()] = True
        first_of[later["position"].to_numpy()] = later["position_first"].to_numpy()

    id_name, date_name = (labels.get(name, name) for name in (schema.id_column, schema.date_column))
    key_names = f"{id_name} and {date_name}"

    def describe(positions: np.ndarray) -> list[tuple[str, str]]:
        out = []
        for position in positions:
            day = dates.iloc[position].strftime("%Y-%m-%d")
            value = f"{ids.iloc[position]}, {day}"
            earlier = records[first_of[position]]
            out.append((value, f"duplicate of {record_label} {earlier} (same {key_names})"))
        return out

    return _Failure(None, duplicate, describe)


def _set_aside(unreadable: Sequence[Reject], records: np.ndarray) -> _Failure | None:
    """The rows the reader could not split, as one row-level failure (None if there are none);
    several reasons for one row are joined."""
    if not unreadable:
        return None
    found: dict[int, Reject] = {}
    for reject in unreadable:
        earlier = found.get(reject.record)
        reason = f"{earlier.reason}; {reject.reason}" if earlier else reject.reason
        found[reject.record] = replace(reject, reason=reason)
    positions = pd.Index(records).get_indexer(list(found))
    if (positions < 0).any():
        raise ValueError(f"unreadable rows {sorted(found)} are not all among the records")
    by_position = dict(zip(positions.tolist(), found.values(), strict=True))
    mask = np.zeros(len(records), dtype=bool)
    mask[positions] = True

    def describe(at: np.ndarray) -> list[tuple[str, str]]:
        return [(by_position[p].value, by_position[p].reason) for p in at.tolist()]

    return _Failure(None, mask, describe)


def _rejects(
    failures: list[_Failure],
    blank: np.ndarray,
    records: np.ndarray,
    schema: AccountSchema,
    labels: dict[str, str],
    limit: int | None,
) -> tuple[Reject, ...]:
    """Describe the failed cells in record order, then schema order; only ``limit`` if given.

    Each names its column by ``labels`` (our column -> how the data names it), looked up once
    per failed rule, not per cell."""
    order = {name: index for index, name in enumerate(schema.columns)}
    found: list[tuple[int, int, Reject]] = []
    for failure in failures:
        positions = np.flatnonzero(failure.mask & ~blank)
        if limit is not None:
            positions = positions[:limit]
        if not len(positions):
            continue
        rank = order.get(failure.column, len(order)) if failure.column else len(order)
        label = labels.get(failure.column) if failure.column else None
        for position, (value, reason) in zip(positions, failure.describe(positions), strict=True):
            reject = Reject(int(records[position]), failure.column, value, reason, label)
            found.append((int(position), rank, reject))
    found.sort(key=lambda item: (item[0], item[1]))
    rejects = tuple(item[2] for item in found)
    return rejects if limit is None else rejects[:limit]


def _good_frame(
    schema: AccountSchema, columns: dict[str, _Column], good: np.ndarray
) -> pd.DataFrame:
    """The kept rows in schema order and exactly the canonical dtypes.

    Columns stay separate arrays (no copy into one 2-D block per dtype, which for a million
    rows costs more than checking them), and a column with every row kept is not copied.
    """
    count = int(good.sum())
    every = count == len(good)
    data = {}
    for name, dtype in canonical_dtypes(schema).items():
        if name in columns:
            values = columns[name].values.array
            data[name] = pd.Series(values if every else values[good], copy=False).astype(dtype)
        else:
            data[name] = pd.Series([None] * count, dtype=dtype)
    return pd.DataFrame(data, copy=False)


def _failure(name: str, mask: np.ndarray, raw: pd.Series, reason: ReasonFor) -> _Failure:
    def describe(positions: np.ndarray) -> list[tuple[str, str]]:
        values = [_show(value) for value in raw.iloc[positions].tolist()]
        return [(value, reason(value)) for value in values]

    return _Failure(name, np.asarray(mask, dtype=bool), describe)


def _any(masks: list[np.ndarray]) -> np.ndarray:
    """Element-wise OR without stacking every mask into one big 2-D array."""
    out = masks[0].copy()
    for mask in masks[1:]:
        out |= mask
    return out


def _text(raw: pd.Series) -> pd.Series:
    """Cells as stripped text, "" where missing, whatever the source dtype."""
    return raw.astype("str").fillna("").str.strip()


def _matches(text: pd.Series, pattern: str) -> np.ndarray:
    return text.str.fullmatch(pattern).to_numpy(dtype=bool, na_value=False)


def _null(text: pd.Series) -> np.ndarray:
    return text.str.lower().isin(NULL_TOKENS).to_numpy()


def _is_number(dtype: np.dtype | pd.api.extensions.ExtensionDtype) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _show(value: Any) -> str:
    """A raw cell as text for a reject report; missing values show as ""."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else str(value)
    return str(value)


def _quote(value: str) -> str:
    shown = value if len(value) <= VALUE_SHOWN else value[: VALUE_SHOWN - 3] + "..."
    return repr(shown)
