"""load_table: CSV and Parquet files from disk, with line numbers a user can find."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import openpyxl
import openpyxl.utils
import pandas as pd
import pytest

from models.contract import canonical_dtypes, load_schema
from models.errors import DataContractError, SourceError
from models.loaders import load_table
from models.sources_config import SourcesConfig, load_sources_config
from models.validate import LoadResult, write_rejects

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
SCHEMA = load_schema(ROOT / "config" / "schema.yaml")
LENIENT = SourcesConfig(max_reject_share=1.0)


def good_rows() -> list[dict[str, str]]:
    """Three valid rows with every schema column, as plain strings."""
    with (DATA / "accounts_good.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write rows with the columns of the first one; an empty dict writes a blank line."""
    columns = list(rows[0])
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(row.get(column, "") for column in columns) if row else "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def changed(row: dict[str, str], **cells: str) -> dict[str, str]:
    return {**row, **cells}


def test_a_good_csv_loads_with_canonical_dtypes(tmp_path: Path) -> None:
    result = load_table(write_csv(tmp_path / "accounts.csv", good_rows()), SCHEMA, SourcesConfig())

    assert result.rejects == ()
    assert result.frame.dtypes.astype(str).to_dict() == canonical_dtypes(SCHEMA)
    assert result.frame["account_id"].tolist() == ["A-001", "A-002", "A-003"]
    assert result.record_label == "line"


def test_bad_csv_rows_are_rejected_by_line_and_good_rows_go_on(tmp_path: Path) -> None:
    a, b, c = good_rows()
    rows = [
        a,  # line 2
        changed(b, arr="abc"),  # line 3
        {},  # line 4: blank, skipped
        changed(c, tenure_months="1.5", segment="gold"),  # line 5
        changed(a, account_id="A-004", as_of="2024/03/04"),  # line 6
        changed(b, account_id="A-005", renewal_date="2024-02-30"),  # line 7
        changed(c, account_id="A-006", champion_left_90d="maybe"),  # line 8
        changed(a, account_id="A-007", nps="11"),  # line 9
        changed(b, account_id="A-008", owner_csm=""),  # line 10
        a,  # line 11: duplicate of line 2
        changed(c, account_id="A-009"),  # line 12
    ]
    path = write_csv(tmp_path / "accounts.csv", rows)

    result = load_table(path, SCHEMA, LENIENT)

    assert [(r.record, r.column, r.value, r.reason) for r in result.rejects] == [
        (3, "arr", "abc", "'abc' is not a number"),
        (5, "segment", "gold", "'gold' is not one of smb, mid_market, enterprise"),
        (5, "tenure_months", "1.5", "'1.5' is not a whole number"),
        (6, "as_of", "2024/03/04", "'2024/03/04' is not a date like 2024-01-31"),
        (7, "renewal_date", "2024-02-30", "'2024-02-30' is not a real date"),
        (
            8,
            "champion_left_90d",
            "maybe",
            "'maybe' is not true/false (expected true/false, yes/no, y/n, t/f, 1/0, ja/nein, "
            "oui/non or sí/no)",
        ),
        (9, "nps", "11", "'11' is above the maximum 10"),
        (10, "owner_csm", "", "empty, but the column is required"),
        (11, None, "A-001, 2024-03-04", "duplicate of line 2 (same account_id and as_of)"),
    ]
    assert result.frame["account_id"].tolist() == ["A-001", "A-009"]
    assert result.total_rows == 10
    assert result.warnings == (f"{path}: skipped 1 empty row(s) (line 4)",)


def test_too_many_bad_rows_fail_the_run_with_the_limit_and_first_problems(
    tmp_path: Path,
) -> None:
    a, b, c = good_rows()
    path = write_csv(tmp_path / "accounts.csv", [a, changed(b, arr="abc", nps="99"), c])

    with pytest.raises(
        DataContractError,
        match=(
            r"accounts\.csv: 1 of 3 rows \(33\.3%\) rejected, over the 10\.0% limit set by "
            r"max_reject_share in config/sources\.yaml; first problems: line 3, column arr: "
            r"'abc' is not a number; line 3, column nps: '99' is above the maximum 10$"
        ),
    ):
        load_table(path, SCHEMA, SourcesConfig(max_reject_share=0.1))


