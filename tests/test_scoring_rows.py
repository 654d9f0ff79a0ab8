"""Reading only what a scoring run needs gives the run exactly what reading everything gives.

Each test loads the same book twice, whole and with :class:`ScoringRows`, and compares what
scoring takes from it: each live account's newest row (``latest_rows``) and the known-outcome
rows the accuracy check judges (``known_outcome_rows``), with their labels.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models.abstain import first_seen
from models.contract import load_schema
from models.errors import DataContractError, SourceError
from models.generator import generate_accounts
from models.loaders import load_table
from models.monitoring import known_outcome_rows
from models.scoring import latest_rows, live_rows
from models.scoring_rows import ScoringRows
from models.sources_config import SourcesConfig
from models.validate import LoadResult

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "config" / "schema.yaml")
LENIENT = SourcesConfig(max_reject_share=1.0)
HORIZON = 90
HISTORY = 28
NEED = ScoringRows(HORIZON, history_days=HISTORY)
END = dt.date(2026, 11, 16)


@pytest.fixture(scope="module")
def book() -> pd.DataFrame:
    """300 accounts a week for 20 weeks, churners leaving and new accounts joining."""
    return generate_accounts(300, 20, seed=5, end=END).accounts


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["account_id", "as_of"]).reset_index(drop=True)


def assert_same_for_scoring(
    whole: LoadResult, needed: LoadResult, *, outcomes: bool = True
) -> None:
    live = live_rows(needed.frame, SCHEMA, needed.unlisted).frame
    pd.testing.assert_frame_equal(
        by_key(live), by_key(live_rows(whole.frame, SCHEMA, whole.unlisted).frame)
    )
    assert sorted(needed.unlisted.ids) == sorted(whole.unlisted.ids)
    if not outcomes:  # a one-off snapshot: no outcomes known yet, no ages
        return
    assert_same_verdict_on_age(live, whole, needed)
    rows, labels = known_outcome_rows(needed.frame, SCHEMA, HORIZON)
    whole_rows, whole_labels = known_outcome_rows(whole.frame, SCHEMA, HORIZON)
    assert len(rows) > 0
    order, whole_order = rows["account_id"].argsort(), whole_rows["account_id"].argsort()
    pd.testing.assert_frame_equal(by_key(rows), by_key(whole_rows))
    assert labels[order].tolist() == whole_labels[whole_order].tolist()


def assert_same_verdict_on_age(live: pd.DataFrame, whole: LoadResult, needed: LoadResult) -> None:
    """The abstain check's "too new" verdict, and the age it shows, are those of the whole
    table: first-seen dates may differ only where both are long enough ago (or unknown)."""

    def too_new(frame: pd.DataFrame) -> pd.Series:
        seen = first_seen(live, frame, id_column="account_id", date_column="as_of")
        if seen is None:
            return pd.Series(np.nan, index=live.index)
        age = (live["as_of"] - seen).dt.days
        return age.where(age < HISTORY)

    verdict = too_new(whole.frame)
    assert verdict.notna().any()  # the book has accounts too new to score
    pd.testing.assert_series_equal(too_new(needed.frame), verdict)


def assert_in_file_order(whole: LoadResult, needed: LoadResult) -> None:
    """The rows read are the file's own rows, in the file's order."""
    keys = ["account_id", "as_of"]
    picked = whole.frame.merge(needed.frame[keys], on=keys, how="left", indicator=True)
    in_file_order = whole.frame[(picked["_merge"] == "both").to_numpy()].reset_index(drop=True)
    pd.testing.assert_frame_equal(needed.frame, in_file_order)


def write_parquet(frame: pd.DataFrame, path: Path, *, row_group_size: int) -> Path:
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size
    )
    return path


@pytest.mark.parametrize("order", ["as_of", "account_id"])
def test_parquet_reads_only_the_needed_rows_and_scoring_sees_the_same(
    book: pd.DataFrame, tmp_path: Path, order: str
) -> None:
    # Written week by week (old weeks' row groups skipped) or account by account (every row
    # group holds needed rows).
    path = write_parquet(
        book.sort_values([order, "as_of"], kind="stable"),
        tmp_path / "b.parquet",
        row_group_size=500,
    )

    whole = load_table(path, SCHEMA, LENIENT)
    needed = load_table(path, SCHEMA, LENIENT, rows=NEED)

    assert_same_for_scoring(whole, needed)
    assert needed.total_rows < len(book) / 4
    assert (needed.source_rows, whole.source_rows) == (len(book), None)
    assert_in_file_order(whole, needed)


def test_row_groups_read_whole_and_in_part_keep_the_files_order(
    book: pd.DataFrame, tmp_path: Path
) -> None:
    # One week per row group: the accuracy window's week and the newest week are read whole,
    # and between them the week where a few accounts were last seen is read in part (they
    # stop appearing without a churn date: the export no longer lists them, so that row is
    # read and they are not scored).
    quiet = latest_rows(book, SCHEMA)["account_id"].head(3).tolist()
    last_seen = book["as_of"].max() - pd.Timedelta(weeks=4)
    kept = ~book["account_id"].isin(quiet) | (book["as_of"] <= last_seen)
    weekly = book[kept].sort_values("as_of", kind="stable")
    sizes = weekly.groupby("as_of").size()
    assert sizes.nunique() > 1  # the quiet accounts' absence makes the last weeks shorter
    path = tmp_path / "weekly.parquet"
    with pq.ParquetWriter(path, pa.Schema.from_pandas(weekly, preserve_index=False)) as writer:
        for _, week in weekly.groupby("as_of"):
            writer.write_table(pa.Table.from_pandas(week, preserve_index=False))

    whole = load_table(path, SCHEMA, LENIENT)
    needed = load_table(path, SCHEMA, LENIENT, rows=NEED)

    assert_same_for_scoring(whole, needed)
    assert set(quiet) <= set(needed.unlisted.ids)
    assert not set(quiet) & set(
        live_rows(needed.frame, SCHEMA, needed.unlisted).frame["account_id"]
    )
    assert_in_file_order(whole, needed)


def test_accounts_on_their_own_dates_keep_their_newest_row(
    book: pd.DataFrame, tmp_path: Path
) -> None:
    # Each account observed on its own weekday; a few accounts stop appearing without a churn
    # date, so their newest row is weeks older than the rest and still live.
    own = book.copy()
    number = own["account_id"].str.extract(r"(\d+)$", expand=False).astype(int)
    own["as_of"] = own["as_of"] - pd.to_timedelta(number % 7, unit="D")
    quiet = latest_rows(book, SCHEMA)["account_id"].head(5).tolist()
    gone = own["account_id"].isin(quiet)
    own = own[~gone | (own["as_of"] < own["as_of"].max() - pd.Timedelta(days=30))]
    path = write_parquet(own, tmp_path / "own.parquet", row_group_size=700)

    whole = load_table(path, SCHEMA, LENIENT)
    needed = load_table(path, SCHEMA, LENIENT, rows=NEED)

    assert_same_for_scoring(whole, needed)
    assert set(quiet) <= set(live_rows(needed.frame, SCHEMA, needed.unlisted).frame["account_id"])


def test_a_rejected_newest_row_falls_back_to_the_accounts_previous_row(
    book: pd.DataFrame, tmp_path: Path
) -> None:
    bad = book.copy()
    newest = np.flatnonzero((bad["as_of"] == bad["as_of"].max()).to_numpy())[:3]
    bad.loc[bad.index[newest], "arr"] = -5.0
    path = write_parquet(bad, tmp_path / "bad.parquet", row_group_size=1000)

    whole = load_table(path, SCHEMA, LENIENT)
    needed = load_table(path, SCHEMA, LENIENT, rows=NEED)

    assert_same_for_scoring(whole, needed)
    assert [(r.record, r.column, r.value) for r in needed.rejects] == [
        (int(position) + 1, "arr", "-5.0") for position in newest
    ]
    fallen_back = live_rows(needed.frame, SCHEMA, needed.unlisted).frame.set_index("account_id")
    for account in bad["account_id"].iloc[newest]:
        assert fallen_back.loc[account, "as_of"] == bad["as_of"].max() - pd.Timedelta(days=7)


def test_csv_rejects_keep_their_line_numbers_and_unreadable_lines_are_reported(
    book: pd.DataFrame, tmp_path: Path
) -> None:
    lines = book.to_csv(index=False, date_format="%Y-%m-%d").splitlines()
    newest_line = max(range(1, len(lines)), key=lambda index: (lines[index].split(",")[2], -index))
    lines[newest_line] = lines[newest_line].rsplit(",", 2)[0]  # a short line
    lines[5] = lines[5].replace(lines[5].split(",")[2], "someday", 1)  # an old week, bad date
    path = tmp_path / "book.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    whole = load_table(path, SCHEMA, LENIENT)
    needed = load_table(path, SCHEMA, LENIENT, rows=NEED)

    assert_same_for_scoring(whole, needed)
    reported = [(r.record, r.column) for r in needed.rejects]
    assert reported == [(6, "as_of"), (newest_line + 1, None)]
    assert reported == [(r.record, r.column) for r in whole.rejects]


def test_a_missing_key_column_is_reported_as_without_it(book: pd.DataFrame, tmp_path: Path) -> None:
    path = write_parquet(
        book.drop(columns="as_of"), tmp_path / "no-date.parquet", row_group_size=1000
    )

    with pytest.raises(DataContractError, match="missing required column"):
        load_table(path, SCHEMA, LENIENT, rows=NEED)


def test_a_mapped_export_is_picked_through_its_mapping(book: pd.DataFrame, tmp_path: Path) -> None:
    theirs = book.rename(columns={"account_id": "Customer ID", "as_of": "Snapshot"})
    path = write_parquet(theirs, tmp_path / "theirs.parquet", row_group_size=1000)
    sources = SourcesConfig.model_validate(
        {"mapping": {"Customer ID": "account_id", "Snapshot": "as_of"}, "max_reject_share": 1.0}
    )

    whole = load_table(path, SCHEMA, sources)
    needed = load_table(path, SCHEMA, sources, rows=NEED)

    assert_same_for_scoring(whole, needed)
    assert needed.total_rows < len(book) / 4


def test_a_one_off_export_with_a_constant_date_reads_its_live_accounts(
    book: pd.DataFrame, tmp_path: Path
) -> None:
    # Every account once, churned ones with their churn date: those need not be read.
    snapshot = book.drop_duplicates("account_id", keep="last").drop(columns="as_of")
    path = tmp_path / "snapshot.csv"
    snapshot.to_csv(path, index=False, date_format="%Y-%m-%d")
    sources = SourcesConfig(constants={"as_of": str(END)}, max_reject_share=1.0)

    whole = load_table(path, SCHEMA, sources)
    needed = load_table(path, SCHEMA, sources, rows=NEED)

    assert_same_for_scoring(whole, needed, outcomes=False)
    assert len(needed.frame) == snapshot["churn_date"].isna().sum() < len(snapshot)


def test_a_file_that_is_not_parquet_is_a_source_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "accounts.parquet"
    path.write_text("account_id,as_of\nA-1,2026-11-16\n", encoding="utf-8")

    with pytest.raises(SourceError, match=r"accounts\.parquet: cannot read as Parquet"):
        load_table(path, SCHEMA, LENIENT, rows=NEED)


def test_an_account_whose_newest_row_says_yes_churned_is_not_scored_from_an_older_row(
    tmp_path: Path,
) -> None:
    """A yes/no label marks the row where the account left. Its older rows still say "no",
    and the accuracy check reads some of them (their outcome is known by now), so the newest
    row must be read too: else that older row looks like the account's newest, and a lost
    account is scored as live."""
    schema_file = tmp_path / "schema.yaml"
    schema_file.write_text(
        "columns:\n"
        "  acct: {type: string, role: id}\n"
        "  name: {type: string, role: name}\n"
        "  week: {type: date, role: date}\n"
        "  owner: {type: string, role: owner}\n"
        "  logins: {type: int, min: 0}\n"
        "  left: {type: bool, role: label, required: false}\n"
    )
    schema = load_schema(schema_file)
    weeks = pd.date_range("2026-01-05", periods=12, freq="7D")
    rows = [
        {
            "acct": f"A{a}",
            "name": f"Account {a}",
            "week": week,
            "owner": "sam",
            "logins": 10 + a,
            "left": a < 4 and i == len(weeks) - 1,  # A0-A3 leave in the last week
        }
        for a in range(12)
        for i, week in enumerate(weeks)
    ]
    path = write_parquet(pd.DataFrame(rows), tmp_path / "weekly.parquet", row_group_size=20)

    whole = load_table(path, schema, LENIENT)
    needed = load_table(path, schema, LENIENT, rows=ScoringRows(horizon_days=28))

    live = live_rows(needed.frame, schema, needed.unlisted).frame
    assert sorted(live["acct"]) == sorted(
        live_rows(whole.frame, schema, whole.unlisted).frame["acct"]
    )
    assert not {"A0", "A1", "A2", "A3"} & set(live["acct"])
    assert len(live) == 8


def test_an_account_with_a_churn_date_after_the_data_is_leaving_and_not_scored(
    book: pd.DataFrame, tmp_path: Path
) -> None:
    """A cancellation recorded with its effective day after the last snapshot: the team knows
    the account is leaving, and a risk score beside it ("low risk") would only mislead."""
    leaving = book.copy()
    live = latest_rows(book, SCHEMA)["account_id"].head(3).tolist()
    leaving.loc[leaving["account_id"].isin(live), "churn_date"] = pd.Timestamp(END) + pd.Timedelta(
        days=20
    )
    path = write_parquet(leaving, tmp_path / "leaving.parquet", row_group_size=500)

    whole = load_table(path, SCHEMA, LENIENT)
    needed = load_table(path, SCHEMA, LENIENT, rows=NEED)

    scored = set(live_rows(needed.frame, SCHEMA, needed.unlisted).frame["account_id"])
    assert scored == set(live_rows(whole.frame, SCHEMA, whole.unlisted).frame["account_id"])
    assert not scored & set(live)
    assert len(scored) == len(latest_rows(book, SCHEMA)) - 3
