"""The sources.yaml mapping beyond renames: value maps, scaling, one column feeding two, constants.

Each test writes another company's export and a config folder of its own (not ``config/``), as
a user of that company would, and loads it through the real CSV loader. Errors must name that
folder's files and the key to fix.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.contract import load_schema
from models.errors import ConfigError, DataContractError
from models.loaders import load_table
from models.sources_config import load_sources_config
from models.validate import LoadResult, RejectLimitError, plain_numbers, write_rejects

# A subscriber book: one snapshot, a yes/no label, its own columns and units.
SCHEMA = """
columns:
  customer_id: {type: string, role: id}
  name: {type: string, role: name}
  as_of: {type: date, role: date}
  csm: {type: string, role: owner}
  contract: {type: category, allowed: [month_to_month, one_year, two_year]}
  tenure_months: {type: int, min: 0, max: 600}
  mrr: {type: float, min: 0, max: 1000}
  paperless: {type: bool, required: false}
  signup_date: {type: date, required: false}
  first_seen: {type: date, required: false}
  churned: {type: bool, role: label, required: false}
"""

MAPPING = """
mapping:
  customerID: customer_id
  Customer: name
  Owner: csm
  Contract:
    to: contract
    values: {Month-to-month: month_to_month, One year: one_year, Two year: two_year}
  Tenure (years): {to: tenure_months, scale: 12}
  MonthlyCharges (cents): {to: mrr, scale: 0.01}
  PaperlessBilling: {to: paperless, values: {"Yes": true, "No": false}}
  Signup: [signup_date, first_seen]
  Churn: {to: churned, values: {"Yes": true, "No": false}}
constants:
  as_of: 2024-01-31
max_reject_share: 1.0
"""

HEADER = (
    "customerID,Customer,Owner,Contract,Tenure (years),MonthlyCharges (cents),"
    "PaperlessBilling,Signup,Churn"
)
EXPORT = f"""\
{HEADER}
7590-VHVEG,Ada Ltd,sam,Month-to-month,1.5,2985,Yes,2023-07-01,No
5575-GNVDE,Bell & Co,ana,One year,3,5695,No,2021-01-15,no
3668-QPYBK,Cray plc,sam,month-to-month,0.25,5385,Yes,2023-10-01, YES
"""


def write_folder(folder: Path, sources: str, schema: str = SCHEMA) -> Path:
    """A config folder of the company's own, outside the repository's config/."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "schema.yaml").write_text(textwrap.dedent(schema))
    (folder / "sources.yaml").write_text(textwrap.dedent(sources))
    return folder


def load(
    tmp_path: Path,
    export: str,
    sources: str = MAPPING,
    *,
    schema: str = SCHEMA,
    folder_name: str = "their-config",
) -> LoadResult:
    folder = write_folder(tmp_path / folder_name, sources, schema)
    path = tmp_path / "subscribers.csv"
    path.write_text(export)
    return load_table(
        path, load_schema(folder / "schema.yaml"), load_sources_config(folder / "sources.yaml")
    )


def test_a_subscriber_export_loads_through_value_maps_scales_and_a_constant(
    tmp_path: Path,
) -> None:
    result = load(tmp_path, EXPORT)

    assert result.rejects == ()
    assert result.warnings == ()
    frame = result.frame
    assert frame["customer_id"].tolist() == ["7590-VHVEG", "5575-GNVDE", "3668-QPYBK"]
    # Value maps match ignoring case and spaces, then the mapped text is parsed as usual.
    assert frame["churned"].tolist() == [False, False, True]
    assert frame["paperless"].tolist() == [True, False, True]
    assert frame["contract"].tolist() == ["month_to_month", "one_year", "month_to_month"]
    # Years to months (an int column) and cents to dollars.
    assert frame["tenure_months"].tolist() == [18, 36, 3]
    assert frame["mrr"].tolist() == pytest.approx([29.85, 56.95, 53.85])
    # A one-snapshot export gets its as-of date from the constant.
    assert (frame["as_of"] == pd.Timestamp("2024-01-31")).all()
    assert str(frame["as_of"].dtype).startswith("datetime64")


