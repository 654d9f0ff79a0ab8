"""The SQL source against a real PostgreSQL: each module run creates its own database and drops it.

The server is the one on 127.0.0.1:5432 (``TEST_POSTGRES_URL`` overrides it; ``make test`` starts
it with scripts/ensure-postgres). These tests skip, saying why, only when no PostgreSQL answers.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import socket
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlalchemy import create_engine, make_url

from bot.cli import main
from models.contract import AccountSchema, load_schema
from models.errors import ConfigError, SourceError
from models.generator import generate_accounts
from models.sources_config import SourcesConfig, load_sources_config
from models.sql_source import SqlAccountSource
from models.validate import LoadResult, RejectLimitError
from tests.postgres_fixtures import fresh_database

PASSWORD = "pw-" + uuid.uuid4().hex  # trust auth ignores it; no message may show it
URL_ENV = "CHURNBOT_SQL_URL"

SCHEMA = """
columns:
  account_id: {type: string, role: id}
  account_name: {type: string, role: name}
  as_of: {type: date, role: date}
  owner_csm: {type: string, role: owner}
  arr: {type: float, min: 0}
  seats: {type: int, min: 1}
  renewal_date: {type: date, required: false}
  churned: {type: bool, role: label, required: false}
"""

# Their CRM table: other names, ARR in cents, a Y/N churn flag, renewal as a timestamp.
TABLE = """
CREATE TABLE crm_accounts (
    "Account No" bigint,
    "Company" text,
    "Snapshot" date,
    "CSM" text,
    "ARR (cents)" bigint,
    "Seats" integer,
    "Renewal" timestamp,
    "Churned" text
)
"""
ROWS = [
    (1001, "Acme", "2024-03-04", "dana", 25000050, 40, "2024-11-30 00:00", "N"),
    (1002, "Globex", "2024-03-04", "li", 4800000, 0, None, "Y"),
    (1003, "Initech", "2024-03-04", "dana", 990000, 12, "2025-01-31 00:00", "N"),
    (1004, "Umbrella", "2024-03-04", "li", 1500000, 9, None, "Maybe"),
    (1001, "Acme", "2024-03-04", "dana", 25000050, 40, "2024-11-30 00:00", "N"),
    (1005, "Hooli", "2024-03-04", "sam", None, 5, None, None),
    (1006, "Testco", "2024-03-04", "sam", 100, 1, None, "N"),
]
SOURCES = """
mapping:
  Account No: account_id
  Company: account_name
  Snapshot: as_of
  CSM: owner_csm
  ARR (cents): {to: arr, scale: 0.01}
  Seats: seats
  Renewal: renewal_date
  Churned: {to: churned, values: {"Y": true, "N": false}}
max_reject_share: 1.0
sql:
  url_env: CHURNBOT_SQL_URL
  query: SELECT * FROM crm_accounts WHERE "Company" NOT LIKE 'Test%' ORDER BY ctid
  chunk_rows: 2
"""


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh database holding crm_accounts; yields its URL (with a password that trust
    authentication ignores, so tests can check it never leaks)."""
    with fresh_database("churnbot_test") as url:
        with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
            conn.execute(TABLE)
            conn.cursor().executemany(
                "INSERT INTO crm_accounts VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", ROWS
            )
        yield url.set(password=PASSWORD).render_as_string(hide_password=False)


def folder_with(tmp_path: Path, sources: str = SOURCES) -> Path:
    """A config folder of the company's own (not config/), with the SQL source configured."""
    folder = tmp_path / "their-config"
    folder.mkdir(exist_ok=True)
    (folder / "schema.yaml").write_text(textwrap.dedent(SCHEMA))
    (folder / "sources.yaml").write_text(textwrap.dedent(sources))
    return folder


def source(folder: Path, url: str | None) -> tuple[SqlAccountSource, AccountSchema]:
    environ = {URL_ENV: url} if url is not None else {}
    sources = load_sources_config(folder / "sources.yaml")
    return SqlAccountSource(sources, environ=environ), load_schema(folder / "schema.yaml")


def load(folder: Path, url: str | None) -> LoadResult:
    sql, schema = source(folder, url)
    return sql.load(schema)


def failure(folder: Path, url: str | None) -> str:
    """The one-line message a broken SQL source gives."""
    with pytest.raises(SourceError) as caught:
        load(folder, url)
    message = str(caught.value)
    assert "\n" not in message
    assert PASSWORD not in message
    return message


