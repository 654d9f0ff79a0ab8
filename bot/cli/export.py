"""``churnbot export scores``: the served snapshot as a table for BI dashboards and CRM sync.

The scores leave Slack as one row per account (id, name, owner, segment, risk, band, change,
reasons, action, model version, as-of date, snapshot id) in a Parquet or CSV file, or a SQL
table through SQLAlchemy. What is exported is what CSMs are shown: the latest snapshot, or the
last good one while the kill switch is on.

Cards are read with ``SnapshotStore.iter_cards`` and written a chunk at a time, so memory stays
flat in the size of the book. A file is written next to its destination and renamed into
place; a table is replaced (or appended to) inside one transaction; either way a reader never
sees half an export. The database URL carries a password, so it comes from an environment
variable (``--url-env``) and is shown only with the password masked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import click
import pandas as pd
from sqlalchemy import Date, Float, Text, create_engine, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from bot.cli.common import out, progress_bar, settings_from_environment
from bot.state import KillSwitch, SnapshotStore, connect, serving_snapshot
from bot.state.snapshots import SnapshotMeta
from bot.state.store import is_embedded
from models.errors import ChurnbotError, ConfigError
from models.sql_source import DRIVER_FOR, URL_EXAMPLE

DEFAULT_URL_ENV = "CHURNBOT_EXPORT_URL"
DEFAULT_TABLE = "churn_scores"
#: Rows per write: a few MB of text at most, whatever the size of the book.
CHUNK_ROWS = 10_000
#: The exported columns, in order, and their SQL types.
SQL_TYPES = {
    "account_id": Text(),
    "account_name": Text(),
    "owner": Text(),
    "segment": Text(),
    "risk": Float(),
    "band": Text(),
    "change": Float(),
    "reasons": Text(),
    "action": Text(),
    "not_scored": Text(),
    "model_version": Text(),
    "as_of": Date(),
    "snapshot_id": Text(),
}
COLUMNS = tuple(SQL_TYPES)


class ExportError(ChurnbotError):
    """The scores could not be exported as asked."""


def score_row(card: Mapping[str, Any], snapshot_id: str) -> dict[str, Any]:
    """One account's exported row. Reasons are joined with "; " (a BI tool shows one cell);
    ``not_scored`` says what is missing for an account shown as "not enough data to score",
    whose risk and band are then left empty rather than passed off as a score."""
    abstain = card.get("abstain")
    return {
        "account_id": card["account_id"],
        "account_name": card["account_name"],
        "owner": card["owner"],
        "segment": card.get("segment") or None,
        "risk": None if abstain else float(card["risk"]),
        "band": None if abstain else card["band"],
        "change": card.get("change"),
        "reasons": "; ".join(reason["text"] for reason in card.get("reasons") or ()),
        "action": card["action"]["action"],
        "not_scored": "; ".join(abstain["missing"]) if abstain else None,
        "model_version": card["model_version"],
        "as_of": pd.Timestamp(card["as_of"]).date(),
        "snapshot_id": snapshot_id,
    }


def frames(cards: Iterable[Mapping[str, Any]], snapshot_id: str) -> Iterator[pd.DataFrame]:
    """The rows in chunks of :data:`CHUNK_ROWS`, typed alike in every chunk."""
    iterator = iter(cards)
    while chunk := list(islice(iterator, CHUNK_ROWS)):
        frame = pd.DataFrame([score_row(card, snapshot_id) for card in chunk], columns=COLUMNS)
        yield frame.astype({"risk": "float64", "change": "float64"})


def write_file(chunks: Iterable[pd.DataFrame], path: Path) -> int:
    """Write Parquet or CSV (by the suffix) through a staging file renamed into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    rows = 0
    try:
        if path.suffix == ".parquet":
            writer = None
            try:
                for frame in chunks:
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(staging, table.schema)
                    writer.write_table(table.cast(writer.schema))
                    rows += len(frame)
            finally:
                if writer is not None:
                    writer.close()
        else:
            with staging.open("w", encoding="utf-8", newline="") as handle:
                pd.DataFrame(columns=COLUMNS).to_csv(handle, index=False)
                for frame in chunks:
                    frame.to_csv(handle, index=False, header=False)
                    rows += len(frame)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return rows


def database_url(target: str, url_env: str, environ: Mapping[str, str]) -> URL:
    """The database to write to: ``--to sql`` reads it from ``$url_env``; a URL given on the
    command line is refused if it carries a password (shell history and ``ps`` show it)."""
    if target == "sql":
        text = environ.get(url_env, "").strip()
        if not text:
            raise ConfigError(
                f"--to sql needs a database URL in the environment variable ${url_env}, which "
                f"is not set (e.g. {URL_EXAMPLE}; choose another variable with --url-env)"
            )
        where = f"${url_env}"
    else:
        text, where = target, "--to"
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError(
            f"{where} does not hold a database URL (expected e.g. {URL_EXAMPLE})"
        ) from None
    if where == "--to" and url.password:
        raise ConfigError(
            f"--to carries a password, which the shell history and the process list would show: "
            f"put the URL in ${url_env} and use --to sql"
        )
    return url.set(drivername=DRIVER_FOR.get(url.drivername, url.drivername))


