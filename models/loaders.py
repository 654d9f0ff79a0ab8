"""Read a user's account table (CSV, an Excel workbook or Parquet) and hand it to the validator.

The loader only turns a file into a raw frame; every rule lives in :mod:`models.validate`, so a
CSV export from another company and churnbot's own Parquet meet the same contract. CSV cells
(separated by commas, semicolons or tabs, as the header line shows) are read as plain text
with pandas' "NA means missing" guessing off, so what the validator reports
is exactly what the user sees in the file, and numbered by the line an editor shows. A line
that cannot be split into the header's cells (too few or too many fields, a byte that is not
UTF-8, a quote never closed) is not padded, guessed at or allowed to refuse the whole file: it
goes to the validator as a rejected row with its reason, and the good rows go on.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import gzip
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models.contract import AccountSchema
from models.errors import SourceError
from models.scoring_rows import ScoringRows, validate_needed, validate_table
from models.sources_config import SourcesConfig
from models.validate import LoadResult, Reject, key_columns

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
EXCEL_SUFFIXES = (".xlsx",)
#: What may separate the cells: a comma, or a semicolon (what spreadsheets save in locales
#: whose decimal mark is a comma) or a tab. The header line says which: the one it holds most.
DELIMITERS = (",", ";", "\t")
# What only a quoted cell still open at the end of the file can swallow (see _lines_from).
END_OF_FILE = "\x00end of file\x00"
# Bytes checked for UTF-8 at a time (then on to the end of the line).
DECODE_CHUNK = 1 << 20
#: Signs a spreadsheet in a single-byte code page writes outside words (12,50 €, 45 °).
CODE_PAGE_SIGNS = set("€£¥§°±²³µ·×÷«»„“”‘’–—…©®™¢¼½¾\xa0")
# A byte that is not UTF-8, as decoding with errors="surrogateescape" leaves it.
BAD_BYTE = re.compile("[\udc80-\udcff]")


def load_table(
    path: Path,
    schema: AccountSchema,
    sources: SourcesConfig,
    *,
    rows: ScoringRows | None = None,
) -> LoadResult:
    """Load and validate the account table at ``path``; the suffix picks the format.

    With ``rows``, only the rows a scoring run needs are validated (see
    :mod:`models.scoring_rows`); from Parquet only those rows are read, after the id and
    date columns. A constant ``export_date`` in ``sources`` is the day the file was last
    written (:func:`export_day`).
    """
    if sources.export_dated:
        _check_file(path)
        sources = sources.dated(export_day(path))
    if rows is not None and _is_parquet(path):
        return _load_parquet_rows(path, schema, sources, rows)
    raw = read_raw(path, sources.encoding)
    result = validate_table(
        raw.frame,
        schema,
        source=str(path),
        sources=sources,
        records=raw.records,
        record_label=raw.record_label,
        unreadable=raw.unreadable,
        need=rows,
    )
    return replace(result, warnings=raw.notes + result.warnings) if raw.notes else result


@dataclass(frozen=True)
class RawTable:
    """A table as read, before any check.

    ``frame`` has one row per record (CSV cells as text); ``records`` numbers them as a user
    finds them (the editor's line for CSV, the 1-based record for Parquet); ``unreadable``
    names the rows the reader could not split into the header's cells and why: their cells
    in ``frame`` are what could be read, padded or cut to the header, for the rejects file.
    """

    frame: pd.DataFrame
    records: np.ndarray
    record_label: str
    unreadable: tuple[Reject, ...] = ()
    #: What a user should know about how it was read (which sheet of a workbook).
    notes: tuple[str, ...] = ()


def read_raw(path: Path, encoding: str = "utf-8") -> RawTable:
    """The table at ``path`` as read; the suffix picks the format, and a CSV's bytes are read
    as ``encoding``."""
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return _read_csv(path, encoding)
    if _is_parquet(path):
        frame = _read_parquet(path)
        return RawTable(frame, np.arange(1, len(frame) + 1), "record")
    if name.endswith(EXCEL_SUFFIXES):
        return _read_excel(path)
    expected = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES + EXCEL_SUFFIXES)
    hint = " (save an .xls workbook as .xlsx or CSV)" if name.endswith(".xls") else ""
    raise SourceError(f"{path}: unknown file type; expected a name ending in {expected}{hint}")


def _read_excel(path: Path) -> RawTable:
    """The first sheet of an .xlsx workbook, each cell as the text a CSV export of it would
    hold (:func:`_excel_text`), so the validator reads both alike; rows are numbered as the
    spreadsheet shows them (the header is row 1). A value in a column with no header name is
    set aside with its row, never dropped unseen."""
    from openpyxl import load_workbook  # only a run that reads a workbook pays for it
    from openpyxl.utils import get_column_letter

    _check_file(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise SourceError(f"{path}: cannot read as an Excel workbook (.xlsx): {exc}") from None
    sheets = book.sheetnames
    notes = (
        (
            f"{path}: read the first sheet, '{sheets[0]}', of {len(sheets)} "
            f"({', '.join(repr(name) for name in sheets)}); to read another, move it first "
            "or save it as CSV",
        )
        if len(sheets) > 1
        else ()
    )
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = list(next(rows, ()))
        while header and header[-1] is None:
            header.pop()
        if not header:
            raise SourceError(f"{path}: the first sheet is empty (expected a header row)")
        width = len(header)
        names = [
            _excel_text(name) or f"column {get_column_letter(index)}"
            for index, name in enumerate(header, start=1)
        ]
        cells: list[list[str]] = []
        unreadable: list[Reject] = []
        for number, row in enumerate(rows, start=2):
            texts = [_excel_text(value) for value in row]
            past = [index for index, text in enumerate(texts[width:], start=width + 1) if text]
            if past:
                unreadable.append(
                    Reject(
                        number,
                        None,
                        texts[0] if texts else "",
                        f"a value in column {get_column_letter(past[0])}, past the header's "
                        f"last column ({get_column_letter(width)})",
                    )
                )
            cells.append((texts + [""] * width)[:width])
    finally:
        book.close()
    frame = pd.DataFrame(cells, columns=names, dtype=object)
    return RawTable(frame, np.arange(2, len(cells) + 2), "row", tuple(unreadable), notes)


def _excel_text(value: object) -> str:
    """A cell as a CSV export would write it: a date as 2024-01-31 (with its time if it has
    one), a whole number without ".0", true/false, "" for an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _csv_bytes(path: Path) -> bytes:
    """The bytes of the CSV file at ``path``, ungzipped for a .gz name."""
    _check_file(path)
    try:
        data = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"{path}: cannot read as CSV: {exc}") from None
    return data