def test_a_missing_required_column_fails_naming_it(tmp_path: Path) -> None:
    rows = [{k: v for k, v in row.items() if k != "seats_active"} for row in good_rows()]
    path = write_csv(tmp_path / "accounts.csv", rows)

    with pytest.raises(DataContractError, match=r"missing required column\(s\) 'seats_active'"):
        load_table(path, SCHEMA, SourcesConfig())


def test_an_unknown_column_is_ignored_with_a_warning(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "accounts.csv", [changed(r, region="emea") for r in good_rows()])

    result = load_table(path, SCHEMA, SourcesConfig())

    assert len(result.frame) == 3
    assert result.warnings == (
        f"{path}: ignoring column(s) not in config/schema.yaml: 'region' (add them to the "
        "schema, or map them in config/sources.yaml, to use them)",
    )


def test_a_foreign_export_loads_through_the_mapping_alone() -> None:
    sources = load_sources_config(DATA / "their_company_sources.yaml")

    result = load_table(DATA / "their_company_export.csv", SCHEMA, sources)

    assert result.rejects == ()
    assert len(result.warnings) == 1
    assert "'Region'" in result.warnings[0]
    assert result.frame.dtypes.astype(str).to_dict() == canonical_dtypes(SCHEMA)
    assert result.frame["account_id"].tolist() == ["C-9001", "C-9002", "C-9003"]
    assert result.frame["segment"].tolist() == ["enterprise", "mid_market", "smb"]
    assert result.frame["champion_left_90d"].tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("name", "label", "header_lines"), [("export.csv", "line", 1), ("export.parquet", "record", 0)]
)
def test_a_foreign_exports_rejects_name_its_own_columns(
    tmp_path: Path, name: str, label: str, header_lines: int
) -> None:
    """Their CRM export, CSV or Parquet: every reject names the column as its header does
    (quoted, as it holds spaces), with ours beside it, in the message and the rejects file,
    since the user fixes the export and its header has no account_id or arr."""
    raw = pd.read_csv(DATA / "their_company_export.csv", dtype=str, keep_default_na=False)
    raw.loc[1, ["Customer ID", "Champion Left", "ARR (USD)"]] = ["", "Perhaps", "-5"]
    raw = pd.concat([raw, raw.iloc[[0]]], ignore_index=True)  # repeats the first row
    path = tmp_path / name
    if name.endswith(".csv"):
        raw.to_csv(path, index=False)
    else:
        raw.to_parquet(path)
    sources = load_sources_config(DATA / "their_company_sources.yaml")

    result = load_table(path, SCHEMA, sources.model_copy(update={"max_reject_share": 1.0}))

    second, fourth = (f"{label} {row + header_lines}" for row in (2, 4))
    problems = [
        "'Customer ID' (account_id): empty, but the column is required",
        "'ARR (USD)' (arr): '-5' is below the minimum 0",
        "'Champion Left' (champion_left_90d): 'Perhaps' is not true/false (expected "
        "true/false, yes/no, y/n, t/f, 1/0, ja/nein, oui/non or sí/no)",
    ]
    duplicate = (
        f"duplicate of {label} {1 + header_lines} (same 'Customer ID' (account_id) and "
        "'Snapshot Date' (as_of))"
    )
    assert result.describe_rejects() == "; ".join(
        [f"{second}, column {problem}" for problem in problems] + [f"{fourth}: {duplicate}"]
    )
    out = tmp_path / "rejects.csv"
    write_rejects(result, out)
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert written["reject_reasons"].tolist() == ["; ".join(problems), f"row: {duplicate}"]
    assert written["Customer ID"].tolist() == ["", "C-9001"]


def test_gzipped_csv_and_byte_order_mark_are_read(tmp_path: Path) -> None:
    plain = write_csv(tmp_path / "plain.csv", good_rows())
    path = tmp_path / "accounts.csv.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + plain.read_bytes()))

    result = load_table(path, SCHEMA, SourcesConfig())

    assert result.frame["account_id"].tolist() == ["A-001", "A-002", "A-003"]


