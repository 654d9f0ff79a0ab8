"""Alerts that reach the owner: one direct message when a scored account jumps, through the
Web API emulator and the real Redis; exactly once across racing runs and restarts, never
while the kill switch is on, muted by `/churn alerts off`, once per account per week."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.deps import Deps
from bot.digest.alerts import LEASE, OwnerAlerts, alerts_in, build_alerts
from bot.digest.channels import ScoringConfig, load_channels
from bot.digest.metrics import WorkerMetrics
from bot.digest.poster import build_poster
from bot.digest.scheduler import ALERTS, DigestWorker, build_scheduler, job_store
from bot.digest.scoring import ScheduledScoring
from bot.digest.sender import DigestSender
from bot.publish import RunResult
from bot.state import SnapshotMeta
from models.errors import ConfigError
from models.spec import RiskBands
from tests.slack_harness import ADMIN, CSM, NOW, Harness, make_card, publish

pytestmark = pytest.mark.clock

BANDS = RiskBands(high=0.3, medium=0.12)


def moved(account_id: str, name: str, before: float, after: float, **extra: Any) -> dict:
    return make_card(
        account_id, name, after, previous_risk=before, change=round(after - before, 6), **extra
    )


#: Two scoring runs: Acme Labs (Maria's) jumps 39 points, Acme Corp barely moves, Beta
#: Industries (Omar's: no Slack user mapped) jumps too, New Account Ltd is new.
BEFORE = [
    make_card("ACC-000001", "Acme Corp", 0.78),
    make_card("ACC-000002", "Acme Labs", 0.42),
    make_card("ACC-000004", "Beta Industries", 0.20, owner="omar.haddad@example.com"),
]
JUMPED = [
    moved("ACC-000001", "Acme Corp", 0.78, 0.81),
    moved("ACC-000002", "Acme Labs", 0.42, 0.81),
    moved("ACC-000004", "Beta Industries", 0.20, 0.45, owner="omar.haddad@example.com"),
    make_card("ACC-000007", "New Account Ltd", 0.90),  # no previous run: not a jump
]


def publish_runs(
    deps: Deps, before: list[dict], after: list[dict], at: dt.datetime = NOW
) -> SnapshotMeta:
    """Publish two scoring runs a day apart; the store works out each card's change."""
    publish(deps, before, created=at - dt.timedelta(days=1))
    return publish(deps, after, created=at)


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def alerts(h: Harness, clock: Clock | None = None, client: WebClient | None = None) -> OwnerAlerts:
    """Owner alerts as one worker builds them: its own WebClient on the emulator."""
    deps = h.deps if clock is None else dataclasses.replace(h.deps, clock=clock)
    client = client or WebClient(token=h.emulator.token, base_url=h.emulator.base_url)
    return build_alerts(deps, client)


def dms_to(h: Harness, user: str) -> list[str]:
    """The texts of the direct messages ``user`` received (their DM is opened first)."""
    opened = {
        c.response["channel"]["id"]
        for c in h.emulator.calls("conversations.open")
        if c.ok and c.body.get("users") == user
    }
    return [c.body["text"] for c in h.emulator.messages() if c.body["channel"] in opened]


def test_alerts_in_finds_jumps_and_entries_into_the_high_band_only() -> None:
    cards = [
        moved("A", "Jumped", 0.10, 0.31),
        moved("B", "Entered high", 0.27, 0.31),
        moved("C", "Rose a little, medium", 0.13, 0.25),
        moved("D", "Fell", 0.90, 0.40),
        moved("E", "High already, small rise", 0.50, 0.60),
        make_card("F", "New", 0.95),
    ]

    found = list(alerts_in(cards, jump=0.2, band_of=BANDS.band))

    assert [(a.account_id, a.entered_high) for a in found] == [("A", True), ("B", True)]
    assert [a.account_id for a in alerts_in(cards, jump=0.05, band_of=BANDS.band)] == [
        "A",
        "B",
        "C",
        "E",
    ]


