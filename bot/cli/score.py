"""``churnbot score``: score the book with the champion and publish a snapshot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.table import Table

from bot.cli.common import console, out, progress_bar, settings_from_environment
from bot.cli.data_source import account_data_options, load_accounts
from bot.deps import Deps, build_deps
from bot.digest.sender import build_client
from bot.feedback.shadow import score_shadow
from bot.feedback.track_record import flag_log
from bot.notify import notify_admins
from bot.publish import RunResult, run_scoring
from bot.settings import Settings
from bot.state import KillSwitch, SnapshotStore, connect
from bot.state.flag_log import FlagLog
from models.errors import ChurnbotError
from models.registry import Registry
from models.scoring_rows import ScoringRows


class UntrustedScores(ChurnbotError):
    """The run finished but a health check failed, so the kill switch is on."""


def score_book(
    settings: Settings,
    store: SnapshotStore,
    switch: KillSwitch,
    *,
    flags: FlagLog,
    data: Path | None = None,
    source: str = "file",
) -> RunResult:
    """One scoring run with a progress bar; shared by `score`, `demo` and the worker.
    ``flags`` is the flag log of the same Redis prefix as ``store`` (the track record)."""
    with progress_bar("Scoring, explaining and recommending") as progress:
        return run_scoring(
            settings,
            store=store,
            switch=switch,
            registry=Registry(settings.paths.registry),
            flags=flags,
            load=lambda: load_accounts(settings, data, source, rows=scoring_rows(settings))[0],
            now=dt.datetime.now(dt.UTC),
            progress=progress,
        )


def scoring_rows(settings: Settings) -> ScoringRows:
    """What a scoring run reads of the book: each account's newest row, the rows whose
    outcomes the accuracy check judges and those that tell how long ago an account was
    first seen (the abstain check), not the whole history."""
    spec = settings.spec
    return ScoringRows(spec.horizon_days, history_days=spec.abstain.min_history_days)


def health_table(result: RunResult) -> Table:
    table = Table("check", "result", "detail", title="Health checks")
    for check in result.checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAILED[/]", check.message)
    return table


def tell_admins(deps: Deps, result: RunResult) -> None:
    """A tripped switch changes what every CSM sees: the admins hear it at once, with why.
    And once a run passes every check while a switch the health checks tripped is still on,
    they hear that too: a passing run does not turn it off by itself (a person decides), so
    without a word live scores would stay paused until someone happened to look."""
    paused = result.paused
    if result.tripped:
        text = (
            ":rotating_light: The scoring run failed its health checks, so the kill switch is "
            f"on and everyone sees {result.shown_instead}: " + "; ".join(result.failures)
        )
    elif paused is not None and paused.source == "health_check":
        text = (
            ":large_green_circle: The scoring run passed every health check, but live scores "
            f"are still paused (the health checks tripped the kill switch: {paused.reason}). "
            "Once its cause is fixed, `/churn-admin killswitch off` shows the new scores."
        )
    else:
        return
    env = deps.settings.env
    if env.slack_bot_token is None:
        console.print("[yellow]SLACK_BOT_TOKEN is not set: the admins were not told in Slack[/]")
        return
    notify_admins(deps, build_client(env), text)


def report(result: RunResult) -> None:
    out.print(health_table(result))
    if result.snapshot:
        meta = result.snapshot
        out.print(
            f"Published snapshot {meta.snapshot_id}: {meta.n_accounts:,} accounts as of "
            f"{meta.as_of}, model {meta.model_version}"
            + ("" if meta.healthy else f" (not trusted: Slack shows {result.shown_instead})")
        )
    if result.unlisted_note:
        console.print(f"[yellow]note:[/] {result.unlisted_note}", highlight=False)
    if result.paused_note:
        console.print(f"[yellow]warning:[/] {result.paused_note}", highlight=False)
    if result.tripped:
        raise UntrustedScores(
            f"health checks failed, the kill switch is on and Slack shows {result.shown_instead}: "
            + "; ".join(result.failures)
        )


@click.command("score")
@account_data_options
@click.option(
    "--shadow",
    metavar="VERSION",
    default=None,
    help="Score with model VERSION next to the champion for `/churn-admin shadow`; "
    "publishes nothing, so no CSM sees it.",
)
def command(data: Path | None, source: str, shadow: str | None) -> None:
    """Score every live account, explain it, pick an action, and publish a snapshot to Redis.

    Runs the health checks (freshness, input validity, drift, model integrity, accuracy
    floor); a failure trips the kill switch and keeps the last known good snapshot in use.
    """
    settings = settings_from_environment()
    default = settings.paths.accounts
    if data is None and source == "file" and not default.exists():
        # A forgotten --data is the user's slip, not data that failed to arrive: no run, so
        # no kill switch (the worker, whose file should be there, still trips it).
        raise click.UsageError(
            f"no --data given and the default book {default} does not exist: pass --data "
            "FILE (your export), or --source sql|http; `churnbot sample-data` writes the "
            "default one"
        )
    redis = connect(settings.env.redis_url)
    if shadow is not None:
        loaded, _ = load_accounts(settings, data, source, rows=scoring_rows(settings))
        out.print(score_shadow(settings, redis, loaded, shadow))
        return
    deps = build_deps(settings, client=redis)  # one key prefix for the store, switch and flags
    result = score_book(
        settings, deps.store, deps.switch, flags=flag_log(deps), data=data, source=source
    )
    tell_admins(deps, result)
    report(result)
