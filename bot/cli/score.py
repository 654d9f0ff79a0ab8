"""``churnbot score``: score the book with the champion and publish a snapshot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.table import Table

from bot.cli.common import console, progress_bar, settings_from_environment
from bot.cli.data_source import load_accounts
from bot.publish import RunResult, run_scoring
from bot.settings import Settings
from bot.state import KillSwitch, SnapshotStore, connect
from models.errors import ChurnbotError
from models.registry import Registry


class UntrustedScores(ChurnbotError):
    """The run finished but a health check failed, so the kill switch is on."""


def score_book(
    settings: Settings,
    store: SnapshotStore,
    switch: KillSwitch,
    *,
    data: Path | None = None,
    source: str = "file",
) -> RunResult:
    """One scoring run with a progress bar; shared by `score` and `demo`."""
    with progress_bar("Scoring, explaining and recommending") as progress:
        return run_scoring(
            settings,
            store=store,
            switch=switch,
            registry=Registry(settings.paths.registry),
            load=lambda: load_accounts(settings, data, source)[0],
            now=dt.datetime.now(dt.UTC),
            progress=progress,
        )


def health_table(result: RunResult) -> Table:
    table = Table("check", "result", "detail", title="Health checks")
    for check in result.checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAILED[/]", check.message)
    return table


def report(result: RunResult) -> None:
    console.print(health_table(result))
    if result.snapshot:
        meta = result.snapshot
        console.print(
            f"Published snapshot {meta.snapshot_id}: {meta.n_accounts:,} accounts as of "
            f"{meta.as_of}, model {meta.model_version}"
            + ("" if meta.healthy else " (not trusted: the last good snapshot stays in use)")
        )
    if result.tripped:
        raise UntrustedScores(
            "health checks failed, the kill switch is on and Slack shows the last good data: "
            + "; ".join(result.failures)
        )


@click.command("score")
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Accounts file [default: var/data/accounts.parquet].",
)
@click.option("--source", type=click.Choice(["file", "http"]), default="file", show_default=True)
def command(data: Path | None, source: str) -> None:
    """Score every live account, explain it, pick an action, and publish a snapshot to Redis.

    Runs the health checks (freshness, input validity, drift, model integrity, accuracy
    floor); a failure trips the kill switch and keeps the last known good snapshot in use.
    """
    settings = settings_from_environment()
    redis = connect(settings.env.redis_url)
    result = score_book(settings, SnapshotStore(redis), KillSwitch(redis), data=data, source=source)
    report(result)


def register(group: click.Group) -> None:
    group.add_command(command)