def test_one_source_column_feeds_two_of_ours_and_a_bad_cell_is_reported_in_each(
    tmp_path: Path,
) -> None:
    export = EXPORT.replace("2021-01-15", "15/01/2021")

    result = load(tmp_path, export)

    assert result.frame["signup_date"].tolist() == result.frame["first_seen"].tolist()
    assert [(r.record, r.column) for r in result.rejects] == [
        (3, "signup_date"),
        (3, "first_seen"),
    ]
    assert result.rejects[0].reason == "'15/01/2021' is not a date like 2024-01-31"
    # Both name the one column of the export to fix, and which of ours each is.
    assert result.describe_rejects() == (
        "line 3, column Signup (signup_date): '15/01/2021' is not a date like 2024-01-31; "
        "line 3, column Signup (first_seen): '15/01/2021' is not a date like 2024-01-31"
    )


def test_a_value_the_map_does_not_list_is_rejected_naming_the_column_and_the_choices(
    tmp_path: Path,
) -> None:
    export = EXPORT.replace(",No\n", ",Maybe\n", 1)

    result = load(tmp_path, export)

    folder = tmp_path / "their-config"
    assert len(result.frame) == 2
    assert len(result.rejects) == 1, "one problem per cell, not also 'empty' or 'not true/false'"
    reject = result.rejects[0]
    assert (reject.record, reject.column, reject.value) == (2, "churned", "Maybe")
    assert reject.reason == (
        f"'Maybe' is not one of Yes, No (mapping.Churn.values in {folder / 'sources.yaml'})"
    )
    # Their column first, ours beside it: the export has Churn, not churned.
    assert result.describe_rejects().startswith(
        "line 2, column Churn (churned): 'Maybe' is not one of"
    )


def test_rejects_name_the_exports_columns_with_ours_beside_them(tmp_path: Path) -> None:
    """A user fixing the export searches it for customerID or Churn, never for customer_id or
    churned: the message and the rejects file name their column, then ours. A name with
    spaces or parentheses is quoted, so it is not read as ours in parentheses."""
    export = EXPORT.replace(
        "7590-VHVEG,Ada Ltd,sam,Month-to-month,1.5,", ",,sam,Month-to-month,x,"
    ).replace(",No\n", ",Maybe\n", 1)
    sources = tmp_path / "their-config" / "sources.yaml"

    result = load(tmp_path, export)

    problems = [
        "customerID (customer_id): empty, but the column is required",
        "Customer (name): empty, but the column is required",
        "'Tenure (years)' (tenure_months): 'x' is not a number",
        f"Churn (churned): 'Maybe' is not one of Yes, No (mapping.Churn.values in {sources})",
    ]
    assert result.describe_rejects() == "; ".join(f"line 2, column {p}" for p in problems)
    # Code keeps reading our names.
    assert [r.column for r in result.rejects] == [
        "customer_id",
        "name",
        "tenure_months",
        "churned",
    ]
    path = tmp_path / "rejects.csv"
    write_rejects(result, path)
    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert written["reject_reasons"].tolist() == ["; ".join(problems)]
    assert {"customerID", "Customer", "Tenure (years)", "Churn"} <= set(written.columns)


def test_a_duplicate_names_their_id_column_and_the_constant_that_dates_every_row(
    tmp_path: Path,
) -> None:
    """A one-snapshot export takes its date from constants.as_of: the user must be told that
    the second half of the repeated key is no column of theirs."""
    first = EXPORT.splitlines()[1]
    sources = tmp_path / "their-config" / "sources.yaml"

    result = load(tmp_path, EXPORT + first.replace("Ada Ltd", "Ada Limited") + "\n")

    assert result.describe_rejects() == (
        "line 5: duplicate of line 2 (same customerID (customer_id) and as_of "
        f"(constants.as_of in {sources}))"
    )