def test_their_table_loads_through_the_mapping_in_chunks_smaller_than_the_table(
    database: str, tmp_path: Path
) -> None:
    result = load(folder_with(tmp_path), database)

    frame = result.frame
    # 6 rows pass the WHERE (the LIKE 'Test%' is not taken for a parameter), read 2 at a time.
    assert result.total_rows == 6
    assert frame["account_id"].tolist() == ["1001", "1003"], "ids are text, never 1001.0"
    assert frame["arr"].tolist() == pytest.approx([250000.50, 9900.0])
    assert frame["churned"].tolist() == [False, False]
    # A timestamp column fills a date column.
    assert frame["renewal_date"].tolist() == [dt.datetime(2024, 11, 30), dt.datetime(2025, 1, 31)]
    assert frame["as_of"].iloc[0] == dt.datetime(2024, 3, 4)


def test_a_table_without_a_date_is_dated_the_day_it_is_read(database: str, tmp_path: Path) -> None:
    """``constants: export_date`` on a live source: the day of the read (churnbot score and
    train pass it in; a file's is the day it was written)."""
    sources = SOURCES.replace("  Snapshot: as_of\n", "").replace(
        "SELECT * FROM crm_accounts",
        'SELECT "Account No", "Company", "CSM", "ARR (cents)", '
        '"Seats", "Renewal", "Churned" FROM crm_accounts',
    )
    folder = folder_with(tmp_path, sources + "constants:\n  as_of: export_date\n")
    config = load_sources_config(folder / "sources.yaml")
    day = dt.date(2026, 3, 2)
    sql = SqlAccountSource(config.dated(day), environ={URL_ENV: database})

    frame = sql.load(load_schema(folder / "schema.yaml")).frame
    assert frame["account_id"].tolist() == ["1001", "1003"]
    assert set(frame["as_of"]) == {dt.datetime(2026, 3, 2)}


def test_bad_rows_are_rejected_with_their_row_number_across_chunks(
    database: str, tmp_path: Path
) -> None:
    result = load(folder_with(tmp_path), database)

    assert [(r.record, r.column) for r in result.rejects] == [
        (2, "seats"),
        (4, "churned"),
        (5, None),
        (6, "arr"),
    ]
    assert result.describe_rejects() == (
        "row 2, column Seats (seats): '0' is below the minimum 1; "
        f"row 4, column Churned (churned): 'Maybe' is not one of Y, N (mapping.Churned.values in "
        f"{tmp_path / 'their-config' / 'sources.yaml'}); "
        "row 5: duplicate of row 1 (same 'Account No' (account_id) and Snapshot (as_of)); "
        "row 6, column 'ARR (cents)' (arr): empty, but the column is required"
    )
    assert result.rejected_rows.index.name == "row"
    assert result.rejected_rows["Company"].tolist() == ["Globex", "Umbrella", "Acme", "Hooli"]


def test_past_the_reject_limit_the_message_names_the_real_config_file(
    database: str, tmp_path: Path
) -> None:
    folder = folder_with(tmp_path, SOURCES.replace("max_reject_share: 1.0", "max_reject_share: 0"))
    with pytest.raises(RejectLimitError) as caught:
        load(folder, database)

    assert str(caught.value).startswith(
        f"SQL ${URL_ENV}: 4 of 6 rows (66.7%) rejected, over the 0.0% limit set by "
        f"max_reject_share in {folder / 'sources.yaml'}; first problems: "
        "row 2, column Seats (seats)"
    )


def test_a_missing_environment_variable_names_it_and_the_config_key(tmp_path: Path) -> None:
    folder = folder_with(tmp_path)

    message = failure(folder, None)

    assert message == (
        f"the SQL source needs a database URL in the environment variable ${URL_ENV}, which is "
        f"not set ({folder / 'sources.yaml'}: sql.url_env)"
    )


def test_a_malformed_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    message = failure(folder_with(tmp_path), f"user:{PASSWORD}@nowhere")

    assert message.startswith(f"${URL_ENV} does not hold a database URL (expected e.g. postgres")