def test_an_owner_gets_exactly_one_dm_when_two_runs_race(harness: Harness) -> None:
    publish_runs(harness.deps, BEFORE, JUMPED)
    workers = [alerts(harness), alerts(harness)]
    start = threading.Barrier(len(workers))
    results: list[Counter[str]] = []

    def run(worker: OwnerAlerts) -> None:
        start.wait(timeout=5)
        results.append(worker.run())

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    [text] = dms_to(harness, CSM)
    assert "⚡ *Acme Labs* jumped from 42% to 81% churn risk" in text
    assert "Main reason: Logins down 48%" in text
    assert "`/churn alerts off` stops these messages" in text
    total = sum(results, Counter())
    assert (total["sent"], total["already_sent"], total["no_slack_user"]) == (1, 1, 2)

    restarted = alerts(harness).run()  # a restarted worker, the same week
    assert restarted["already_sent"] == 1
    assert len(dms_to(harness, CSM)) == 1
    assert len(harness.emulator.messages()) == 1  # Omar has no Slack user: nothing to anyone


def test_no_alert_while_the_kill_switch_is_on(harness: Harness) -> None:
    publish_runs(harness.deps, BEFORE, JUMPED)
    harness.deps.switch.trip("input data is late", who=ADMIN, source="admin")

    stopped = alerts(harness).run()
    assert (stopped["switch_on"], stopped["sent"]) == (1, 0)
    assert harness.emulator.calls("chat.postMessage") == []

    harness.deps.switch.reset(who=ADMIN)
    assert alerts(harness).run()["sent"] == 1  # the switch was the only thing in the way


def test_churn_alerts_off_mutes_and_on_unmutes(harness: Harness) -> None:
    publish_runs(harness.deps, BEFORE, JUMPED)

    off = harness.sender.command("/churn", "alerts off", user_id=CSM).json()
    assert "Alerts are off" in off["text"]
    assert alerts(harness).run()["muted"] == 1
    assert dms_to(harness, CSM) == []

    on = harness.sender.command("/churn", "alerts  ON", user_id=CSM).json()
    assert "Alerts are on" in on["text"]
    assert alerts(harness).run()["sent"] == 1
    assert len(dms_to(harness, CSM)) == 1


def test_at_most_one_alert_per_account_per_week(harness: Harness) -> None:
    clock = Clock(NOW)  # a Monday
    publish_runs(harness.deps, BEFORE, JUMPED)
    assert alerts(harness, clock).run()["sent"] == 1

    clock.now = NOW + dt.timedelta(days=6, hours=14)  # Sunday night: the same week
    publish_runs(
        harness.deps,
        [make_card("ACC-000002", "Acme Labs", 0.50)],
        [moved("ACC-000002", "Acme Labs", 0.50, 0.95)],
        at=clock.now,
    )
    assert alerts(harness, clock).run()["already_sent"] == 1

    clock.now = NOW + dt.timedelta(days=7)  # next Monday
    assert alerts(harness, clock).run()["sent"] == 1
    texts = dms_to(harness, CSM)
    assert len(texts) == 2
    assert "jumped from 50% to 95%" in texts[1]


def test_a_claim_whose_sender_could_not_reach_slack_is_taken_over_after_the_lease(
    harness: Harness,
) -> None:
    clock = Clock(NOW)
    publish_runs(harness.deps, BEFORE, JUMPED)
    with socket.socket() as closed:  # a port nothing listens on: Slack unreachable
        closed.bind(("127.0.0.1", 0))
        unreachable = WebClient(
            token="xoxb-x", base_url=f"http://127.0.0.1:{closed.getsockname()[1]}/"
        )
    assert alerts(harness, clock, unreachable).run()["retry_later"] == 1

    assert alerts(harness, clock).run()["retry_later"] == 1  # within the lease: hands off
    clock.now = NOW + LEASE
    assert alerts(harness, clock).run()["sent"] == 1
    assert len(dms_to(harness, CSM)) == 1


