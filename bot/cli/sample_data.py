"""``churnbot sample-data``: write a synthetic account book where train will find it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import pandas as pd

from bot.cli.common import out, progress_bar, settings_from_environment
from models.generator import SampleData, generate_accounts


def last_monday(today: dt.date) -> dt.date:
    """Weekly snapshots are dated Mondays; the newest one is the last Monday up to today."""
    return today - dt.timedelta(days=today.weekday())


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet by suffix, through a temp file so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(tmp, index=False, date_format="%Y-%m-%d")
    else:
        raise click.BadParameter(f"{path}: use a .parquet or .csv file name", param_hint="--out")
    tmp.replace(path)


def write_sample(data: SampleData, accounts_path: Path) -> Path:
    """Write the accounts table and, beside it, the recorded true churn causes."""
    write_table(data.accounts, accounts_path)
    truth_path = accounts_path.with_name("truth.csv")
    write_table(data.truth, truth_path)
    return truth_path


def generate_with_progress(accounts: int, weeks: int, seed: int, end: dt.date) -> SampleData:
    with progress_bar(f"Generating {accounts:,} accounts x {weeks} weeks") as progress:
        return generate_accounts(accounts, weeks, seed=seed, end=end, progress=progress)


@click.command("sample-data")
@click.option("--accounts", "n_accounts", default=5000, show_default=True, type=click.IntRange(1))
@click.option("--weeks", default=52, show_default=True, type=click.IntRange(20, 520))
@click.option("--seed", default=7, show_default=True, help="Same seed, same data.")
@click.option(
    "--end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Date of the newest weekly snapshot [default: the last Monday up to today].",
)
@click.option(
    "--out",
    "accounts_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Accounts file (.parquet or .csv) [default: var/data/accounts.parquet].",
)
def command(
    n_accounts: int, weeks: int, seed: int, end: dt.datetime | None, accounts_path: Path | None
) -> None:
    """Generate a realistic synthetic account book with a causal churn story.

    Writes weekly snapshots (one row per account and week) and truth.csv, the true cause(s)
    of every churn, so explanations can be checked against the truth.
    """
    settings = settings_from_environment()
    path = accounts_path or settings.paths.accounts
    end_date = end.date() if end else last_monday(dt.date.today())
    data = generate_with_progress(n_accounts, weeks, seed, end_date)
    truth_path = write_sample(data, path)
    churned = len(data.truth)
    out.print(
        f"Wrote {len(data.accounts):,} rows ({n_accounts:,} accounts, {weeks} weeks to "
        f"{end_date}) to {path}; {churned:,} churns with their causes in {truth_path}"
    )