def test_past_the_reject_limit_the_first_problems_name_the_exports_columns(
    tmp_path: Path,
) -> None:
    strict = MAPPING.replace("max_reject_share: 1.0", "max_reject_share: 0.1")
    export = EXPORT.replace(",Yes,2023-07-01,", ",Sometimes,2023-07-01,", 1)

    with pytest.raises(RejectLimitError) as limit:
        load(tmp_path, export, strict)

    assert str(limit.value).endswith(
        "first problems: line 2, column PaperlessBilling (paperless): 'Sometimes' is not one "
        f"of Yes, No (mapping.PaperlessBilling.values in {tmp_path / 'their-config'}"
        "/sources.yaml)"
    )
    path = tmp_path / "rejects.csv"
    write_rejects(limit.value.result, path)
    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert written["reject_reasons"].iloc[0].startswith("PaperlessBilling (paperless): ")


def test_an_empty_cell_stays_empty_unless_the_map_names_it(tmp_path: Path) -> None:
    export = EXPORT.replace(",No\n", ",\n", 1)

    assert load(tmp_path, export).frame["churned"].isna().tolist() == [True, False, False]
    blank_means_stayed = MAPPING.replace(
        'Churn: {to: churned, values: {"Yes": true, "No": false}}',
        'Churn: {to: churned, values: {"Yes": true, "No": false, "": false}}',
    )
    assert load(tmp_path, export, blank_means_stayed).frame["churned"].tolist() == [
        False,
        False,
        True,
    ]


def test_scaling_happens_before_the_range_and_whole_number_checks(tmp_path: Path) -> None:
    # 150000 cents is 1500.00, over the contract's maximum of 1000; 0.1 years is not whole months.
    export = EXPORT.replace(",2985,", ",150000,").replace("One year,3,", "One year,0.1,")

    result = load(tmp_path, export)

    assert [(r.record, r.column, r.reason) for r in result.rejects] == [
        (2, "mrr", "'150000' after scaling by 0.01 is above the maximum 1000"),
        (3, "tenure_months", "'0.1' is not a whole number after scaling by 12"),
    ]


def test_a_blank_line_is_still_skipped_when_a_constant_fills_every_row(tmp_path: Path) -> None:
    export = EXPORT.replace("\n5575", "\n,,,,,,,,\n5575")

    result = load(tmp_path, export)

    assert len(result.frame) == 3
    assert result.rejects == ()
    assert result.warnings[0].endswith("skipped 1 empty row(s) (line 3)")


def test_a_constant_for_a_column_the_export_has_is_an_error(tmp_path: Path) -> None:
    export = "\n".join(line + ",2024-02-29" for line in EXPORT.splitlines())
    export = export.replace("Churn,2024-02-29", "Churn,as_of") + "\n"

    with pytest.raises(ConfigError, match=r"constants: .* has its own column\(s\) 'as_of'"):
        load(tmp_path, export)