def test_a_post_whose_answer_was_lost_is_found_not_sent_again(harness: Harness) -> None:
    clock = Clock(NOW)
    publish_runs(harness.deps, BEFORE, JUMPED)
    harness.emulator.fail_next("chat.postMessage", delay=2.0)  # posted, answered too late
    impatient = WebClient(
        token=harness.emulator.token, base_url=harness.emulator.base_url, timeout=1
    )
    assert alerts(harness, clock, impatient).run()["retry_later"] == 1

    clock.now = NOW + LEASE
    assert alerts(harness, clock).run()["reconciled"] == 1
    assert alerts(harness, clock).run()["already_sent"] == 1
    [dm] = {c.response["channel"]["id"] for c in harness.emulator.calls("conversations.open")}
    [alert] = harness.emulator.history(dm)  # what Slack holds, whatever answers got lost
    assert "Acme Labs" in alert["text"]
    harness.emulator.wait_for("chat.postMessage")  # let the slow answer finish


def test_an_alert_slack_rate_limited_goes_out_at_the_next_look(harness: Harness) -> None:
    """Before: the 429 counted as failed, the snapshot's claim was kept, and the alert was
    never sent (the worker's client retries nothing)."""
    publish_runs(harness.deps, BEFORE, JUMPED)
    harness.emulator.fail_next("conversations.open", status=429)
    worker = alerts(harness, client=_no_retry_client(harness))

    assert worker.run_new() == Counter(rate_limited=1), "the run stops at the 429"
    assert harness.emulator.calls("chat.postMessage") == []
    assert worker.run_new() == Counter(sent=1, no_slack_user=1), "the next minute sends it"
    assert worker.run_new() is None
    assert len(dms_to(harness, CSM)) == 1


def test_a_server_error_on_the_post_is_retried_after_the_lease_and_lands_once(
    harness: Harness,
) -> None:
    clock = Clock(NOW)
    publish_runs(harness.deps, BEFORE, JUMPED)
    harness.emulator.fail_next("chat.postMessage", status=503)
    worker = alerts(harness, clock, _no_retry_client(harness))

    assert worker.run_new() == Counter(retry_later=1, no_slack_user=1)
    assert worker.run_new() == Counter(retry_later=1, no_slack_user=1), "in doubt: hands off"
    clock.now = NOW + LEASE
    assert worker.run_new() == Counter(sent=1, no_slack_user=1)  # looked in the DM first
    assert worker.run_new() is None
    assert len(dms_to(harness, CSM)) == 1


def test_an_alert_slack_refuses_for_good_is_not_tried_again(harness: Harness) -> None:
    publish_runs(harness.deps, BEFORE, JUMPED)
    harness.emulator.fail_next("chat.postMessage", error="cannot_dm_bot")
    worker = alerts(harness)

    assert worker.run_new() == Counter(failed=1, no_slack_user=1)
    assert worker.run_new() is None, "the snapshot's alerts are done"
    assert dms_to(harness, CSM) == []


def _no_retry_client(h: Harness) -> WebClient:
    """The worker's own client retries nothing; the next minute's look is the retry."""
    return WebClient(token=h.emulator.token, base_url=h.emulator.base_url, retry_handlers=[])


def test_the_workers_scheduled_scoring_alerts_after_it_publishes(harness: Harness) -> None:
    deps: Deps = harness.deps
    fired_at = NOW.replace(hour=5, minute=1)  # config/channels.yaml scores at 05:00 UTC

    def run() -> RunResult:
        return RunResult(checks=(), snapshot=publish_runs(deps, BEFORE, JUMPED), tripped=False)

    scoring = ScheduledScoring(
        redis=deps.redis,
        prefix=deps.prefix,
        config=ScoringConfig(),
        run=run,
        clock=lambda: fired_at,
        grace=dt.timedelta(minutes=120),
        metrics=WorkerMetrics(),
        alerts=alerts(harness),
    )

    assert scoring.fire() == "healthy"
    [text] = dms_to(harness, CSM)
    assert "Acme Labs" in text


