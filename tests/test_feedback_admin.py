"""`/churn-admin stats|shadow|promote` (through handle_admin) and the weekly summary, on the
real Redis and a real model registry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import redis
from slack_sdk import WebClient

from bot.app import build_app
from bot.deps import Deps, build_deps
from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.feedback import feedback_store
from bot.feedback.admin_commands import handle_admin
from bot.feedback.events import Correction, FeedbackEvent, Kind, events_table
from bot.feedback.metrics import stats_text
from bot.feedback.outcomes import Outcome
from bot.feedback.shadow import ShadowStore, run_shadow
from bot.feedback.stats import figures, last_weeks, recorded_since, window_start
from bot.feedback.summary import weekly_summary
from bot.loopback import LoopbackServer
from bot.metrics import Metrics
from bot.render.feedback import FeedbackRef
from bot.settings import load_settings
from bot.state import connect
from bot.web import build_wsgi
from models.generator import generate_accounts
from models.registry import Registry
from tests import sample_config
from tests.planted_save_rate import SHOWN_WEEK, plant_save_rate
from tests.slack_harness import (
    ADMIN,
    BOOK,
    CONFIG,
    CSM,
    NOW,
    SECRET,
    Harness,
    RedisServer,
    publish,
)

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


# --- `/churn-admin stats` reads the feedback stream once ---------------------------------------

#: The Monday 00:00 UTC that opens the 4 weeks `/churn-admin stats` shows at NOW (stats_weeks).
WINDOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
OMAR, QUIET = "U0OMAR0001", "U0QUIET001"  # QUIET opted out: answers stored anonymously


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC)


CHAMPION = "champion"  # stands for the registry fixture's champion
#: Answers recorded oldest first (so every entry id is its answer's time): model version, kind,
#: account, user, time, risk shown, action, segment, and the event's other fields. Before the
#: 4 weeks shown (the previous model's, one a millisecond before the first Monday), then in
#: each week: every kind, three segments and none, an opted-out user, flagged accounts.
HISTORY: list[tuple[str, Kind, str, str, dt.datetime, float, str, str, dict]] = [
    (PREVIOUS, "helpful", "ACC-1", CSM, at(10, 5, 10), 0.2, "usage-drop", "smb", {}),
    (PREVIOUS, "correction", "ACC-2", CSM, at(10, 20, 11), 0.45, "usage-drop", "mid_market",
     {"correction": Correction("churned")}),
    (CHAMPION, "not_helpful", "ACC-3", OMAR, WINDOW - dt.timedelta(milliseconds=1), 0.55,
     "escalations", "smb", {}),
    (CHAMPION, "helpful", "ACC-3", CSM, WINDOW, 0.55, "escalations", "smb", {}),
    (CHAMPION, "action_done", "ACC-4", CSM, at(11, 4, 9), 0.35, "usage-drop", "enterprise",
     {"as_of": "2026-11-01"}),
    (CHAMPION, "helpful", "ACC-5", QUIET, at(11, 10, 9), 0.6, "escalations", "", {}),
    (CHAMPION, "correction", "ACC-6", CSM, at(11, 11, 9), 0.4, "usage-drop", "smb",
     {"correction": Correction("renewed", note="signed for two years")}),
    (CHAMPION, "not_helpful", "ACC-5", CSM, at(11, 12, 9), 0.6, "escalations", "mid_market", {}),
    (CHAMPION, "helpful", "ACC-2", CSM, at(11, 17, 9), 0.45, "usage-drop", "smb", {}),
    (CHAMPION, "correction", "ACC-7", OMAR, at(11, 18, 9), 0.32, "escalations", "enterprise",
     {"correction": Correction("churned")}),
    (CHAMPION, "helpful", "ACC-7", QUIET, at(11, 19, 9), 0.32, "escalations", "", {}),
    (CHAMPION, "helpful", "ACC-1", CSM, at(11, 23, 8), 0.25, "usage-drop", "smb", {}),
    (CHAMPION, "not_helpful", "ACC-3", CSM, at(11, 23, 8, 30), 0.55, "escalations", "smb", {}),
    (CHAMPION, "action_done", "ACC-4", OMAR, at(11, 23, 8, 45), 0.35, "usage-drop", "enterprise",
     {}),
]  # fmt: skip
#: Known outcomes: churned within the horizon, seen alive past it, not known yet.
OUTCOMES = {
    "ACC-2": Outcome(dt.date(2026, 11, 10), dt.date(2026, 11, 10)),
    "ACC-3": Outcome(None, dt.date(2027, 3, 1)),
    "ACC-4": Outcome(dt.date(2026, 12, 1), dt.date(2026, 12, 1)),
    "ACC-7": Outcome(None, dt.date(2026, 11, 30)),
}


def answer(
    deps: Deps, version: str, kind: Kind, account: str, user: str, when: dt.datetime,
    risk: float, action: str, segment: str, extra: dict,
) -> None:  # fmt: skip
    ref = FeedbackRef(account, "snap-1", version, risk, action, "digest")
    event = FeedbackEvent(uuid.uuid4().hex, uuid.uuid4().hex, kind, ref, when, segment, **extra)
    feedback_store(deps).record(event, user=user)


def seed_history(deps: Deps, models: Models) -> None:
    """A feedback history that every part of the stats answer reads: August's planted save
    rate, :data:`HISTORY` with :data:`OUTCOMES`, a snapshot that gives the target CSM
    accounts, and a shadow run of the candidate."""
    plant_save_rate(deps, models.champion, never_done=5)
    store = feedback_store(deps)
    store.set_opted_out(QUIET, True)
    publish(deps, BOOK)
    for version, *rest in HISTORY:
        answer(deps, models.champion if version == CHAMPION else version, *rest)
    planted = store.outcomes([f"ACC-9{n:05d}" for n in range(85)])
    store.set_outcomes(planted | OUTCOMES)
    registry = Registry(models.var / "registry")
    shadow, risks = run_shadow(
        deps.settings, registry, models.book, models.candidate, now=NOW, top_n=20
    )
    ShadowStore(deps.redis, prefix=deps.prefix).save(shadow, risks)


#: The stats answer to ``seed_history`` at NOW as the code wrote it before one read of the
#: stream served both of its parts (it read the weeks' events, then every event again), with
#: ``{champion}`` and ``{candidate}`` for the versions the registry fixture trains.
GOLDEN_STATS = Path(__file__).with_name("data") / "feedback_stats_golden.txt"


def test_the_stats_answer_is_the_text_it_was(deps: Deps, models: Models) -> None:
    seed_history(deps, models)
    golden = GOLDEN_STATS.read_text(encoding="utf-8").removesuffix("\n")
    expected = golden.replace("{champion}", models.champion)
    assert handle_admin(deps, ADMIN, ["stats"]) == expected.replace("{candidate}", models.candidate)


def test_a_stats_answer_before_any_feedback_shows_silent_weeks(deps: Deps) -> None:
    weeks = stats_text(figures(deps, feedback_store(deps), last_weeks(NOW.date(), 4)))
    text = handle_admin(deps, ADMIN, ["stats"])
    assert text is not None
    assert text.startswith(weeks + "\n*Save rate by recommended action*")
    assert "• *2026-11-23* · 0 answers on 0 accounts · adoption 0/1 0%" in text


def test_the_weeks_events_are_those_a_read_since_their_first_monday_gives(
    deps: Deps, models: Models
) -> None:
    seed_history(deps, models)
    store = feedback_store(deps)
    # recorded behind the stream's last id, so its entry id is later than its time
    late = (models.champion, "helpful", "ACC-8", CSM, WINDOW - dt.timedelta(days=30))
    answer(deps, *late, 0.5, "usage-drop", "smb", {})
    weeks = last_weeks(NOW.date(), 4)
    every = events_table(store.events())
    recent = recorded_since(every, window_start(weeks))
    read = events_table(store.events(since=window_start(weeks)))
    assert (len(every), len(read)) == (55, 12)
    assert list(recent["entry_id"]) == list(read["entry_id"])
    pd.testing.assert_frame_equal(recent, read, check_dtype=False)


@pytest.fixture
def private_deps(
    redis_server: RedisServer, emulator: SlackEmulator, models: Models
) -> Iterator[Deps]:
    """Deps on a redis-server of the test's own, whose MONITOR shows this test's commands only."""
    settings = load_settings(
        {
            "CHURNBOT_CONFIG": str(CONFIG),
            "CHURNBOT_VAR": str(models.var),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": emulator.token,
            "SLACK_API_URL": emulator.base_url,
        }
    )
    client = connect(redis_server.url)
    deps = build_deps(settings, client=client, clock=lambda: NOW)
    yield deps
    deps.background.shutdown(wait=True)
    client.close()


def commands_during(client: redis.Redis, action: Callable[[], object]) -> list[list[str]]:
    """The commands clients sent Redis while ``action`` ran (MONITOR; not those a script
    ran), as words: up to a marker sent once it returned, so none is missed or waited for."""
    marker = f"marker-{uuid.uuid4().hex}"
    sent = []
    with client.monitor() as monitor:
        action()
        client.echo(marker)
        while (line := monitor.next_command())["command"] != f"ECHO {marker}":
            if line["client_type"] != "lua":
                sent.append(line["command"].split(" "))
    return sent


def test_a_stats_answer_reads_the_stream_targets_and_outcomes_once(
    private_deps: Deps, models: Models
) -> None:
    deps = private_deps
    seed_history(deps, models)
    store = feedback_store(deps)
    handle_admin(deps, ADMIN, ["stats"])  # loads the snapshot read script, as a running app has
    sent = commands_during(deps.redis, lambda: handle_admin(deps, ADMIN, ["stats"]))
    on_stream = [words for words in sent if store.stream in words]
    assert on_stream == [["XRANGE", store.stream, "-", "+", "COUNT", "1000"]]  # 54 entries
    reads = [words[0] for words in sent]
    assert reads.count("EVALSHA") == len(deps.settings.slack.owners) * len(deps.settings.segments)
    # one for the accounts flagged in the answers, one for those the digests showed (save rates)
    assert reads.count("HMGET") == 2