def test_a_constant_and_a_mapping_filling_one_column_is_a_config_error(tmp_path: Path) -> None:
    sources = MAPPING.replace("  Owner: csm\n", "  Owner: csm\n  Snapshot: as_of\n")

    with pytest.raises(ConfigError) as caught:
        load(tmp_path, EXPORT, sources)

    assert str(caught.value) == (
        f"{tmp_path / 'their-config' / 'sources.yaml'}: mapping.Snapshot and constants.as_of "
        "all fill 'as_of'; keep one (a constant is for a column the data lacks)"
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # PyYAML builds dates itself: an impossible one used to escape as a bare ValueError.
        (
            ("2024-01-31", "2024-02-30"),
            "not valid YAML: day is out of range for month (a date that does not exist?)",
        ),
        (
            ("{to: churned, values:", "{to: churned, valeus:"),
            "mapping.Churn.valeus: unknown key (did you mean 'values'?)",
        ),
    ],
    ids=["impossible-date", "misspelt-key"],
)
def test_a_broken_sources_file_is_one_message_naming_it_and_the_key(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    folder = write_folder(tmp_path / "their-config", MAPPING.replace(*edit))

    with pytest.raises(ConfigError) as caught:
        load_sources_config(folder / "sources.yaml")

    assert str(caught.value) == f"{folder / 'sources.yaml'}: {message}"


def test_an_unquoted_yes_key_is_refused_because_yaml_reads_it_as_true(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "their-config", MAPPING.replace('"Yes": true', "Yes: true"))

    with pytest.raises(ConfigError, match=r"mapping\.Churn\.values: .*quote it as the data"):
        load_sources_config(folder / "sources.yaml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("Owner: csm", "Owner: owner"),
            "{sources}: mapping: 'Owner' maps to 'owner', which is not a column of {schema}",
        ),
        (
            ("Owner: csm", "Owner: [csm, cms]"),
            "{sources}: mapping: 'Owner' maps to 'cms', which is not a column of {schema} "
            "(did you mean 'csm'?)",
        ),
        (
            ("as_of: 2024-01-31", "as_off: 2024-01-31"),
            "{sources}: constants.as_off: not a column of {schema} (did you mean 'as_of'?)",
        ),
        (
            ("as_of: 2024-01-31", 'as_of: "2024-02-30"'),
            "{sources}: constants.as_of: '2024-02-30' is not a real date",
        ),
        (
            ('"No": false}}\nconstants', '"No": nope}}\nconstants'),
            "{sources}: mapping.Churn.values.No: 'nope' is not true/false (expected "
            "true/false, yes/no, y/n, t/f, 1/0, ja/nein, oui/non or sí/no)",
        ),
        (
            ("Two year: two_year}", "Two year: two_years}"),
            "{sources}: mapping.Contract.values.Two year: 'two_years' is not one of "
            "month_to_month, one_year, two_year",
        ),
        (
            ("Customer: name", "Customer: {to: name, scale: 2}"),
            "{sources}: mapping.Customer.scale: 'name' is a string column; scale applies to "
            "int or float columns only",
        ),
        (
            ("Signup: [signup_date, first_seen]", "Signup: [signup_date, signup_date]"),
            "{sources}: mapping: several columns map to 'signup_date' ('Signup.0', 'Signup.1'); "
            "map one each",
        ),
    ],
)
def test_a_mapping_the_contract_cannot_take_is_a_config_error_naming_file_and_key(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    sources = MAPPING.replace(*edit)
    assert sources != MAPPING

    with pytest.raises(ConfigError) as caught:
        load(tmp_path, EXPORT, sources)

    folder = tmp_path / "their-config"
    expected = message.format(sources=folder / "sources.yaml", schema=folder / "schema.yaml")
    assert str(caught.value) == expected


def test_a_non_default_config_folder_is_named_in_warnings_and_errors(tmp_path: Path) -> None:
    folder = tmp_path / "their-config"
    sources, schema = folder / "sources.yaml", folder / "schema.yaml"

    with_region = "\n".join(line + ",EMEA" for line in EXPORT.splitlines())
    with_region = with_region.replace("Churn,EMEA", "Churn,Region") + "\n"
    assert load(tmp_path, with_region).warnings == (
        f"{tmp_path / 'subscribers.csv'}: ignoring column(s) not in {schema}: 'Region' (add "
        f"them to the schema, or map them in {sources}, to use them)",
    )

    without_owner = MAPPING.replace("  Owner: csm\n", "")
    with pytest.raises(DataContractError, match=r"missing required column\(s\) 'csm'") as caught:
        load(tmp_path, EXPORT, without_owner)
    assert f"Check the mapping in {sources} (their column: our column)" in str(caught.value)

    strict = MAPPING.replace("max_reject_share: 1.0", "max_reject_share: 0.1")
    with pytest.raises(RejectLimitError) as limit:
        load(tmp_path, EXPORT.replace(",No\n", ",Maybe\n"), strict)
    assert f"over the 10.0% limit set by max_reject_share in {sources};" in str(limit.value)


# A CRM report as a spreadsheet saves it: US dates, money with a currency sign and thousands
# separators, a share with a percent sign.
US_SCHEMA = """
columns:
  account: {type: string, role: id}
  name: {type: string, role: name}
  as_of: {type: date, role: date}
  csm: {type: string, role: owner}
  mrr: {type: float, min: 0}
  seats_used: {type: float, min: 0, max: 1}
  renewal: {type: date, required: false}
  churned: {type: bool, role: label, required: false}
"""
US_MAPPING = """
mapping:
  Account ID: account
  Account Name: name
  Report Date: {to: as_of, format: "%m/%d/%Y"}
  Owner: csm
  MRR: {to: mrr, format: "1,234.5"}
  Seats Used: {to: seats_used, format: "1,234.5", scale: 0.01}
  Renewal: {to: renewal, format: "%m/%d/%Y"}
  Churned?: {to: churned, values: {"Y": true, "N": false}}
max_reject_share: 1.0
"""
US_EXPORT = """\
Account ID,Account Name,Report Date,Owner,MRR,Seats Used,Renewal,Churned?
A-1,"Acme, Inc",01/31/2025,sam,"$12,500.00",80%,12/01/2025,N
A-2,Bell,01/31/2025,ana,$950,5.5%,,Y
A-3,Cray,01/31/2025,ana,"-$1,200",100%,02/29/2025,N
A-4,Dyad,31/01/2025,sam,"12,50",40%,03/15/2026,N
"""


def load_us(tmp_path: Path, export: str = US_EXPORT, mapping: str = US_MAPPING) -> LoadResult:
    return load(tmp_path, export, mapping, schema=US_SCHEMA, folder_name="crm-config")


def test_dates_and_amounts_as_a_spreadsheet_writes_them_load_through_their_format(
    tmp_path: Path,
) -> None:
    result = load_us(tmp_path)

    sources = tmp_path / "crm-config" / "sources.yaml"
    frame = result.frame
    assert frame["account"].tolist() == ["A-1", "A-2"]
    assert (frame["as_of"] == pd.Timestamp("2025-01-31")).all()
    assert frame["mrr"].tolist() == [12500.0, 950.0]
    assert frame["seats_used"].tolist() == pytest.approx([0.8, 0.055])
    assert frame["renewal"].iloc[0] == pd.Timestamp("2025-12-01")
    assert pd.isna(frame["renewal"].iloc[1])
    # Each bad cell once, as the export writes it, with the format it missed and where it is
    # set; a number read but out of range says so, still showing the cell as written.
    assert [(r.record, r.column, r.value, r.reason) for r in result.rejects] == [
        (4, "mrr", "-$1,200", "'-1200' is below the minimum 0"),
        (
            4,
            "renewal",
            "02/29/2025",
            f"'02/29/2025' is not a date like 01/31/2024 (mapping.Renewal.format in {sources})",
        ),
        (
            5,
            "as_of",
            "31/01/2025",
            f"'31/01/2025' is not a date like 01/31/2024 (mapping.Report Date.format in {sources})",
        ),
        (
            5,
            "mrr",
            "12,50",
            f"'12,50' is not a number like 1,234.5 (mapping.MRR.format in {sources})",
        ),
    ]


def test_a_european_export_reads_day_first_dates_and_decimal_commas(tmp_path: Path) -> None:
    mapping = US_MAPPING.replace('"%m/%d/%Y"', '"%d.%m.%Y"').replace('"1,234.5"', '"1.234,5"')
    export = (
        "Account ID,Account Name,Report Date,Owner,MRR,Seats Used,Renewal,Churned?\n"
        'A-1,Acme,31.01.2025,sam,"12.500,75 €","80,5 %",01.12.2025,N\n'
    )
    result = load_us(tmp_path, export, mapping)

    assert result.rejects == ()
    row = result.frame.iloc[0]
    assert (row["as_of"], row["renewal"]) == (
        pd.Timestamp("2025-01-31"),
        pd.Timestamp("2025-12-01"),
    )
    assert row["mrr"] == 12500.75
    assert row["seats_used"] == pytest.approx(0.805)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('{to: mrr, format: "1_234"}', "mapping.MRR.format: '1_234' is not a number format; use "),
        ('{to: as_of, format: "%m/%Y"}', "'%m/%Y' does not read back a date"),
        ('{to: name, format: "%m/%d/%Y"}', "format applies to date, int or float columns, not"),
    ],
)
def test_a_format_that_cannot_read_its_column_is_a_config_error(
    tmp_path: Path, entry: str, problem: str
) -> None:
    target = entry.split("to: ")[1].split(",")[0]
    theirs = {"mrr": "MRR", "as_of": "Report Date", "name": "Account Name"}[target]
    mapping = "\n".join(
        f"  {theirs}: {entry}" if line.startswith(f"  {theirs}:") else line
        for line in US_MAPPING.splitlines()
    )
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_us(tmp_path, mapping=mapping)