def test_parquet_of_canonical_dtypes_round_trips(tmp_path: Path) -> None:
    frame = load_table(write_csv(tmp_path / "a.csv", good_rows()), SCHEMA, SourcesConfig()).frame
    path = tmp_path / "accounts.parquet"
    frame.to_parquet(path)

    result = load_table(path, SCHEMA, SourcesConfig())

    pd.testing.assert_frame_equal(result.frame, frame)
    assert result.record_label == "record"


def test_parquet_values_get_the_same_checks_with_record_numbers(tmp_path: Path) -> None:
    frame = load_table(write_csv(tmp_path / "a.csv", good_rows()), SCHEMA, SourcesConfig()).frame
    frame.loc[1, "seats_purchased"] = 0
    path = tmp_path / "accounts.pq"
    frame.to_parquet(path)

    result = load_table(path, SCHEMA, LENIENT)

    assert [(r.record, r.column, r.value) for r in result.rejects] == [(2, "seats_purchased", "0")]


def test_parquet_of_text_columns_is_parsed_like_csv(tmp_path: Path) -> None:
    rows = good_rows()
    rows[2]["tenure_months"] = "x"
    path = tmp_path / "accounts.parquet"
    pd.DataFrame(rows).to_parquet(path)

    result = load_table(path, SCHEMA, LENIENT)

    assert [(r.record, r.column, r.reason) for r in result.rejects] == [
        (3, "tenure_months", "'x' is not a number")
    ]
    assert result.frame["tenure_months"].tolist() == [36, 14]


