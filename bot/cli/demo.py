"""``churnbot demo``: the whole chain on bundled sample data, no Slack and no Redis needed.

Generates the sample book on first run (deterministic), trains and evaluates a model, scores
the book with reasons and actions, checks the reasons against the recorded true causes, and
shows the top at-risk accounts as a CSM would see them in a digest, then the same digest as it
looks while the kill switch is on.

The demo never touches a configured store: its scores are synthetic, and writing them into the
Redis named by ``REDIS_URL`` would replace a team's live scores. It always runs on the embedded
in-process store and says so on stderr. What it shows goes to stdout; progress to stderr.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import click
import pandas as pd
from pydantic import SecretStr
from redis import Redis
from rich.console import RenderableType
from rich.text import Text

from bot.app import build_app
from bot.cli.common import console, out, settings_from_environment
from bot.cli.data_source import load_accounts
from bot.cli.sample_data import generate_with_progress, last_monday, write_sample
from bot.cli.score import health_table, score_book
from bot.cli.train import print_outcome, run_training
from bot.deps import build_deps
from bot.digest.channels import DigestConfig
from bot.digest.compose import select_cards
from bot.digest.poster import build_poster
from bot.digest.sender import DigestSender, build_client
from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.feedback.drain import running_drain
from bot.loopback import LoopbackServer
from bot.publish import build_scorer
from bot.serving import Serving, current
from bot.settings import Settings
from bot.state import KillSwitch, SnapshotStore
from bot.state.flag_log import FlagLog
from bot.state.store import embedded
from bot.terminal import blocks_as_text, render_digest
from bot.web import build_wsgi
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
    out.print(
        f"Explanations: the recorded cause is among the top {settings.reasons.top_reasons} "
        f"reasons for {check.rate:.1%} of the {check.flagged_churners:,} at-risk rows that "
        f"really churned ({check.left_out_unexplained} with no visible cause left out)"
    )


def demo_digest(settings: Settings, top: int) -> DigestConfig:
    """A digest of the whole book (every segment), as a CS lead's channel would get it."""
    return DigestConfig(
        name="demo",
        channel="C0DEMO0001",
        title=f"Top {top} accounts at risk of churning in the next "
        f"{settings.spec.horizon_days} days",
        segments=settings.segments,
        schedule="0 9 * * mon",
        timezone="UTC",
        max_accounts=top,
        min_risk=settings.spec.risk_bands.medium,
    )


def render_demo_digest(
    store: SnapshotStore, digest: DigestConfig, serving: Serving
) -> RenderableType:
    """The digest in the terminal, with what the Slack digest shows: banner and freshness."""
    meta = serving.meta
    if meta is None:
        return Text(serving.unavailable or "No scores to show", style="bold red")
    cards = select_cards(store, digest, meta.snapshot_id)
    freshness = f"{serving.freshness} · model {meta.model_version} · {meta.n_accounts:,} accounts"
    return render_digest(digest.heading, freshness, cards, serving.banner)


DEMO_SECRET = "demo-signing-secret"


def demo_settings(settings: Settings) -> Settings:
    """``settings`` without ``REDIS_URL``, so nothing the demo runs can reach the configured
    Redis; says so when one was configured."""
    if settings.env.redis_url is not None:
        console.print(
            "REDIS_URL is set, but the demo never touches a configured store: its synthetic "
            "scores would replace the live ones. It uses its own embedded in-process store."
        )
    else:
        console.print("The demo uses its own embedded in-process store; nothing persists.")
    return replace(settings, env=settings.env.model_copy(update={"redis_url": None}))


def _blocks(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks = body.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def show_in_slack(settings: Settings, redis: Redis, digest: DigestConfig) -> None:
    """Run the real app and digest poster against the local Web API emulator, and print what
    they sent: the same code path as production, with Slack swapped for the emulator."""
    with SlackEmulator() as emulator:
        env = settings.env.model_copy(
            update={
                "slack_signing_secret": SecretStr(DEMO_SECRET),
                "slack_bot_token": SecretStr(emulator.token),
                "slack_api_url": emulator.base_url,
            }
        )
        deps = build_deps(replace(settings, env=env), client=redis)
        top = deps.store.top(1)
        # No worker here: an in-process drain redraws messages after feedback clicks.
        with LoopbackServer(build_wsgi(build_app(deps), deps)) as server, running_drain(deps):
            if top:
                name = top[0]["account_name"]
                answer = SlackSender(server.url, DEMO_SECRET).command("/churn", name).json()
                out.rule(f"Slack: the app's answer to a signed `/churn {name}`")
                out.print(blocks_as_text(answer["blocks"]), markup=False, highlight=False)
            outcome = build_poster(deps, DigestSender(build_client(env))).run_now(
                digest, who="demo"
            )
            messages = emulator.messages(digest.channel)
            out.rule(
                f"Slack: the digest reached chat.postMessage in {digest.channel} as "
                f"{len(messages)} message(s) ({outcome.status})"
            )
            for message in messages:
                out.print(blocks_as_text(_blocks(message.body)), markup=False, highlight=False)


@click.command("demo")
@click.option("--top", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option(
    "--slack",
    is_flag=True,
    help="Also run the real Slack app and digest poster against the local Web API emulator "
    "and print what they send.",
)
def command(top: int, slack: bool) -> None:
    """Generate (or reuse) the sample book, train, score, and show the digest (then the same
    digest with the kill switch on)."""
    settings = demo_settings(settings_from_environment())
    ensure_sample(settings)
    loaded, name = load_accounts(settings, None, "file")
    outcome = run_training(settings, loaded, name, None)
    print_outcome(outcome, settings)
    report_truth(settings, outcome)

    redis = embedded()
    store, switch = SnapshotStore(redis), KillSwitch(redis)
    result = score_book(settings, store, switch, flags=FlagLog(redis))  # the default prefix
    out.print(health_table(result))
    digest = demo_digest(settings, top)
    now = dt.datetime.now(dt.UTC)
    out.print(render_demo_digest(store, digest, current(store, switch, settings.spec, now)))

    # A switch of its own, so the scores shown above stay live for the Slack part below.
    what_if = KillSwitch(redis, prefix="demo-what-if")
    what_if.trip(
        "an admin paused live scores to check a suspicious CRM import", who="demo", source="admin"
    )
    out.rule("The same digest while the kill switch is on")
    out.print(render_demo_digest(store, digest, current(store, what_if, settings.spec, now)))
    if slack:
        show_in_slack(settings, redis, digest)
