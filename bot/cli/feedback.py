"""``churnbot feedback export|forget|outcomes``: the feedback stream for analysts and admins."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import click
import redis

from bot.cli.common import out, settings_from_environment
from bot.cli.data_source import account_data_options, load_accounts
from bot.feedback.events import events_table
from bot.feedback.export import Format, export_events
from bot.feedback.outcomes import outcomes_from_accounts
from bot.feedback.store import FeedbackStore
from bot.settings import Settings
from bot.slack_config import SLACK_USER_ID
from bot.state import connect
from bot.state.audit import AuditLog
from models.errors import ConfigError


def _store(settings: Settings, client: redis.Redis | None = None) -> FeedbackStore:
    return FeedbackStore(client or connect(settings.env.redis_url), settings.feedback)


@click.group("feedback")
def group() -> None:
    """Export, erase and enrich the CSMs' feedback stored in Redis."""


@group.command("export")
@click.option(
    "--out",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write to [default: var/exports/].",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(["parquet", "jsonl"]),
    multiple=True,
    help="Parquet, JSON Lines, or both (repeat the option) [default: both].",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only events recorded on or after this day (UTC).",
)
def export(folder: Path | None, formats: tuple[Format, ...], since: dt.datetime | None) -> None:
    """Write every stored feedback event (one row each) as Parquet and JSON Lines.

    Opted-out and forgotten users' events have no user; free text was redacted before it was
    stored. Events past the retention window are trimmed first, so none leave by export.
    """
    settings = settings_from_environment()
    store = _store(settings)
    store.trim()
    start = since.replace(tzinfo=dt.UTC) if since else None
    frame = events_table(store.events(since=start))
    paths = export_events(
        frame, folder or settings.env.var_dir / "exports", formats or ("parquet", "jsonl")
    )
    for path in paths:
        out.print(f"Wrote {len(frame):,} events to {path}")


@group.command("forget")
@click.argument("user")
def forget(user: str) -> None:
    """Erase the Slack user USER's identity from every stored feedback event.

    Their answers stay (anonymous, consent "forgotten") so the figures and the model keep
    them; the stream is rewritten so no copy of the id remains in it. The audit log records
    that a forget ran and how many events it changed, not whose.
    """
    if not re.fullmatch(SLACK_USER_ID, user):
        raise ConfigError(
            f"USER must be a Slack user id such as U0123ABCD (find it in the user's Slack "
            f"profile, under More > Copy member ID). Got {user!r} instead."
        )
    settings = settings_from_environment()
    client = connect(settings.env.redis_url)
    count = _store(settings, client).forget(user)
    AuditLog(client).record(who="cli", what="feedback forget", detail={"events": count})
    out.print(f"Erased the user from {count:,} feedback events.")


@group.command("outcomes")
@account_data_options
def outcomes(data: Path | None, source: str) -> None:
    """Store each account's churn date and last-seen date from the account data.

    `/churn-admin stats` and `/churn-admin shadow` use them for the precision of flagged
    accounts once outcomes are known; run it after each data load.
    """
    settings = settings_from_environment()
    loaded, _ = load_accounts(settings, data, source)
    known = outcomes_from_accounts(loaded.frame, settings.schema)
    _store(settings).set_outcomes(known)
    churned = sum(1 for outcome in known.values() if outcome.churn_date)
    out.print(f"Stored the outcomes of {len(known):,} accounts ({churned:,} churned).")
