"""validate_frame: every bad cell reported with its line and column, good rows kept and typed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.contract import canonical_dtypes, load_schema
from models.errors import ConfigError, DataContractError
from models.sources_config import SourcesConfig
from models.validate import LoadResult, Reject, RejectLimitError, validate_frame, write_rejects

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "config" / "schema.yaml")
GOOD_CSV = Path(__file__).parent / "data" / "accounts_good.csv"


def good_rows() -> pd.DataFrame:
    """Three valid rows covering every column, read the way the CSV loader reads them."""
    return pd.read_csv(GOOD_CSV, dtype=str, keep_default_na=False)


def with_cell(column: str, value: str, row: int = 1) -> pd.DataFrame:
    raw = good_rows()
    raw.loc[row, column] = value
    return raw


def validate(raw: pd.DataFrame, **config: object) -> LoadResult:
    """As the CSV loader calls it: line numbers, header on line 1, no reject limit unless
    ``config`` (sources.yaml keys) sets one."""
    sources = SourcesConfig.model_validate({"max_reject_share": 1.0, **config})
    return validate_frame(
        raw, SCHEMA, source="accounts.csv", sources=sources, first_record=2, record_label="line"
    )


def test_good_rows_come_out_in_schema_order_with_canonical_dtypes() -> None:
    result = validate(good_rows())

    assert result.rejects == ()
    assert result.warnings == ()
    assert result.total_rows == 3
    assert result.reject_share == 0.0
    assert list(result.frame.columns) == list(SCHEMA.columns)
    assert result.frame.dtypes.astype(str).to_dict() == canonical_dtypes(SCHEMA)
    assert result.frame["as_of"].iloc[0] == pd.Timestamp("2024-03-04")
    assert result.frame["champion_left_90d"].tolist() == [False, True, False]
    assert pd.isna(result.frame.loc[2, "industry"])
    assert pd.isna(result.frame.loc[2, "nps"])
    assert result.frame.loc[2, "churn_date"] == pd.Timestamp("2024-08-20")


def test_values_are_normalised_to_the_contract_spelling() -> None:
    raw = good_rows()
    raw.loc[0, "segment"] = "  Enterprise "
    raw.loc[1, "plan"] = "BUSINESS"
    raw.loc[0, "champion_left_90d"] = "Yes"
    raw.loc[1, "champion_left_90d"] = "0"
    raw.loc[2, "arr"] = " 5400 "
    raw.loc[2, "oldest_escalation_days"] = "NA"

    frame = validate(raw).frame

    assert frame["segment"].tolist() == ["enterprise", "mid_market", "smb"]
    assert frame["plan"].tolist() == ["enterprise", "business", "starter"]
    assert frame["champion_left_90d"].tolist() == [True, False, False]
    assert frame.loc[2, "arr"] == 5400.0
    assert pd.isna(frame.loc[2, "oldest_escalation_days"])


@pytest.mark.parametrize("blank", ["-", "—", "#N/A", " n/a "])
def test_a_dash_or_na_is_an_empty_cell_where_a_number_or_date_is_expected(blank: str) -> None:
    raw = with_cell("nps", blank)
    raw.loc[1, "churn_date"] = blank
    result = validate(raw)
    assert result.rejects == ()
    assert pd.isna(result.frame.loc[1, "nps"])
    assert pd.isna(result.frame.loc[1, "churn_date"])
    [required] = validate(with_cell("arr", blank)).rejects
    assert required.reason == f"{blank!r} is missing, but the column is required"


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-03-04T08:00:00.000Z",
        "2024-03-04T23:59:59+05:30",
        "2024-03-04 08:00:00",
        "2024-03-04T08:00",
        "2024-03-04 00:00:00-0800",
    ],
)
def test_a_timestamp_in_a_date_column_is_read_as_the_day_it_writes(stamp: str) -> None:
    """CRMs export timestamps; the as-of date is the day the export writes, whatever the
    time and zone beside it."""
    result = validate(with_cell("as_of", stamp))
    assert result.rejects == ()
    assert result.frame.loc[1, "as_of"] == pd.Timestamp("2024-03-04")


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("arr", "abc", "'abc' is not a number"),
        ("arr", "1,000", "'1,000' is not a number"),
        ("arr", "inf", "'inf' is not a finite number"),
        ("arr", "-5", "'-5' is below the minimum 0"),
        ("tenure_months", "1.5", "'1.5' is not a whole number"),
        ("tenure_months", "601", "'601' is above the maximum 600"),
        ("seats_purchased", "0", "'0' is below the minimum 1"),
        ("logins_30d", "99999999999999999999", "is too large for a whole number"),
        ("nps", "11", "'11' is above the maximum 10"),
        ("csat", "x", "'x' is not a number"),
        ("segment", "gold", "'gold' is not one of smb, mid_market, enterprise"),
        ("champion_left_90d", "maybe", "'maybe' is not true/false"),
        ("as_of", "03/04/2024", "'03/04/2024' is not a date like 2024-01-31"),
        ("as_of", "2024-3-4", "'2024-3-4' is not a date like 2024-01-31"),
        ("renewal_date", "2024-02-30", "'2024-02-30' is not a real date"),
        ("renewal_date", "2024-02-30T08:00:00Z", "'2024-02-30T08:00:00Z' is not a real date"),
        ("as_of", "2024-03-04T8:00", "'2024-03-04T8:00' is not a date like 2024-01-31"),
        ("as_of", "2024-03-04 noon", "'2024-03-04 noon' is not a date like 2024-01-31"),
        ("renewal_date", "9999-12-31", "'9999-12-31' is outside the years"),
        ("account_name", "", "empty, but the column is required"),
        ("open_escalations", " ", "empty, but the column is required"),
        ("arr", "NaN", "'NaN' is missing, but the column is required"),
    ],
)
def test_a_bad_cell_is_rejected_with_line_column_value_and_reason(
    column: str, value: str, reason: str
) -> None:
    result = validate(with_cell(column, value))

    [reject] = result.rejects
    assert (reject.record, reject.column, reject.value) == (3, column, value)
    assert reason in reject.reason
    assert result.frame["account_id"].tolist() == ["A-001", "A-003"]
    assert result.rejected_rows.index.tolist() == [3]
    assert result.rejected_rows.loc[3, column] == value
    assert result.reject_share == pytest.approx(1 / 3)


def test_every_failure_of_a_row_is_reported_but_the_row_is_quarantined_once() -> None:
    raw = good_rows()
    raw.loc[0, "nps"] = "12"
    raw.loc[0, "arr"] = "lots"
    raw.loc[0, "plan"] = "platinum"

    result = validate(raw)

    assert [(r.record, r.column) for r in result.rejects] == [
        (2, "plan"),
        (2, "arr"),
        (2, "nps"),
    ]
    assert len(result.rejected_rows) == 1
    assert len(result.frame) == 2


def test_rejects_are_listed_in_line_order() -> None:
    raw = good_rows()
    raw.loc[2, "arr"] = "x"
    raw.loc[0, "nps"] = "x"

    assert [(r.record, r.column) for r in validate(raw).rejects] == [(2, "nps"), (4, "arr")]


def test_a_later_duplicate_account_and_date_is_rejected_naming_the_first_line() -> None:
    raw = pd.concat([good_rows(), good_rows().iloc[[0]]], ignore_index=True)

    result = validate(raw)

    assert result.rejects == (
        Reject(
            5,
            None,
            "A-001, 2024-03-04",
            "duplicate of line 2 (same account_id and as_of)",
        ),
    )
    assert result.frame["account_id"].tolist() == ["A-001", "A-002", "A-003"]


def test_the_first_good_row_of_a_duplicate_key_wins() -> None:
    raw = pd.concat([good_rows(), good_rows().iloc[[0]]], ignore_index=True)
    raw.loc[0, "arr"] = "oops"

    result = validate(raw)

    assert [(r.record, r.column) for r in result.rejects] == [(2, "arr")]
    assert result.frame["account_id"].tolist() == ["A-002", "A-003", "A-001"]


def test_over_the_reject_limit_the_run_fails_listing_the_first_problems() -> None:
    raw = with_cell("arr", "abc")

    with pytest.raises(
        RejectLimitError,
        match=(
            r"^accounts\.csv: 1 of 3 rows \(33\.3%\) rejected, over the 5\.0% limit set by "
            r"max_reject_share in config/sources\.yaml; first problems: "
            r"line 3, column arr: 'abc' is not a number$"
        ),
    ) as caught:
        validate(raw, max_reject_share=0.05)

    assert isinstance(caught.value, DataContractError)
    assert caught.value.result.rejected_rows.index.tolist() == [3]


def test_the_error_lists_only_the_first_five_problems() -> None:
    raw = pd.concat([good_rows()] * 4, ignore_index=True)
    raw["account_id"] = [f"A-{i}" for i in range(len(raw))]
    raw["arr"] = "x"

    with pytest.raises(RejectLimitError, match="line 6, column arr") as caught:
        validate(raw, max_reject_share=0.5)

    assert len(caught.value.result.rejects) == 5
    assert "line 7" not in str(caught.value)


def test_a_share_equal_to_the_limit_passes() -> None:
    result = validate(with_cell("arr", "abc"), max_reject_share=1 / 3)

    assert len(result.frame) == 2


def test_a_missing_required_column_fails_at_once_naming_it() -> None:
    raw = good_rows().drop(columns=["arr", "plan"])

    with pytest.raises(
        DataContractError,
        match=r"^accounts\.csv: missing required column\(s\) 'plan', 'arr'\. Rename",
    ):
        validate(raw)


def test_a_missing_column_message_suggests_a_close_name_and_the_mapping() -> None:
    raw = good_rows().rename(columns={"tenure_months": "tenure_month"})

    with pytest.raises(DataContractError, match=r"'tenure_month' -> tenure_months\?"):
        validate(raw)
    with pytest.raises(DataContractError, match=r"Check the mapping in config/sources\.yaml"):
        validate(raw, mapping={"Company": "account_name"})


def test_unknown_columns_are_dropped_with_a_warning_naming_them() -> None:
    raw = good_rows().assign(region="emea", notes="x")

    result = validate(raw)

    assert result.warnings == (
        "accounts.csv: ignoring column(s) not in config/schema.yaml: 'region', 'notes' "
        "(add them to the schema, or map them in config/sources.yaml, to use them)",
    )
    assert "region" not in result.frame.columns


def test_an_optional_column_absent_from_the_input_is_added_empty() -> None:
    result = validate(good_rows().drop(columns=["nps", "industry", "churn_date"]))

    assert result.frame.dtypes.astype(str).to_dict() == canonical_dtypes(SCHEMA)
    assert result.frame["nps"].isna().all()
    assert result.frame["churn_date"].isna().all()


def test_a_mapping_renames_their_columns_to_ours() -> None:
    raw = good_rows().rename(columns={"account_id": "Customer ID", "arr": "ARR"})

    result = validate(raw, mapping={"Customer ID": "account_id", "ARR": "arr", "Gone": "nps"})

    assert result.frame["account_id"].tolist() == ["A-001", "A-002", "A-003"]
    assert result.warnings == (
        "accounts.csv: mapping in config/sources.yaml names column(s) 'Gone', "
        "not found in the data",
    )


def test_a_mapped_column_wins_over_a_column_already_named_like_the_target() -> None:
    raw = good_rows().assign(Revenue="1")

    result = validate(raw, mapping={"Revenue": "arr"})

    assert result.frame["arr"].tolist() == [1.0, 1.0, 1.0]
    assert "ignoring column(s) 'arr'" in result.warnings[0]


def test_a_reject_names_the_column_the_mapping_read_not_the_one_it_ignored() -> None:
    """Here the export has an arr column too, which the mapping shadows: naming the cell
    "column arr" would send the user to the wrong column."""
    raw = good_rows().assign(Revenue=["1", "lots", "3"])

    result = validate(raw, mapping={"Revenue": "arr"})

    assert result.describe_rejects() == "line 3, column Revenue (arr): 'lots' is not a number"
    assert result.rejects[0].column == "arr", "code still reads our name"


def test_a_column_mapped_onto_its_own_name_is_named_once() -> None:
    result = validate(with_cell("nps", "12"), mapping={"nps": "nps"})

    assert result.rejects == (Reject(3, "nps", "12", "'12' is above the maximum 10"),)
    assert result.describe_rejects() == "line 3, column nps: '12' is above the maximum 10"


def test_a_mapping_onto_a_name_not_in_the_schema_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError,
        match=(
            r"config/sources\.yaml: mapping: 'Customer ID' maps to 'acount_id', which is not "
            r"a column of config/schema\.yaml \(did you mean 'account_id'\?\)"
        ),
    ):
        validate(good_rows(), mapping={"Customer ID": "acount_id"})


def test_two_columns_mapped_onto_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"several columns map to 'arr'"):
        validate(good_rows(), mapping={"ARR": "arr", "Revenue": "arr"})


def test_fully_empty_rows_are_skipped_without_shifting_line_numbers() -> None:
    raw = good_rows()
    blank = pd.DataFrame([[""] * raw.shape[1]], columns=raw.columns)
    raw = pd.concat([raw.iloc[:1], blank, raw.iloc[1:]], ignore_index=True)
    raw.loc[3, "arr"] = "x"

    result = validate(raw)

    assert [(r.record, r.column) for r in result.rejects] == [(5, "arr")]
    assert result.total_rows == 3
    assert result.warnings == ("accounts.csv: skipped 1 empty row(s) (line 3)",)


def test_an_empty_table_gives_an_empty_typed_frame() -> None:
    result = validate(good_rows().iloc[:0])

    assert result.total_rows == 0
    assert result.reject_share == 0.0
    assert result.frame.dtypes.astype(str).to_dict() == canonical_dtypes(SCHEMA)


def test_long_integer_literals_are_kept_exactly() -> None:
    result = validate(with_cell("logins_30d", "9007199254740993"))

    assert result.frame.loc[1, "logins_30d"] == 9007199254740993


def test_typed_columns_skip_parsing_but_are_still_checked() -> None:
    typed = validate(good_rows()).frame
    typed.loc[0, "nps"] = 11
    typed["tenure_months"] = typed["tenure_months"].astype("float64")
    typed.loc[2, "tenure_months"] = 2.5
    typed.loc[1, "account_name"] = None

    result = validate_frame(
        typed, SCHEMA, source="accounts.parquet", sources=SourcesConfig(max_reject_share=1.0)
    )

    assert [(r.record, r.column, r.value) for r in result.rejects] == [
        (1, "nps", "11"),
        (2, "account_name", ""),
        (3, "tenure_months", "2.5"),
    ]
    assert result.frame.dtypes.astype(str).to_dict() == canonical_dtypes(SCHEMA)


def test_json_style_values_are_accepted() -> None:
    raw = good_rows().astype(object)
    raw["tenure_months"] = [36, 14, 3]
    raw["champion_left_90d"] = [False, True, False]
    raw["nps"] = [9, 3, None]

    result = validate_frame(raw, SCHEMA, source="http://x/accounts")

    assert result.rejects == ()
    assert result.frame["tenure_months"].tolist() == [36, 14, 3]
    assert result.frame["nps"].isna().tolist() == [False, False, True]


def test_write_rejects_keeps_their_columns_with_line_and_reasons(tmp_path: Path) -> None:
    raw = good_rows().rename(columns={"arr": "ARR"})
    raw.loc[1, "ARR"] = "abc"
    raw.loc[1, "nps"] = "12"
    result = validate(raw, mapping={"ARR": "arr"})
    path = tmp_path / "out" / "rejects.csv"

    write_rejects(result, path)

    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(written.columns) == ["reject_line", "reject_reasons", *raw.columns]
    assert written.loc[0, "reject_line"] == "3"
    assert written.loc[0, "reject_reasons"] == (
        "ARR (arr): 'abc' is not a number; nps: '12' is above the maximum 10"
    ), "their column ARR, which the mapping renames arr; nps is ours already"
    assert written.loc[0, "ARR"] == "abc"
    assert written.loc[0, "account_id"] == "A-002"


def test_many_rows_validate_without_per_row_python() -> None:
    """A smoke check of the vectorised path at a size where a per-row loop would show."""
    n = 20_000
    raw = good_rows().iloc[np.arange(n) % 3].reset_index(drop=True)
    raw["account_id"] = [f"A-{i}" for i in range(n)]
    raw.loc[::1000, "arr"] = "x"

    result = validate(raw)

    assert len(result.rejects) == 20
    assert len(result.frame) == n - 20


def test_rows_rejected_mostly_as_repeats_of_an_account_and_date_say_what_that_means() -> None:
    """An as-of date that is really a created or renewal date repeats within an account: the
    run stops, and the message points at the date's role, not at the reject limit."""
    raw = pd.concat([good_rows()] * 4, ignore_index=True)
    with pytest.raises(RejectLimitError) as caught:
        validate(raw, max_reject_share=0.05)
    message = str(caught.value)
    assert "9 of 12 rows (75.0%) rejected" in message
    assert (
        "Most of them repeat an account and date: is as_of the day each row describes (role: "
        "date in config/schema.yaml), and account_id the account?"
    ) in message
    assert "raising max_reject_share will not help" in message

    few = pd.concat([good_rows(), with_cell("arr", "x", row=0).iloc[:1]], ignore_index=True)
    few.loc[3, "account_id"] = "A-009"
    with pytest.raises(RejectLimitError) as other:
        validate(few, max_reject_share=0.05)
    assert "repeat an account and date" not in str(other.value)