def test_values_and_format_on_one_target_are_refused(tmp_path: Path) -> None:
    mapping = US_MAPPING.replace(
        'Churned?: {to: churned, values: {"Y": true, "N": false}}',
        'Churned?: {to: churned, values: {"Y": true, "N": false}, format: "%m/%d/%Y"}',
    )
    with pytest.raises(ConfigError, match="use either values or format on one target"):
        load_us(tmp_path, mapping=mapping)


def test_header_names_padded_with_spaces_match_the_mapping_either_way(tmp_path: Path) -> None:
    """An export pads some header names (" MRR "); the loader reads them stripped, and a
    mapping key written with the padding (as init copies it) matches as well as one without."""
    padded = US_EXPORT.replace("Account Name,Report Date", " Account Name , Report Date")
    mapping = US_MAPPING.replace("  Account Name: name", "  ' Account Name ': name")
    result = load_us(tmp_path, padded, mapping)
    assert result.frame["name"].tolist() == ["Acme, Inc", "Bell"]
    assert (result.frame["as_of"] == pd.Timestamp("2025-01-31")).all()


def test_two_mapping_keys_for_one_column_are_refused(tmp_path: Path) -> None:
    mapping = US_MAPPING.replace(
        "  Account Name: name", "  Account Name: name\n  ' Account Name': name"
    )
    with pytest.raises(ConfigError, match="name one column"):
        load_us(tmp_path, mapping=mapping)