def write_sql(
    chunks: Iterable[pd.DataFrame], url: URL, table: str, *, replace: bool, secrets: list[str]
) -> int:
    """Write the rows to ``table`` in one transaction: a reader sees the old rows or all the
    new ones. ``replace`` drops the table's rows first; otherwise they are appended."""
    label = url.render_as_string(hide_password=True)
    try:
        engine = create_engine(url)
    except (NoSuchModuleError, ImportError):
        raise ExportError(
            f"no database driver for '{url.drivername}' is installed (churnbot ships "
            f"PostgreSQL: {URL_EXAMPLE})"
        ) from None
    rows = 0
    try:
        with engine.begin() as connection:
            for number, frame in enumerate(chunks):
                frame.to_sql(
                    table,
                    connection,
                    if_exists="replace" if replace and number == 0 else "append",
                    index=False,
                    dtype=SQL_TYPES,
                )
                rows += len(frame)
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        for secret in secrets:
            reason = reason.replace(secret, "***")
        raise ExportError(f"cannot write table {table} at {label}: {reason}") from None
    finally:
        engine.dispose()
    return rows


def served(store: SnapshotStore, switch: KillSwitch, *, embedded: bool = False) -> SnapshotMeta:
    """The snapshot CSMs are shown: the latest, or the last good one while the switch is on.
    ``embedded``: the store lives in this process only (no REDIS_URL), so an earlier
    command's scores are not in it."""
    meta, state = serving_snapshot(store, switch)
    if meta is None:
        if state.on:
            raise ExportError(
                f"nothing to export: the kill switch is on ({state.reason}) and no healthy "
                "snapshot was published yet"
            )
        hint = (
            "; without REDIS_URL each command keeps its scores in its own process, so set "
            "REDIS_URL for `churnbot score` and `churnbot export` to share them"
            if embedded
            else ""
        )
        raise ExportError(
            f"nothing to export: no scores were published yet (run churnbot score){hint}"
        )
    return meta


@click.group("export")
def group() -> None:
    """Send the scores out of Slack: to a file or a SQL table, for BI and CRM sync."""


@group.command("scores")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="FILE.parquet|FILE.csv|sql|URL",
    help="A .parquet or .csv file; `sql` for the database in $CHURNBOT_EXPORT_URL (see "
    "--url-env); or a database URL without a password.",
)
@click.option(
    "--url-env",
    default=DEFAULT_URL_ENV,
    show_default=True,
    help="The environment variable holding the database URL for --to sql.",
)
@click.option("--table", default=DEFAULT_TABLE, show_default=True, help="The SQL table.")
@click.option(
    "--append",
    is_flag=True,
    help="Add the rows to the SQL table instead of replacing its contents (keeps history; "
    "each row carries its snapshot id and as-of date).",
)
def scores(target: str, url_env: str, table: str, append: bool) -> None:
    """Write the served snapshot (one row per account: id, name, owner, segment, risk, band,
    change, reasons, action, model version, as-of date) to Parquet, CSV or a SQL table."""
    settings = settings_from_environment()
    redis = connect(settings.env.redis_url)
    store = SnapshotStore(redis)
    meta = served(store, KillSwitch(redis), embedded=is_embedded(redis))
    url = None
    if target != "sql" and "://" not in target:
        path = Path(target)
        if path.suffix not in (".parquet", ".csv"):
            raise ConfigError(
                f"--to {target}: write a .parquet or .csv file, `sql`, or a database URL"
            )
    else:
        url = database_url(target, url_env, os.environ)
    with progress_bar(f"Exporting snapshot {meta.snapshot_id}") as progress:

        def counted() -> Iterator[pd.DataFrame]:
            done = 0
            for frame in frames(store.iter_cards(snapshot_id=meta.snapshot_id), meta.snapshot_id):
                yield frame
                done += len(frame)
                progress(done, meta.n_accounts)

        if url is None:
            rows = write_file(counted(), path)
            where = str(path)
        else:
            secrets = [s for s in (url.password, os.environ.get(url_env)) if s]
            rows = write_sql(counted(), url, table, replace=not append, secrets=secrets)
            where = f"table {table} at {url.render_as_string(hide_password=True)}"
    out.print(
        f"Exported {rows:,} scores of snapshot {meta.snapshot_id} (as of {meta.as_of}, model "
        f"{meta.model_version}) to {where}.",
        highlight=False,
        soft_wrap=True,
    )
