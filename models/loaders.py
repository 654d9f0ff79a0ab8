"""Read a user's account table (CSV or Parquet) and hand it to the validator.

The loader only turns a file into a raw frame; every rule lives in :mod:`models.validate`, so a
CSV export from another company and churnbot's own Parquet meet the same contract. CSV cells are
read as plain text with pandas' "NA means missing" guessing off, so what the validator reports
is exactly what the user sees in the file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from models.contract import AccountSchema
from models.errors import SourceError
from models.sources_config import SourcesConfig
from models.validate import LoadResult, validate_frame

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def load_table(path: Path, schema: AccountSchema, sources: SourcesConfig) -> LoadResult:
    """Load and validate the account table at ``path``; the suffix picks the format."""
    raw, first_record, label = read_raw(path)
    return validate_frame(
        raw,
        schema,
        source=str(path),
        sources=sources,
        first_record=first_record,
        record_label=label,
    )


def read_raw(path: Path) -> tuple[pd.DataFrame, int, str]:
    """The table at ``path`` as read (CSV cells as text), the number of its first record and
    what a user calls a record there ("line" for CSV, "record" for Parquet)."""
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return _read_csv(path), 2, "line"
    if name.endswith(PARQUET_SUFFIXES):
        return _read_parquet(path), 1, "record"
    expected = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
    raise SourceError(f"{path}: unknown file type; expected a name ending in {expected}")


def _read_csv(path: Path) -> pd.DataFrame:
    # Blank lines are kept (and skipped later by the validator) so row n stays line n + 1;
    # utf-8-sig drops the byte-order mark spreadsheet programs put in front of the header.
    _check_file(path)
    try:
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise SourceError(f"{path}: the file is empty (expected a header line)") from None
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the export as UTF-8 CSV"
        ) from None
    except (pd.errors.ParserError, OSError) as exc:
        raise SourceError(f"{path}: cannot read as CSV: {exc}") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    # Typed columns are handed over as they are: the validator skips text parsing for columns
    # already in the right dtype, which keeps churnbot's own Parquet fast.
    _check_file(path)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise SourceError(f"{path}: cannot read as Parquet: {exc}") from None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if not path.is_file():
        raise SourceError(f"{path}: not a file")