@pytest.mark.parametrize(
    ("fmt", "cells", "plain"),
    [
        (
            "1,234.5",
            ["$12,500.00", "(1,250.50)", "-$3", "80%", " 7 "],
            ["12500.00", "-1250.50", "-3", "80", "7"],
        ),
        ("1.234,5", ["12.500,75 €", "(3,5)", "1.000"], ["12500.75", "-3.5", "1000"]),
        ("1 234,5", ["12 500,75", "12\u00a0500", "(1 000)"], ["12500.75", "12500", "-1000"]),
    ],
)
def test_numbers_as_written_become_plain_numbers(
    fmt: str, cells: list[str], plain: list[str]
) -> None:
    text = pd.Series([cell.strip() for cell in cells], dtype=object)
    out, unread = plain_numbers(text, fmt, np.zeros(len(cells), dtype=bool))
    assert out.tolist() == plain
    assert not unread.any()


def test_a_cell_that_is_not_a_number_in_the_format_is_left_as_it_is_and_named() -> None:
    text = pd.Series(["1,2,3", "(abc)", "12.5.1", "()", ""], dtype=object)
    out, unread = plain_numbers(text, "1,234.5", np.array([False] * 4 + [True]))
    assert out.tolist() == text.tolist()
    assert unread.tolist() == [True, True, True, True, False]


def test_unix_time_loads_as_its_utc_day(tmp_path: Path) -> None:
    mapping = US_MAPPING.replace(
        'Report Date: {to: as_of, format: "%m/%d/%Y"}', "Stamp: {to: as_of, format: epoch}"
    )
    mapping = mapping.replace(
        'Renewal: {to: renewal, format: "%m/%d/%Y"}', "Renewal: {to: renewal, format: epoch_ms}"
    )
    export = (
        "Account ID,Account Name,Stamp,Owner,MRR,Seats Used,Renewal,Churned?\n"
        "A-1,Acme,1738367999,sam,$1,80%,1764547200000,N\n"  # 2025-01-31 23:59:59 UTC
        "A-2,Bell,soon,ana,$2,80%,,N\n"
    )
    result = load_us(tmp_path, export, mapping)

    assert result.frame["as_of"].tolist() == [pd.Timestamp("2025-01-31")]
    assert result.frame["renewal"].tolist() == [pd.Timestamp("2025-12-01")]
    [reject] = result.rejects
    assert reject.reason.startswith("'soon' is not a date like 1706659200 (mapping.Stamp.format")
