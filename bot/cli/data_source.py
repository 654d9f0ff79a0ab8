"""Load account data from a file, the HTTP or the SQL source, quarantine rejects, say what
happened."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click

from bot.cli.common import console, status
from bot.settings import Settings
from models.errors import ConfigError
from models.http_source import HttpAccountSource
from models.loaders import load_table
from models.scoring_rows import ScoringRows
from models.sql_source import SqlAccountSource
from models.validate import LoadResult, RejectLimitError, write_rejects


def account_data_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--data`` and ``--source``: where a command reads account data (train, score, ...)."""
    command = click.option(
        "--source",
        type=click.Choice(["file", "http", "sql"]),
        default="file",
        show_default=True,
        help="Read a file, or the HTTP or SQL source configured in sources.yaml.",
    )(command)
    return click.option(
        "--data",
        # exists=True: a mistyped path is a usage error that changes nothing, not a scoring
        # run whose data is unusable (which trips the kill switch for every CSM).
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Accounts file (.csv, .tsv, .xlsx or .parquet) [default: var/data/accounts.parquet].",
    )(command)


def load_accounts(
    settings: Settings, data: Path | None, source: str, *, rows: ScoringRows | None = None
) -> tuple[LoadResult, str]:
    """Return the validated rows and a name for where they came from; with ``rows``, only
    the rows a scoring run needs (each account's newest and the accuracy window).

    Rejected rows are written to var/rejects/ even when there are too many of them and the
    run stops, so the user has the file to fix.
    """
    read: Callable[[], LoadResult]
    # A live source's export_date is the day it is read (a file's, the day it was written).
    sources = settings.sources.dated(dt.datetime.now(dt.UTC).date())
    if source == "http":
        if settings.sources.http is None:
            raise ConfigError(f"{settings.sources.file}: http: no HTTP source configured")
        http = HttpAccountSource(
            settings.sources.http, environ=os.environ, source_file=settings.sources.file
        )
        name, stem = http.label, "http-source"
        read = partial(http.load, settings.schema, sources, rows=rows)
    elif source == "sql":
        sql = SqlAccountSource(sources, environ=os.environ)
        name, stem = sql.label, "sql-source"
        read = partial(sql.load, settings.schema, rows=rows)
    else:
        path = data or settings.paths.accounts
        name, stem = str(path), path.name.split(".")[0]
        read = partial(load_table, path, settings.schema, settings.sources, rows=rows)
    rejects_path = settings.paths.rejects / f"{stem}.rejects.csv"
    try:
        with status(f"Reading and checking {name}"):  # a spinner: a large file takes a while
            result = read()
    except RejectLimitError as exc:
        write_rejects(exc.result, rejects_path)
        console.print(f"[red]Rejected rows quarantined to {rejects_path}[/]")
        raise
    report_load(result, rejects_path)
    return result, name


def report_load(result: LoadResult, rejects_path: Path) -> None:
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if result.rejects:
        write_rejects(result, rejects_path)
        console.print(
            f"[yellow]{len(result.rejected_rows):,} of {result.total_rows:,} rows rejected "
            f"({result.reject_share:.1%}); quarantined to {rejects_path}[/]"
        )
        console.print(result.describe_rejects(limit=5), markup=False, highlight=False)
    console.print(f"Loaded {len(result.frame):,} good rows of {result.total_rows:,}")
    if result.source_rows is not None:
        console.print(
            f"(read {result.total_rows:,} of the source's {result.source_rows:,} rows, those "
            "scoring needs: each live account's newest and the rows the accuracy and history "
            "checks read)"
        )