def _read_csv(path: Path, encoding: str) -> RawTable:
    """Split the file into records ourselves, then let pandas' C parser cut the cells.

    pandas pads a short line with empty cells, refuses the whole file for one long line or
    one bad byte, and numbers rows rather than lines. So bad bytes are found line by line,
    every line's fields are counted with Arrow's string kernels (no Python per line), and only
    the lines that leave a quote open are followed with the csv module to their record's end.
    Records that cannot be trusted reach pandas as empty lines, which keeps its rows aligned
    with the records, and are set aside with their reason.
    """
    data = _csv_bytes(path)
    if codecs.lookup(encoding).name != "utf-8":  # to UTF-8 once; the rest reads UTF-8
        try:
            data = data.decode(encoding).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{path}: not {encoding} (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "check encoding in sources.yaml"
            ) from None
    body, bad_bytes = _decode(data)
    if not body.strip():
        raise SourceError(f"{path}: the file is empty (expected a header line)")
    lines = _lines(body)
    delimiter = _delimiter(lines[0].as_py())
    split = _split_records(lines, delimiter, quotes=b'"' in body)
    header_end = int(split.ends[0])
    problems = {**bad_bytes, **split.unclosed}
    for index in sorted(problems):
        if index < header_end:
            raise SourceError(f"{path}: line {index + 1} (the header): {problems[index]}")
    width = int(split.fields[0])
    starts, ends, fields = split.starts[1:], split.ends[1:], split.fields[1:]
    reasons = _unreadable_reasons(lines, starts, ends, fields, width, problems, split.unclosed)
    positions = sorted(reasons)
    try:
        frame = pd.read_csv(
            io.BytesIO(_blank_out(body, lines, starts, ends, positions)),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8",
        )
    except pd.errors.ParserError as exc:
        raise SourceError(f"{path}: cannot read as CSV: {exc}") from None
    if len(frame) != len(starts) or len(frame.columns) != width:
        raise SourceError(
            f"{path}: cannot read as CSV: {len(starts)} records of {width} fields found, but "
            f"pandas read {len(frame)} rows of {len(frame.columns)} columns"
        )
    unreadable: list[Reject] = []
    cells: list[list[str]] = []
    for position in positions:
        record = _text(lines, int(starts[position]), int(ends[position]))
        cells.append(_cells(record, width, delimiter))
        line = int(starts[position]) + 1
        unreadable.extend(Reject(line, None, record[0], why) for why in reasons[position])
    if positions:  # at once: one write per column, however many rows
        frame.iloc[positions] = np.array(cells, dtype=object)
    return RawTable(frame, starts + 1, "line", tuple(unreadable))


