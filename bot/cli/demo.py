"""``churnbot demo``: the whole chain on bundled sample data, no Slack and no Redis needed.

Generates the sample book on first run (deterministic), trains and evaluates a model, scores
the book with reasons and actions, checks the reasons against the recorded true causes, and
shows the top at-risk accounts as a CSM would see them.
"""

from __future__ import annotations

import datetime as dt

import click
import pandas as pd

from bot.cli.common import console, settings_from_environment
from bot.cli.data_source import load_accounts
from bot.cli.sample_data import generate_with_progress, last_monday, write_sample
from bot.cli.score import health_table, score_book
from bot.cli.train import print_outcome, run_training
from bot.publish import build_scorer
from bot.settings import Settings
from bot.state import KillSwitch, SnapshotStore, connect, serving_snapshot
from bot.terminal import render_digest
from models.pipeline import TrainOutcome
from models.registry import Registry
from models.truth import measure_scorer

DEMO_ACCOUNTS = 5000
DEMO_WEEKS = 52
DEMO_SEED = 7


def ensure_sample(settings: Settings) -> None:
    path = settings.paths.accounts
    if path.exists():
        console.print(f"Using the sample book in {path}")
        return
    end = last_monday(dt.date.today())
    write_sample(generate_with_progress(DEMO_ACCOUNTS, DEMO_WEEKS, DEMO_SEED, end), path)
    console.print(f"Wrote the sample book to {path}")


def report_truth(settings: Settings, outcome: TrainOutcome) -> None:
    """How often the top reasons name the recorded cause, on the evaluation weeks."""
    if not settings.paths.truth.exists():
        return
    scorer = build_scorer(settings, Registry(settings.paths.registry).load(outcome.card.version))
    truth = pd.read_csv(settings.paths.truth)
    check = measure_scorer(scorer, outcome.result.split.evaluate, truth, settings.spec.horizon_days)
    console.print(
        f"Explanations: the recorded cause is among the top {settings.reasons.top_reasons} "
        f"reasons for {check.rate:.1%} of the {check.flagged_churners:,} at-risk rows that "
        f"really churned ({check.left_out_unexplained} with no visible cause left out)"
    )


@click.command("demo")
@click.option("--top", default=5, show_default=True, type=click.IntRange(1, 50))
def command(top: int) -> None:
    """Generate (or reuse) the sample book, train, score, and show the top at-risk accounts."""
    settings = settings_from_environment()
    ensure_sample(settings)
    loaded, name = load_accounts(settings, None, "file")
    outcome = run_training(settings, loaded, name, None)
    print_outcome(outcome, settings)
    report_truth(settings, outcome)

    redis = connect(settings.env.redis_url)
    store, switch = SnapshotStore(redis), KillSwitch(redis)
    result = score_book(settings, store, switch)
    console.print(health_table(result))
    meta, state = serving_snapshot(store, switch)
    if meta is None:
        console.print("[red]No trustworthy scores yet: " + "; ".join(result.failures) + "[/]")
        return
    banner = None
    if state.on:
        banner = (
            f"Using last week's data (scores as of {meta.as_of}) — live scores are paused: "
            f"{state.reason}"
        )
    cards = store.top(top, snapshot_id=meta.snapshot_id, min_risk=settings.spec.risk_bands.medium)
    console.print(
        render_digest(
            f"Top {len(cards)} accounts at risk of churning in the next "
            f"{settings.spec.horizon_days} days",
            f"Data as of {meta.as_of} · model {meta.model_version} · {meta.n_accounts:,} accounts",
            cards,
            banner,
        )
    )


def register(group: click.Group) -> None:
    group.add_command(command)
