"""Load account data from a file or the HTTP source, report rejects, and say what happened."""

from __future__ import annotations

import os
from pathlib import Path

from models.http_source import HttpAccountSource
from models.loaders import load_table
from models.validate import LoadResult, write_rejects

from bot.cli.common import console
from bot.settings import Settings
from models.errors import ConfigError


def load_accounts(settings: Settings, data: Path | None, source: str) -> tuple[LoadResult, str]:
    """Return the validated rows and a name for where they came from."""
    if source == "http":
        if settings.sources.http is None:
            raise ConfigError(
                f"{settings.env.config_dir / 'sources.yaml'}: http: no HTTP source configured"
            )
        http = HttpAccountSource(settings.sources.http, environ=os.environ)
        result, name = http.load(settings.schema, settings.sources), settings.sources.http.url
    else:
        path = data or settings.paths.accounts
        result, name = load_table(path, settings.schema, settings.sources), str(path)
    report_load(result, settings, Path(name).stem)
    return result, name


def report_load(result: LoadResult, settings: Settings, stem: str) -> None:
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if result.rejects:
        path = settings.paths.rejects / f"{stem}.rejects.csv"
        write_rejects(result, path)
        rows = len(result.rejected_rows)
        console.print(
            f"[yellow]{rows:,} of {result.total_rows:,} rows rejected "
            f"({result.reject_share:.1%}); quarantined to {path}[/]"
        )
        for reject in result.rejects[:5]:
            column = reject.column or "(row)"
            console.print(f"  record {reject.record}, {column}: {reject.reason}")
    console.print(f"Loaded {len(result.frame):,} good rows of {result.total_rows:,}")