def _delimiter(header: bytes) -> str:
    """The one of :data:`DELIMITERS` the header line holds most (a comma on a tie), counted
    outside its quoted names."""
    names = re.sub(rb'"(?:[^"]|"")*"', b"", header)
    return max(DELIMITERS, key=lambda delimiter: names.count(delimiter.encode()))


def single_byte_encoding(path: Path) -> str | None:
    """The encoding of a CSV file that is not UTF-8 but a single-byte code page, as Excel on
    Windows saves "CSV (Comma delimited)": no byte above 0x7f forms a UTF-8 character, and
    each one reads as a letter in a word ("Soci\xe9t\xe9") or a sign (:data:`CODE_PAGE_SIGNS`:
    "12,50 \x80" is 12,50 €). A UTF-8 file with a few bad bytes is not one, nor a stray byte in
    a number (that line is rejected as not UTF-8). cp1252 when
    it reads the file, else latin-1; None for UTF-8 and for anything but CSV. A file that
    cannot be read is the same :class:`SourceError` that reading it would raise."""
    if not path.name.lower().endswith(CSV_SUFFIXES):
        return None
    data = _csv_bytes(path)
    text = data.decode("utf-8", errors="surrogateescape")
    if not BAD_BYTE.search(text) or re.search("[\u0080-\udc7f\ue000-\U0010ffff]", text):
        return None
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        encoding = "latin-1"
    else:
        encoding = "cp1252"
    single = data.decode(encoding)
    for match in re.finditer("[^\x00-\x7f]+", single):
        before, after = (
            single[match.start() - 1 : match.start()],
            single[match.end() : match.end() + 1],
        )
        in_a_word = match.group().isalpha() and (before.isalpha() or after.isalpha())
        if not in_a_word and not set(match.group()) <= CODE_PAGE_SIGNS:
            return None
    return encoding


def _decode(data: bytes) -> tuple[bytes, dict[int, str]]:
    """``data`` with LF line ends and no byte-order mark and, by 0-based line, why a line is
    not UTF-8. Such lines are set aside, so pandas never reads them.

    An editor ends a line at LF, CRLF or a lone CR, and so does this. The file is checked in
    chunks of whole lines, and only a chunk that fails is searched for its bad bytes, so a
    clean file costs one decode and a bad byte costs its chunk.
    """
    data = data.removeprefix(codecs.BOM_UTF8)  # spreadsheet programs put it before the header
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    bad: dict[int, str] = {}
    line = start = 0
    while start < len(data):
        end = data.find(b"\n", start + DECODE_CHUNK) + 1 or len(data)
        chunk = data[start:end]
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            bad.update(_bad_bytes(chunk, line))
        line += chunk.count(b"\n")
        start = end
    return data, bad


def _bad_bytes(chunk: bytes, first_line: int) -> dict[int, str]:
    """Why each line of ``chunk`` that holds a byte that is not UTF-8 fails: its first such
    byte and the column it stands in, by 0-based line of the file."""
    text = chunk.decode("utf-8", errors="surrogateescape")  # bad byte 0xNN -> U+DCNN
    bad: dict[int, str] = {}
    line, counted = first_line, 0
    for match in BAD_BYTE.finditer(text):
        at = match.start()
        line += text.count("\n", counted, at)
        counted = at
        if line not in bad:
            column = at - text.rfind("\n", 0, at)
            byte = ord(match.group()) - 0xDC00
            bad[line] = (
                f"not UTF-8 (byte 0x{byte:02x} at column {column}); save the export as UTF-8"
            )
    return bad


def _lines(body: bytes) -> pa.LargeBinaryArray:
    """The lines of ``body`` (no newline of their own), without the empty one after the last
    newline."""
    lines = pc.split_pattern(pa.array([body], pa.large_binary()), b"\n").flatten()
    return lines.slice(0, len(lines) - 1) if body.endswith(b"\n") else lines


@dataclass(frozen=True)
class _Records:
    """Where each record starts and ends (0-based line indexes, end exclusive), its number of
    fields, and the lines whose quote is never closed (each then read as a record alone)."""

    starts: np.ndarray
    ends: np.ndarray
    fields: np.ndarray
    unclosed: dict[int, str]