def test_a_url_for_a_driver_that_is_not_installed_says_so(tmp_path: Path) -> None:
    message = failure(folder_with(tmp_path), f"mysql://user:{PASSWORD}@127.0.0.1/db")

    assert message.startswith(f"${URL_ENV}: no database driver for 'mysql' is installed")


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda url: url.set(username="no_such_role"), 'FATAL: role "no_such_role" does not'),
        (lambda url: url.set(port=closed_port()), "Connection refused"),
        (lambda url: url.set(database="no_such_db"), 'FATAL: database "no_such_db" does not'),
    ],
    ids=["wrong-user", "wrong-port", "wrong-database"],
)
def test_a_connection_failure_is_one_line_naming_the_variable_and_the_query(
    database: str, tmp_path: Path, change, reason: str
) -> None:
    url = change(make_url(database))

    message = failure(folder_with(tmp_path), url.render_as_string(hide_password=False))

    shown = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=True)
    assert message.startswith(
        f"SQL source ${URL_ENV}, query 'SELECT * FROM crm_accounts WHERE \"Company\" ...': "
        f"cannot connect to {shown}: connection failed: "
    )
    assert reason in message


@pytest.mark.timeout(60)
def test_a_server_that_never_answers_fails_after_the_connect_timeout(tmp_path: Path) -> None:
    # The kernel completes the TCP handshake from the backlog, so libpq sends its startup
    # packet and waits for a reply that never comes: without connect_timeout it would hang.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        folder = folder_with(tmp_path, SOURCES + "  connect_timeout_seconds: 2\n")

        message = failure(folder, f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/x")

    assert f"cannot connect to postgresql+psycopg://postgres:***@127.0.0.1:{port}/x" in message
    assert "timeout expired" in message


def test_an_sql_error_names_the_query_and_never_the_password(database: str, tmp_path: Path) -> None:
    broken = SOURCES.replace("FROM crm_accounts", "FROM crm_acounts")

    message = failure(folder_with(tmp_path, broken), database)

    assert message == (
        f"SQL source ${URL_ENV}, query 'SELECT * FROM crm_acounts WHERE \"Company\" ...': "
        'the query failed: relation "crm_acounts" does not exist'
    )


def test_the_source_and_its_repr_never_show_the_password(database: str, tmp_path: Path) -> None:
    sql, _ = source(folder_with(tmp_path), database)

    assert PASSWORD not in repr(sql)
    assert PASSWORD not in sql.label
    assert sql.label.startswith("postgresql+psycopg://postgres:***@")


def test_no_sql_section_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    sources = SourcesConfig().with_file(tmp_path / "sources.yaml")

    where = re.escape(str(tmp_path / "sources.yaml"))
    with pytest.raises(ConfigError, match=rf"^{where}: sql: no SQL source configured"):
        SqlAccountSource(sources, environ={})


def test_churnbot_train_source_sql_without_the_variable_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("CHURNBOT_VAR", str(tmp_path / "var"))

    code = main(["train", "--source", "sql"])

    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert f"environment variable ${URL_ENV}, which is not set" in " ".join(err.split())


@pytest.mark.slow
def test_churnbot_train_reads_a_weekly_book_from_sql_with_its_own_column_names(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = Path(__file__).resolve().parents[1]
    book = generate_accounts(800, 52, seed=3, end=dt.date(2026, 11, 16)).accounts
    theirs = {"account_id": "Customer ID", "as_of": "Snapshot", "churn_date": "Churned On"}
    book = book.rename(columns=theirs)
    engine = create_engine(make_url(database).set(drivername="postgresql+psycopg"))
    try:
        book.head(0).to_sql("crm_weekly", engine, index=False)  # the table, typed by pandas
    finally:
        engine.dispose()
    with (
        psycopg.connect(database) as conn,
        conn.cursor().copy("COPY crm_weekly FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
    ):
        copy.write(book.to_csv(index=False, date_format="%Y-%m-%d"))
    config = tmp_path / "config"
    shutil.copytree(repo / "config", config)
    sources = yaml.safe_load((config / "sources.yaml").read_text())
    sources["mapping"] = {their: ours for ours, their in theirs.items()}
    sources["sql"]["query"] = 'SELECT * FROM crm_weekly ORDER BY "Snapshot", "Customer ID"'
    (config / "sources.yaml").write_text(yaml.safe_dump(sources))
    monkeypatch.chdir(repo)
    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))
    monkeypatch.setenv("CHURNBOT_VAR", str(tmp_path / "var"))
    monkeypatch.setenv(URL_ENV, database)

    code = main(["train", "--source", "sql"])

    out, err = capsys.readouterr()
    text = " ".join((out + err).split())
    assert code == 0, text
    assert f"Loaded {len(book):,} good rows of {len(book):,}" in text
    assert "Promoted" in text
    assert PASSWORD not in out + err