def test_rejects_file_can_be_fixed_and_fed_back(tmp_path: Path) -> None:
    a, b, c = good_rows()
    source = write_csv(tmp_path / "accounts.csv", [a, changed(b, arr="abc"), c])
    rejects_path = tmp_path / "rejects.csv"

    write_rejects(load_table(source, SCHEMA, LENIENT), rejects_path)
    fixed = pd.read_csv(rejects_path, dtype=str, keep_default_na=False)
    assert fixed.loc[0, "reject_line"] == "3"
    assert fixed.loc[0, "reject_reasons"] == "arr: 'abc' is not a number"
    fixed.loc[0, "arr"] = "48000"
    fixed.to_csv(rejects_path, index=False)
    again = load_table(rejects_path, SCHEMA, SourcesConfig())

    assert again.rejects == ()
    assert again.frame["account_id"].tolist() == ["A-002"]
    assert "'reject_line', 'reject_reasons'" in again.warnings[0]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("accounts.ods", b"x", r"accounts\.ods: unknown file type; expected a name ending in"),
        ("accounts.csv", b"", r"accounts\.csv: the file is empty"),
        (
            "accounts.csv",
            b"account\xff_id\n",
            r"accounts\.csv: line 1 \(the header\): not UTF-8 \(byte 0xff at column 8\)",
        ),
        (
            "accounts.csv",
            b'a,"b\n1,2\n',
            r"accounts\.csv: line 1 \(the header\): a quoted cell opened on this line is never "
            r"closed \(the rest of the file, lines 1-2, would be one cell\)",
        ),
        ("accounts.csv.gz", b"not gzip", r"accounts\.csv\.gz: cannot read as CSV"),
        ("accounts.parquet", b"not parquet", r"accounts\.parquet: cannot read as Parquet"),
    ],
)
def test_unreadable_files_raise_a_source_error_naming_them(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(SourceError, match=message):
        load_table(path, SCHEMA, SourcesConfig())


def test_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.csv: file not found"):
        load_table(tmp_path / "nope.csv", SCHEMA, SourcesConfig())


def line_of(row: dict[str, str]) -> str:
    return ",".join(row.values())


def write_lines(
    path: Path, lines: list[str], encoding_errors: dict[int, bytes] | None = None
) -> Path:
    """Write ``lines`` (header first) as UTF-8; ``encoding_errors`` swaps a line for raw bytes."""
    raw = [line.encode("utf-8") for line in lines]
    for index, data in (encoding_errors or {}).items():
        raw[index] = data
    path.write_bytes(b"\n".join(raw) + b"\n")
    return path


def rejects_of(result: LoadResult) -> list[tuple[int, str | None, str]]:
    return [(r.record, r.column, r.reason) for r in result.rejects]


def rejects_file(result: LoadResult, path: Path) -> list[tuple[str, str, str]]:
    """(line, reasons, account_id) of each row of the rejects file ``write_rejects`` writes."""
    write_rejects(result, path)
    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    return list(
        zip(written["reject_line"], written["reject_reasons"], written["account_id"], strict=True)
    )


HEADER = ",".join(good_rows()[0])
WIDTH = len(good_rows()[0])


def test_a_short_line_is_rejected_not_read_as_not_churned(tmp_path: Path) -> None:
    a, b, c = good_rows()
    assert c["churn_date"] == "2024-08-20"  # A-003 churned; its line loses the last two cells
    short = line_of(c).rsplit(",", 2)[0]
    path = write_lines(tmp_path / "accounts.csv", [HEADER, line_of(a), line_of(b), short])

    result = load_table(path, SCHEMA, LENIENT)

    reason = f"{WIDTH - 2} fields, the header has {WIDTH}"
    assert rejects_of(result) == [(4, None, reason)]
    assert result.frame["account_id"].tolist() == ["A-001", "A-002"]
    assert result.total_rows == 3
    assert rejects_file(result, tmp_path / "rejects.csv") == [("4", f"row: {reason}", "A-003")]


def test_a_long_line_is_rejected_and_the_good_rows_go_on(tmp_path: Path) -> None:
    a, b, c = good_rows()
    lines = [HEADER, line_of(a), line_of(b) + ",extra,cells", line_of(c)]
    path = write_lines(tmp_path / "accounts.csv", lines)

    result = load_table(path, SCHEMA, LENIENT)

    reason = f"{WIDTH + 2} fields, the header has {WIDTH}"
    assert rejects_of(result) == [(3, None, reason)]
    assert result.frame["account_id"].tolist() == ["A-001", "A-003"]
    assert rejects_file(result, tmp_path / "rejects.csv") == [("3", f"row: {reason}", "A-002")]


def test_a_non_utf8_byte_rejects_only_its_line(tmp_path: Path) -> None:
    a, b, c = good_rows()
    latin1 = line_of(changed(b, account_name="Glob\xe9x")).encode("latin-1")
    lines = [HEADER, line_of(a), "", line_of(c)]
    path = write_lines(tmp_path / "accounts.csv", lines, encoding_errors={2: latin1})

    result = load_table(path, SCHEMA, LENIENT)

    # "A-002,Glob" is 10 characters: the bad byte is the 11th.
    reason = "not UTF-8 (byte 0xe9 at column 11); save the export as UTF-8"
    assert rejects_of(result) == [(3, None, reason)]
    assert result.frame["account_id"].tolist() == ["A-001", "A-003"]
    assert rejects_file(result, tmp_path / "rejects.csv") == [("3", f"row: {reason}", "A-002")]


def test_a_quoted_newline_keeps_the_editors_line_numbers(tmp_path: Path) -> None:
    a, b, c = good_rows()
    lines = [
        HEADER,
        line_of(changed(a, account_name='"Acme\nCorp, Inc"')),  # lines 2-3
        line_of(changed(b, arr="abc")),  # line 4
        line_of(c),  # line 5
    ]
    path = write_lines(tmp_path / "accounts.csv", lines)

    result = load_table(path, SCHEMA, LENIENT)

    assert rejects_of(result) == [(4, "arr", "'abc' is not a number")]
    assert result.frame["account_name"].tolist() == ["Acme\nCorp, Inc", "Initech"]


def test_an_unclosed_quote_sets_its_line_aside_and_reading_goes_on(tmp_path: Path) -> None:
    a, b, c = good_rows()
    lines = [
        HEADER,
        line_of(a),
        line_of(changed(b, account_name='"Globex')),
        line_of(c),
        line_of(a),
    ]
    path = write_lines(tmp_path / "accounts.csv", lines)

    result = load_table(path, SCHEMA, LENIENT)

    reason = (
        "a quoted cell opened on this line is never closed (the rest of the file, lines 3-5, "
        "would be one cell); the line is set aside and reading goes on at line 4"
    )
    assert rejects_of(result) == [
        (3, None, reason),
        (5, None, "duplicate of line 2 (same account_id and as_of)"),
    ]
    assert result.frame["account_id"].tolist() == ["A-001", "A-003"]


def test_a_quote_closed_lines_later_rejects_the_lines_it_joined(tmp_path: Path) -> None:
    a, b, c = good_rows()
    lines = [
        HEADER,
        line_of(changed(a, account_name='"Acme')),  # opens a quote ...
        line_of(b),
        line_of(changed(c, account_id='A-003"')),  # ... closed here: lines 2-4 one record
        line_of(changed(a, account_id="A-004")),  # line 5
    ]
    path = write_lines(tmp_path / "accounts.csv", lines)

    result = load_table(path, SCHEMA, LENIENT)

    assert rejects_of(result) == [
        (
            2,
            None,
            f"{WIDTH + 1} fields, the header has {WIDTH} (a quoted cell runs from line 2 "
            "to line 4: check the quotes on line 2)",
        )
    ]
    assert result.frame["account_id"].tolist() == ["A-004"]


def test_unreadable_lines_count_towards_the_reject_limit(tmp_path: Path) -> None:
    a, b, c = good_rows()
    lines = [HEADER, line_of(a), line_of(b) + ",x", line_of(c)]
    path = write_lines(tmp_path / "accounts.csv", lines)

    with pytest.raises(
        DataContractError,
        match=(
            rf"1 of 3 rows \(33\.3%\) rejected, over the 10\.0% limit .*; first problems: "
            rf"line 3: {WIDTH + 1} fields, the header has {WIDTH}$"
        ),
    ):
        load_table(path, SCHEMA, SourcesConfig(max_reject_share=0.1))


def test_a_semicolon_separated_export_is_read_as_its_header_shows(tmp_path: Path) -> None:
    """What a spreadsheet saves as CSV where the decimal mark is a comma: cells separated by
    semicolons, commas inside cells left unquoted, a quoted cell holding a semicolon and a
    line break; a short line is still one rejected row, counted in semicolons."""
    a, b, c = good_rows()
    lines = [
        HEADER.replace(",", ";"),
        ";".join(changed(a, account_name="Acme, Inc").values()),  # line 2
        ";".join(changed(b, account_name='"Globex; the\nholding"').values()),  # lines 3-4
        ";".join(c.values()).rsplit(";", 1)[0],  # line 5: one cell short
    ]
    path = write_lines(tmp_path / "accounts.csv", lines)

    result = load_table(path, SCHEMA, LENIENT)

    assert rejects_of(result) == [(5, None, f"{WIDTH - 1} fields, the header has {WIDTH}")]
    assert result.frame["account_name"].tolist() == ["Acme, Inc", "Globex; the\nholding"]
    assert result.frame["arr"].tolist() == [float(a["arr"]), float(b["arr"])]


def test_a_tab_separated_file_is_read(tmp_path: Path) -> None:
    lines = [HEADER.replace(",", "\t")] + ["\t".join(row.values()) for row in good_rows()]
    result = load_table(write_lines(tmp_path / "accounts.tsv", lines), SCHEMA, SourcesConfig())
    assert result.rejects == ()
    assert result.frame["account_id"].tolist() == ["A-001", "A-002", "A-003"]


def typed(cell: str) -> object:
    """A CSV cell as a spreadsheet would type it: a date, a number, true/false or text."""
    if not cell:
        return None
    if cell in ("true", "false"):
        return cell == "true"
    try:
        return dt.datetime.strptime(cell, "%Y-%m-%d")
    except ValueError:
        pass
    try:
        return int(cell)
    except ValueError:
        pass
    try:
        return float(cell)
    except ValueError:
        return cell


def write_workbook(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def test_an_excel_workbook_loads_like_the_csv_of_it_with_the_sheets_row_numbers(
    tmp_path: Path,
) -> None:
    """Dates, numbers and true/false typed by the spreadsheet load as the CSV of the same
    rows does; a bad cell, a blank row and a value past the header are reported by the row
    number the spreadsheet shows."""
    a, b, c = good_rows()
    header = list(a)
    bad = changed(b, arr="abc")
    sheet = [
        header,
        [typed(a[k]) for k in header],  # row 2
        [typed(bad[k]) for k in header],  # row 3
        [],  # row 4: blank, skipped
        [typed(c[k]) for k in header] + [None, "stray"],  # row 5
    ]
    path = write_workbook(tmp_path / "accounts.xlsx", sheet)

    result = load_table(path, SCHEMA, LENIENT)
    csv_result = load_table(write_csv(tmp_path / "accounts.csv", [a]), SCHEMA, SourcesConfig())

    assert result.record_label == "row"
    past = f"a value in column {openpyxl.utils.get_column_letter(WIDTH + 2)}, past the header's"
    assert [(r.record, r.column, r.reason.split(" last")[0]) for r in result.rejects] == [
        (3, "arr", "'abc' is not a number"),
        (5, None, past),
    ]
    assert result.frame["account_id"].tolist() == ["A-001"]
    pd.testing.assert_frame_equal(result.frame, csv_result.frame)


def test_an_xls_or_broken_workbook_is_a_source_error_naming_it(tmp_path: Path) -> None:
    old = tmp_path / "accounts.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0 an old binary workbook")
    with pytest.raises(SourceError, match=r"accounts\.xls: unknown file type.*save an \.xls"):
        load_table(old, SCHEMA, LENIENT)
    broken = tmp_path / "accounts.xlsx"
    broken.write_bytes(b"not a zip file")
    with pytest.raises(SourceError, match=r"accounts\.xlsx: cannot read as an Excel workbook"):
        load_table(broken, SCHEMA, LENIENT)


def test_a_workbook_of_several_sheets_is_read_from_the_first_and_says_so(tmp_path: Path) -> None:
    a, _, _ = good_rows()
    book = openpyxl.Workbook()
    book.active.title = "Accounts"
    book.active.append(list(a))
    book.active.append([typed(cell) for cell in a.values()])
    book.create_sheet("Pivot").append(["segment", "arr"])
    path = tmp_path / "accounts.xlsx"
    book.save(path)

    result = load_table(path, SCHEMA, LENIENT)

    assert result.frame["account_id"].tolist() == ["A-001"]
    assert result.warnings[0] == (
        f"{path}: read the first sheet, 'Accounts', of 2 ('Accounts', 'Pivot'); to read "
        "another, move it first or save it as CSV"
    )


def test_a_csv_in_the_configured_code_page_loads_and_one_it_does_not_read_is_named(
    tmp_path: Path,
) -> None:
    a, b, _ = good_rows()
    rows = [changed(a, account_name="Société Générale"), b]
    path = tmp_path / "accounts.csv"
    text = "\n".join([HEADER, *(",".join(row.values()) for row in rows)]) + "\n"
    path.write_bytes(text.encode("cp1252"))
    windows = SourcesConfig(encoding="cp1252")

    assert load_table(path, SCHEMA, windows).frame["account_name"].tolist() == [
        "Société Générale",
        "Globex",
    ]
    utf8 = load_table(path, SCHEMA, LENIENT)
    assert [r.record for r in utf8.rejects] == [2], "read as UTF-8: the accented line is set aside"

    path.write_bytes(text.encode("cp1252") + b"\x81\n")  # no character in cp1252
    with pytest.raises(SourceError, match=r"accounts\.csv: not cp1252 \(byte 0x81 at offset"):
        load_table(path, SCHEMA, windows)


def test_an_unknown_encoding_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"unknown encoding 'utf-9'; e\.g\. utf-8, cp1252"):
        SourcesConfig(encoding="utf-9")