def _split_records(lines: pa.LargeBinaryArray, delimiter: str, *, quotes: bool) -> _Records:
    """Cut ``lines`` into CSV records and count their fields.

    A line without quotes has its delimiters plus one fields. In a line with quotes, each
    quoted cell that starts a field is dropped before counting; a line with a quote left over (an
    open quoted cell, or a stray quote) is read with the csv module from there, across as many
    lines as its record takes. A record that would run to the end of the file is a quote never
    closed: that line is set aside alone and reading goes on at the next one.
    """
    fields = pc.add(pc.count_substring(lines, delimiter), 1).to_numpy().copy()
    is_start = np.ones(len(lines), dtype=bool)
    ends = np.arange(1, len(lines) + 1)
    unclosed: dict[int, str] = {}
    if not quotes:
        return _Records(np.flatnonzero(is_start), ends, fields, unclosed)
    quoted = np.flatnonzero(pc.match_substring(lines, '"').to_numpy(zero_copy_only=False))
    # A quoted cell where a field starts, with its doubled quotes, is dropped before counting.
    starting_cell = rf'(^|{re.escape(delimiter)})"(?:[^"]|"")*"'
    rest = pc.replace_substring_regex(lines.take(quoted), starting_cell, r"\1")
    fields[quoted] = pc.add(pc.count_substring(rest, delimiter), 1).to_numpy()
    left_over = pc.match_substring(rest, '"').to_numpy(zero_copy_only=False)
    resume = 0
    for index in quoted[left_over].tolist():
        if index < resume:
            continue  # inside a record followed from an earlier line
        reader = csv.reader(_lines_from(lines, index), delimiter=delimiter)
        try:
            row = next(reader)
        except csv.Error as exc:  # a cell past csv.field_size_limit()
            row, problem = [], f"cannot be read to its end ({exc})"
        else:
            problem = _never_closed(index, len(lines))
        if not row or row[-1].endswith(END_OF_FILE):
            unclosed[index] = f"a quoted cell opened on this line {problem}"
            resume = index + 1
            continue
        resume = index + reader.line_num
        fields[index] = len(row)
        ends[index] = resume
        is_start[index + 1 : resume] = False
    starts = np.flatnonzero(is_start)
    return _Records(starts, ends[starts], fields[starts], unclosed)


def _never_closed(index: int, count: int) -> str:
    """What an unclosed quote on 0-based line ``index`` of ``count`` lines would do."""
    if index + 1 < count:
        return (
            f"is never closed (the rest of the file, lines {index + 1}-{count}, would be one cell)"
        )
    return "is never closed (the file ends first)"


def _lines_from(lines: pa.LargeBinaryArray, start: int) -> Iterator[str]:
    """``lines`` from ``start`` on as the csv module wants them, then a marker that only a
    quoted cell still open at the end of the file can swallow."""
    for index in range(start, len(lines)):
        yield lines[index].as_py().decode("utf-8", errors="replace") + "\n"
    yield END_OF_FILE


def _text(lines: pa.LargeBinaryArray, start: int, end: int) -> list[str]:
    """Lines ``start`` to ``end`` as text, a bad byte shown as U+FFFD."""
    return [lines[index].as_py().decode("utf-8", errors="replace") for index in range(start, end)]


def _unreadable_reasons(
    lines: pa.LargeBinaryArray,
    starts: np.ndarray,
    ends: np.ndarray,
    fields: np.ndarray,
    width: int,
    problems: dict[int, str],
    unclosed: dict[int, str],
) -> dict[int, list[str]]:
    """Why each record that cannot be trusted is set aside, by its position among the rows.

    ``problems`` are bad bytes and unclosed quotes by 0-based line, none of them in the header.
    """
    reasons: dict[int, list[str]] = {}
    for position in np.flatnonzero(fields != width).tolist():
        start, end = int(starts[position]), int(ends[position])
        if start in unclosed or (end - start == 1 and not _text(lines, start, end)[0].strip()):
            continue  # its own reason below; or a blank line, which the validator skips
        count = int(fields[position])
        reason = f"{count} field{'s' if count != 1 else ''}, the header has {width}"
        if end - start > 1:
            reason += (
                f" (a quoted cell runs from line {start + 1} to line {end}: check the quotes "
                f"on line {start + 1})"
            )
        reasons.setdefault(position, []).append(reason)
    for index, problem in sorted(problems.items()):
        reason = problem
        if index in unclosed and index + 1 < len(lines):
            reason += f"; the line is set aside and reading goes on at line {index + 2}"
        position = int(np.searchsorted(starts, index, side="right")) - 1
        if index != starts[position]:
            reason = f"line {index + 1}: {reason}"
        reasons.setdefault(position, []).append(reason)
    return reasons