def test_a_snapshot_published_outside_the_worker_alerts_once_across_workers(
    harness: Harness,
) -> None:
    publish_runs(harness.deps, BEFORE, JUMPED)  # as `churnbot score` publishes, by hand or cron
    first, second = alerts(harness), alerts(harness)

    assert first.run_new() == Counter(sent=1, no_slack_user=1)
    assert second.run_new() is None, "claimed: another worker does not read the cards again"
    assert first.run_new() is None, "nothing new since"
    assert len(dms_to(harness, CSM)) == 1

    publish_runs(  # the next runs: another of Maria's accounts jumps
        harness.deps,
        [make_card("ACC-000009", "Gamma Foods", 0.10)],
        [moved("ACC-000009", "Gamma Foods", 0.10, 0.55)],
        at=NOW + dt.timedelta(hours=1),
    )
    assert second.run_new() == Counter(sent=1)
    texts = dms_to(harness, CSM)
    assert len(texts) == 2
    assert "*Gamma Foods* entered the high band" in texts[1]


def test_no_alerts_from_an_unhealthy_or_an_old_newest_snapshot(harness: Harness) -> None:
    publish(harness.deps, BEFORE, created=NOW - dt.timedelta(days=1))
    publish(harness.deps, [c | {"risk": 0.9} for c in BEFORE], healthy=False, created=NOW)
    assert alerts(harness).run_new() is None, "failed its health checks: not news to trust"

    sla = dt.timedelta(hours=harness.deps.settings.spec.freshness_sla_hours)
    publish_runs(harness.deps, BEFORE, JUMPED, at=NOW - sla - dt.timedelta(minutes=1))
    assert alerts(harness).run_new() is None, "older than the freshness SLA: old news"
    off = harness.deps.settings.channels.alerts.model_copy(update={"enabled": False})
    muted = alerts(harness, Clock(NOW - sla))
    muted.config = off
    assert muted.run_new() is None, "alerts off: not even a read"
    assert alerts(harness, Clock(NOW - sla)).run_new() == Counter(sent=1, no_slack_user=1)
    assert harness.emulator.messages() != []


def test_alerts_the_kill_switch_held_go_out_once_it_is_off(harness: Harness) -> None:
    publish_runs(harness.deps, BEFORE, JUMPED)
    harness.deps.switch.trip("input data is late", who=ADMIN, source="admin")
    assert alerts(harness).run_new() == Counter(switch_on=1)
    assert harness.emulator.calls("chat.postMessage") == []

    harness.deps.switch.reset(who=ADMIN)
    assert alerts(harness).run_new() == Counter(sent=1, no_slack_user=1), "claim given back"
    assert alerts(harness).run_new() is None
    assert len(dms_to(harness, CSM)) == 1


def test_the_worker_looks_for_new_snapshots_in_a_job_of_its_own(harness: Harness) -> None:
    deps = harness.deps
    client = WebClient(token=harness.emulator.token, base_url=harness.emulator.base_url)
    worker = DigestWorker(
        key=deps.prefix,
        poster=build_poster(deps, DigestSender(client)),
        channels=deps.settings.channels,
        scheduler=build_scheduler(job_store(deps.redis, deps.prefix), deps.settings.channels),
        redis=deps.redis,
        prefix=deps.prefix,
        clock=deps.clock,
        alerts=build_alerts(deps, client),
    )
    worker.start(paused=True)
    try:
        job = worker.scheduler.get_job(ALERTS, jobstore="local")
        assert job is not None
        assert job.executor == "default", "on the digests' pool: it reads every card"
        assert job.func() is None, "nothing published yet"
        publish_runs(deps, BEFORE, JUMPED)
        assert job.func() == Counter(sent=1, no_slack_user=1)
    finally:
        worker.stop()
    [text] = dms_to(harness, CSM)
    assert "Acme Labs" in text


def test_the_alert_threshold_is_validated_where_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("alerts:\n  jump_points: 0\n")
    with pytest.raises(ConfigError, match=r"channels.yaml: alerts.jump_points: .*greater than 0"):
        load_channels(path)
    path.write_text("alerts:\n  jump_points: 15\n  enabled: false\n")
    loaded = load_channels(path).alerts
    assert (loaded.jump, loaded.enabled) == (0.15, False)
