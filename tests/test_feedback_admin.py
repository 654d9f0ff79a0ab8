"""`/churn-admin stats|shadow|promote` (through handle_admin) and the weekly summary, on the
real Redis and a real model registry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import pandas as pd
import pytest
from slack_sdk import WebClient

from bot.app import build_app
from bot.deps import Deps
from bot.emulator.sender import SlackSender
from bot.feedback import feedback_store
from bot.feedback.admin_commands import handle_admin
from bot.feedback.events import Correction, FeedbackEvent, Kind
from bot.feedback.outcomes import Outcome
from bot.feedback.shadow import ShadowStore, run_shadow
from bot.feedback.summary import weekly_summary
from bot.loopback import LoopbackServer
from bot.metrics import Metrics
from bot.render.feedback import FeedbackRef
from bot.settings import load_settings
from bot.web import build_wsgi
from models.generator import generate_accounts
from models.registry import Registry
from tests import sample_config
from tests.planted_save_rate import SHOWN_WEEK, plant_save_rate
from tests.slack_harness import ADMIN, CONFIG, CSM, NOW, SECRET, Harness

LAST_WEEK = NOW - dt.timedelta(days=6)  # Tuesday of the week before NOW's


@dataclasses.dataclass(frozen=True)
class Models:
    var: Path
    book: pd.DataFrame
    champion: str
    candidate: str


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """A registry with a champion and a candidate trained on different slices of a book."""
    var = tmp_path_factory.mktemp("var")
    book = generate_accounts(800, 48, seed=5, end=dt.date(2026, 11, 16)).accounts
    registry = Registry(var / "registry")
    champion = sample_config.train(book, registry, promote=True).card.version
    half = book[book["account_id"].isin(book["account_id"].unique()[::2])]
    candidate = sample_config.train(half, registry, promote=False).card.version
    return Models(var, book, champion, candidate)


@pytest.fixture
def deps(harness: Harness, models: Models) -> Deps:
    """The harness's Deps, with settings whose var/ holds the registry above."""
    settings = load_settings(
        {
            "CHURNBOT_CONFIG": str(CONFIG),
            "CHURNBOT_VAR": str(models.var),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": harness.emulator.token,
            "SLACK_API_URL": harness.emulator.base_url,
        }
    )
    return dataclasses.replace(harness.deps, settings=settings)


def record(deps: Deps, kind: Kind, account: str, user: str, at: dt.datetime, **extra) -> None:
    ref = FeedbackRef(account, "snap-1", "m1", 0.8, "usage-drop", "digest")
    event = FeedbackEvent(uuid.uuid4().hex, uuid.uuid4().hex, kind, ref, at, "smb", "", **extra)
    feedback_store(deps).record(event, user=user)


def test_words_that_are_not_ours_are_left_to_the_caller(deps: Deps) -> None:
    assert handle_admin(deps, ADMIN, ["killswitch", "on", "x"]) is None
    assert handle_admin(deps, ADMIN, []) is None
    assert "promote VERSION" in (handle_admin(deps, ADMIN, ["promote"]) or "")


def test_stats_show_weeks_segments_and_actions(deps: Deps) -> None:
    record(deps, "helpful", "ACC-1", CSM, NOW)
    record(deps, "not_helpful", "ACC-2", CSM, NOW)
    record(deps, "helpful", "ACC-3", "U0OMAR0001", LAST_WEEK)
    text = handle_admin(deps, ADMIN, ["stats"])
    assert text is not None
    assert "• *2026-11-23* · 2 answers on 2 accounts · adoption 1/1 100%" in text
    assert "acceptance 1/2 50%" in text
    assert "• *2026-11-16* · 1 answer on 1 account · adoption 0/1 0%" in text
    assert "• smb: adoption" in text
    assert "• `usage-drop`: acceptance 1/2 50%" in text


def test_weekly_summary_goes_to_the_admins_once(deps: Deps, harness: Harness) -> None:
    record(deps, "helpful", "ACC-1", CSM, LAST_WEEK)
    record(deps, "correction", "ACC-2", CSM, LAST_WEEK, correction=Correction("churned"))
    feedback_store(deps).set_outcomes({"ACC-2": Outcome(dt.date(2026, 11, 20), LAST_WEEK.date())})
    client = WebClient(token=harness.emulator.token, base_url=harness.emulator.base_url)
    weekly_summary(deps, client)
    weekly_summary(deps, client)  # a second scheduler, or a rerun: nothing more is sent
    [sent] = harness.emulator.calls("chat.postMessage")
    assert sent.body["channel"] == ADMIN
    text = sent.body["text"]
    assert "*churnbot feedback, week of 2026-11-16*" in text
    assert "2 answers on 2 accounts" in text
    assert "Adoption: 1 of 1 target CSMs answered" in text
    assert "corrections 1/2 50%" in text
    assert "precision of flagged 1/1 100%" in text