def _blank_out(
    body: bytes,
    lines: pa.LargeBinaryArray,
    starts: np.ndarray,
    ends: np.ndarray,
    positions: list[int],
) -> bytes:
    """The text for pandas: each record at ``positions`` becomes one empty line. The last
    line ends in a newline, so a last line blanked out is still a row."""
    if not positions:
        return body if body.endswith(b"\n") else body + b"\n"
    offsets = np.concatenate([[0], np.cumsum(pc.binary_length(lines).to_numpy() + 1)])
    pieces, done = [], 0
    for position in positions:
        pieces += [body[done : offsets[starts[position]]], b"\n"]
        done = int(offsets[ends[position]])
    pieces.append(body[done:])
    out = b"".join(pieces)
    return out if out.endswith(b"\n") else out + b"\n"


def _cells(record: list[str], width: int, delimiter: str) -> list[str]:
    """The cells of one set-aside record, as far as they can be read, padded or cut to
    ``width``; its text in the first cell if even that fails."""
    ended = [line + "\n" for line in record[:-1]] + record[-1:]
    try:
        row = next(csv.reader(ended, delimiter=delimiter), [])
    except csv.Error:
        row = ["\n".join(record)]
    return (row + [""] * width)[:width]


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def _load_parquet_rows(
    path: Path, schema: AccountSchema, sources: SourcesConfig, need: ScoringRows
) -> LoadResult:
    """Read the id and date columns, then only the row groups holding needed rows, and of
    those only the needed rows: a weekly export written week by week skips its old weeks'
    row groups entirely, and one written account by account still holds only the needed
    rows in memory."""
    _check_file(path)
    with _parquet_errors(path):
        file = pq.ParquetFile(path)
    columns = key_columns(file.schema_arrow.names, schema, sources)
    if columns is None:  # repeated column names: read it whole, as without ``need``
        return load_table(path, schema, sources)
    with _parquet_errors(path):
        keys = file.read(columns=columns).to_pandas(split_blocks=True)
    starts = np.cumsum([0] + [group.num_rows for group in _row_groups(file)])

    def read(positions: np.ndarray) -> pd.DataFrame:
        """The rows at ``positions``: consecutive row groups needed whole are read in one
        call (their columns decoded in parallel), any other group alone and cut to its
        needed rows, so no more than one unneeded group is held at a time."""
        pieces: list[pa.Table] = []
        whole: list[int] = []
        group_of = np.searchsorted(starts, positions, side="right") - 1
        groups, counts = np.unique(group_of, return_counts=True)
        with _parquet_errors(path):
            for group, count in zip(groups.tolist(), counts.tolist(), strict=True):
                if count == starts[group + 1] - starts[group]:
                    whole.append(group)
                    continue
                if whole:
                    pieces.append(file.read_row_groups(whole))
                    whole = []
                local = positions[group_of == group] - starts[group]
                pieces.append(file.read_row_group(group).take(local))
            if whole:
                pieces.append(file.read_row_groups(whole))
            if not pieces:
                return file.schema_arrow.empty_table().to_pandas()
            # One block per column: stacking same-typed columns into 2-D blocks is a copy of
            # every cell, and nothing downstream needs them stacked.
            return pa.concat_tables(pieces).to_pandas(split_blocks=True)

    return validate_needed(
        keys,
        read,
        need,
        schema,
        source=str(path),
        sources=sources,
        records=np.arange(1, int(starts[-1]) + 1),
        record_label="record",
    )


def _row_groups(file: pq.ParquetFile) -> list[pq.RowGroupMetaData]:
    return [file.metadata.row_group(index) for index in range(file.num_row_groups)]


@contextmanager
def _parquet_errors(path: Path) -> Iterator[None]:
    """A file pyarrow cannot read is the user's problem to fix: say so, without a trace."""
    try:
        yield
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise SourceError(f"{path}: cannot read as Parquet: {exc}") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    # Typed columns are handed over as they are: the validator skips text parsing for columns
    # already in the right dtype, which keeps churnbot's own Parquet fast.
    _check_file(path)
    with _parquet_errors(path):
        return pd.read_parquet(path)


def export_day(path: Path) -> dt.date:
    """The day (UTC) the file at ``path`` was last written: a one-snapshot export's as-of
    date when sources.yaml says ``export_date``."""
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if not path.is_file():
        raise SourceError(f"{path}: not a file")
