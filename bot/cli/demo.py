"""``churnbot demo``: the whole chain on bundled sample data, no Slack and no Redis needed.

Generates the sample book on first run (deterministic), trains and evaluates a model, then
shows the top at-risk accounts as a CSM would see them.
"""

from __future__ import annotations

import datetime as dt

import click
import pandas as pd
from rich.table import Table

from bot.cli.common import console, progress_bar, settings_from_environment
from bot.cli.data_source import load_accounts
from bot.cli.sample_data import generate_with_progress, last_monday, write_sample
from bot.cli.train import print_outcome, run_training
from bot.settings import Settings
from models.registry import Registry
from models.scoring import latest_rows, predict_risk

DEMO_ACCOUNTS = 5000
DEMO_WEEKS = 52
DEMO_SEED = 7


def ensure_sample(settings: Settings) -> None:
    path = settings.paths.accounts
    if path.exists():
        console.print(f"Using the sample book in {path}")
        return
    data = generate_with_progress(
        DEMO_ACCOUNTS, DEMO_WEEKS, DEMO_SEED, last_monday(dt.date.today())
    )
    write_sample(data, path)
    console.print(f"Wrote the sample book to {path}")


def top_accounts(settings: Settings, frame: pd.DataFrame, top: int) -> pd.DataFrame:
    loaded = Registry(settings.paths.registry).load()
    latest = latest_rows(frame, settings.schema)
    with progress_bar("Scoring the book") as progress:
        latest = latest.assign(risk=predict_risk(loaded.estimator, latest, progress=progress))
    return latest.nlargest(top, "risk")


def render_top(settings: Settings, rows: pd.DataFrame) -> Table:
    schema, bands = settings.schema, settings.spec.risk_bands
    as_of = rows[schema.date_column].max().date() if len(rows) else "-"
    table = Table(
        title=f"Accounts most at risk of churning within {settings.spec.horizon_days} "
        f"days (data as of {as_of})"
    )
    for column in ("account", "owner", "segment", "ARR", "risk", "band", "renewal in"):
        table.add_column(column)
    for row in rows.itertuples(index=False):
        record = row._asdict()
        renewal = (record["renewal_date"] - record[schema.date_column]).days
        table.add_row(
            str(record[schema.name_column]),
            str(record[schema.owner_column]),
            str(record["segment"]),
            f"${record['arr']:,.0f}",
            f"{record['risk']:.0%}",
            bands.band(record["risk"]),
            f"{renewal} days",
        )
    return table


@click.command("demo")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 100))
def command(top: int) -> None:
    """Generate (or reuse) the sample book, train, evaluate and show the top at-risk accounts."""
    settings = settings_from_environment()
    ensure_sample(settings)
    loaded, name = load_accounts(settings, None, "file")
    outcome = run_training(settings, loaded, name, None)
    print_outcome(outcome, settings)
    console.print(render_top(settings, top_accounts(settings, loaded.frame, top)))


def register(group: click.Group) -> None:
    group.add_command(command)