def test_shadow_report_and_promote(deps: Deps, models: Models) -> None:
    assert "No shadow run yet" in (handle_admin(deps, ADMIN, ["shadow"]) or "")
    registry = Registry(models.var / "registry")
    record_, risks = run_shadow(
        deps.settings, registry, models.book, models.candidate, now=NOW, top_n=20
    )
    ShadowStore(deps.redis, prefix=deps.prefix).save(record_, risks)
    text = handle_admin(deps, ADMIN, ["shadow"])
    assert text is not None
    assert f"candidate `{models.candidate}` vs champion `{models.champion}`" in text
    assert f"Top 20: {record_.live.overlap} in common" in text
    assert "rank correlation 0.9" in text
    assert "Where outcomes are known" in text
    assert "champion: ROC AUC 0." in text
    assert "Live top 20, outcomes known so far: champion 0/0 churned" in text

    refused = handle_admin(deps, ADMIN, ["promote", "20990101-0000000000"])
    assert refused is not None
    assert refused.startswith("Not promoted: unknown model version")
    assert registry.champion_version() == models.champion
    done = handle_admin(deps, ADMIN, ["promote", models.candidate])
    assert done == (
        f"Champion is now `{models.candidate}` (was `{models.champion}`). CSMs see its scores "
        "after the next scoring run (`churnbot score`)."
    )
    assert registry.champion_version() == models.candidate
    latest, failed = deps.audit.recent(2)
    assert (latest.who, latest.what, latest.why, latest.outcome) == (
        ADMIN,
        "promote",
        models.candidate,
        "done",
    )
    assert latest.detail == {"previous": models.champion}
    assert failed.outcome == "failed"
    registry.promote(models.champion)


# --- save rates and release records, through a signed `/churn-admin stats` --------------------

PREVIOUS = "20261001-0123456789"  # answered by CSMs, no longer in the registry


def seed_save_rates(deps: Deps, champion: str) -> None:
    """80 accounts shown with `escalations` by the champion: 40 done (4 churned), 40 not
    (16 churned); 5 shown with `usage-drop`, never done; one answer to the previous model."""
    plant_save_rate(deps, champion, never_done=5)
    ref = FeedbackRef("ACC-1", "snap-old", PREVIOUS, 0.2, "usage-drop", "digest")
    old = FeedbackEvent(uuid.uuid4().hex, uuid.uuid4().hex, "helpful", ref, SHOWN_WEEK, "smb")
    feedback_store(deps).record(old, user=CSM)


def test_stats_show_save_rates_and_release_records_to_a_signed_request(
    deps: Deps, harness: Harness, models: Models
) -> None:
    seed_save_rates(deps, models.champion)
    record_, risks = run_shadow(
        deps.settings,
        Registry(models.var / "registry"),
        models.book,
        models.candidate,
        now=NOW,
        top_n=20,
    )
    ShadowStore(deps.redis, prefix=deps.prefix).save(record_, risks)
    app_deps = dataclasses.replace(deps, metrics=Metrics())  # the harness's app has its own
    with LoopbackServer(build_wsgi(build_app(app_deps), app_deps)) as server:
        sender = SlackSender(server.url, SECRET)
        response = sender.command(
            "/churn-admin", "stats", user_id=ADMIN, response_url=harness.emulator.response_url()
        )
        sender.close()
    assert response.status_code == 200, response.text
    text = response.json()["text"]
    assert "*Save rate by recommended action* (observational comparison, not an experiment)" in text
    # 4/40 vs 16/40 in one stratum: RR 0.25, var(log RR) = 1/4 - 1/40 + 1/16 - 1/40
    assert (
        "• `escalations`: save rate 75% (95% CI 32% to 91%) · churned 4/40 10% where done vs "
        "16/40 (40% weighted) comparable not done"
    ) in text
    assert "    ◦ smb: save rate 75% (95% CI 32% to 91%)" in text
    assert "• `usage-drop`: not enough data yet: 0 done and 0 comparable not-done" in text
    assert "*Release records*" in text
    assert f"• champion `{models.champion}`: offline ROC AUC 0." in text
    assert "live: 40 answers on 40 accounts · adoption 1/1 100%" in text
    assert "actions done 40/40 100%" in text
    assert "save rates: `escalations` 75% (95% CI 32% to 91%, n=40+40)" in text
    assert f"• previous `{PREVIOUS}`: offline no offline metrics on record" in text
    assert "live: 1 answer on 1 account" in text
    assert f"• shadow candidate `{models.candidate}`: offline ROC AUC 0." in text
    assert "live: never shown to CSMs (shadow run 2026-11-23: top 20 overlap" in text
