"""The admins' charts: the weekly report and `/churn-admin stats` upload PNGs with alt text
through Slack's external upload flow, into the emulator, on the real Redis."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from PIL import Image
from slack_sdk import WebClient

from bot.deps import Deps
from bot.emulator import SlackEmulator
from bot.emulator.workspace import StoredFile
from bot.feedback import feedback_store
from bot.feedback.events import FeedbackEvent, Kind
from bot.feedback.outcomes import Outcome
from bot.feedback.report_charts import MIN_KNOWN_OUTCOMES, NO_SAVE_RATES
from bot.feedback.summary import weekly_summary
from bot.render.charts import save_rate_chart
from bot.render.feedback import FeedbackRef
from models.save_rate import SaveRate
from tests.planted_save_rate import plant_save_rate
from tests.slack_harness import ADMIN, CSM, NOW, Harness

pytestmark = pytest.mark.clock

LAST_WEEK = NOW - dt.timedelta(days=6)
#: Long enough ago for a 90-day horizon to have passed since.
LONG_AGO = NOW - dt.timedelta(days=150)


def record(deps: Deps, kind: Kind, account: str, at: dt.datetime, risk: float) -> None:
    ref = FeedbackRef(account, "snap-1", "m1", risk, "usage-drop", "digest")
    event = FeedbackEvent(uuid.uuid4().hex, uuid.uuid4().hex, kind, ref, at, "smb", "")
    feedback_store(deps).record(event, user=CSM)


def answered_book_with_outcomes(deps: Deps, accounts: int) -> None:
    """``accounts`` answered long ago at risks 0-99%, the riskier ones churned; and two
    answers last week, for the adoption chart."""
    outcomes = {}
    for i in range(accounts):
        account = f"ACC-{i:06d}"
        record(deps, "helpful", account, LONG_AGO, risk=i / accounts)
        churned = i % 10 < i * 10 // accounts  # churn share grows with the risk
        outcomes[account] = Outcome(
            churn_date=(LONG_AGO + dt.timedelta(days=30)).date() if churned else None,
            last_seen=NOW.date(),
        )
    feedback_store(deps).set_outcomes(outcomes)
    record(deps, "helpful", "ACC-900001", LAST_WEEK, risk=0.8)
    record(deps, "not_helpful", "ACC-900002", LAST_WEEK, risk=0.4)


def decodes_as_png(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()  # decodes every pixel: a truncated file fails here
    return image.size


def admin_dm(emulator: SlackEmulator, user: str = ADMIN) -> str:
    [opened] = [
        c for c in emulator.calls("conversations.open") if c.body.get("users") == user and c.ok
    ][:1]
    return str(opened.response["channel"]["id"])


def by_name(files: list[StoredFile]) -> dict[str, StoredFile]:
    return {f.name: f for f in files}


def test_the_weekly_report_reaches_the_admin_with_its_charts(harness: Harness) -> None:
    deps, emulator = harness.deps, harness.emulator
    answered_book_with_outcomes(deps, accounts=MIN_KNOWN_OUTCOMES + 10)
    client = WebClient(token=emulator.token, base_url=emulator.base_url)

    weekly_summary(deps, client)
    weekly_summary(deps, client)  # a rerun sends neither the text nor the charts again

    dm = admin_dm(emulator)
    files = by_name(emulator.files(dm))
    assert set(files) == {"calibration.png", "adoption.png"}
    assert len(emulator.files()) == 2  # nowhere else, and once
    for chart in files.values():
        width, height = decodes_as_png(chart.data or b"")
        assert width > 300
        assert height > 200
    calibration = files["calibration.png"].alt_txt
    assert calibration.startswith("Predicted vs observed churn, by decile of risk (60 accounts")
    assert "Decile 1: predicted" in calibration
    assert "10: predicted 94%, observed 83% (n=6)." in calibration
    adoption = files["adoption.png"].alt_txt
    assert "week of 2026-11-16: adoption 100% (1 of 1 CSMs), acceptance 50%" in adoption
    [share] = [m for m in emulator.history(dm) if m.get("files")]
    assert share["text"].startswith("*churnbot charts, week of 2026-11-16*")
    assert NO_SAVE_RATES in share["text"]
    assert [f["alt_txt"] for f in share["files"]] == [calibration, adoption]


def test_without_enough_known_outcomes_the_report_says_so_instead_of_a_chart(
    harness: Harness,
) -> None:
    deps, emulator = harness.deps, harness.emulator
    answered_book_with_outcomes(deps, accounts=5)

    weekly_summary(deps, WebClient(token=emulator.token, base_url=emulator.base_url))

    dm = admin_dm(emulator)
    assert set(by_name(emulator.files(dm))) == {"adoption.png"}
    [share] = [m for m in emulator.history(dm) if m.get("files")]
    assert "Calibration: 5 answered account(s) with a known outcome so far" in share["text"]


def test_the_weekly_report_draws_the_save_rate_of_each_action(harness: Harness) -> None:
    deps, emulator = harness.deps, harness.emulator
    plant_save_rate(deps, "m1")

    weekly_summary(deps, WebClient(token=emulator.token, base_url=emulator.base_url))

    files = by_name(emulator.files(admin_dm(emulator)))
    assert set(files) == {"adoption.png", "save-rate.png"}
    save_rates = files["save-rate.png"]
    decodes_as_png(save_rates.data or b"")
    assert "observational comparison, not an experiment" in save_rates.alt_txt
    assert (
        "escalations: 75% (95% interval 32% to 91%; 40 done, 40 comparable not)"
        in save_rates.alt_txt
    )


def test_churn_admin_stats_attaches_charts_in_the_admins_direct_messages(
    harness: Harness,
) -> None:
    record(harness.deps, "helpful", "ACC-1", NOW, risk=0.8)
    response = harness.sender.command(
        "/churn-admin", "stats", user_id=ADMIN, response_url=harness.emulator.response_url()
    )

    assert response.status_code == 200
    assert "*Feedback, by week*" in response.json()["text"]
    assert "Charts follow in your direct messages" in response.json()["text"]
    [complete] = harness.emulator.wait_for("files.completeUploadExternal")
    assert complete.ok
    dm = admin_dm(harness.emulator)
    assert complete.body["channel_id"] == dm
    [chart] = harness.emulator.files(dm)
    decodes_as_png(chart.data or b"")
    assert "week of 2026-11-23: adoption 100% (1 of 1 CSMs), acceptance 100%" in chart.alt_txt
    [share] = [m for m in harness.emulator.history(dm) if m.get("files")]
    assert "Calibration: 0 answered account(s) with a known outcome so far" in share["text"]
    assert NO_SAVE_RATES in share["text"]


def test_stats_from_someone_else_draws_nothing(harness: Harness) -> None:
    response = harness.sender.command("/churn-admin", "stats", user_id=CSM)

    assert "admins only" in response.json()["text"]
    harness.deps.background.submit(lambda: None).result(timeout=5)  # drain the executor
    assert harness.emulator.calls("files.getUploadURLExternal") == []


def save_rate(
    action: str, estimate: float | None, low: float | None, high: float | None
) -> SaveRate:
    return SaveRate(
        action=action,
        segment="all",
        model_version="all",
        control="not_done",
        done=80,
        done_churned=8,
        control_units=240,
        control_churned=40,
        control_rate=0.17,
        estimate=estimate,
        low=low,
        high=high,
    )


def test_save_rate_chart_draws_models_save_rate_and_says_what_it_is() -> None:
    rates = [
        save_rate("fix-escalations", 0.4, 0.15, 0.58),
        save_rate("webinar", -0.05, -0.3, 0.15),
        save_rate("exec-call", None, None, None),
    ]

    chart = save_rate_chart(rates)

    decodes_as_png(chart.png)
    assert "observational comparison, not an experiment" in chart.alt_text
    assert (
        "fix-escalations: 40% (95% interval 15% to 58%; 80 done, 240 comparable not)"
        in chart.alt_text
    )
    assert "webinar: -5% (95% interval -30% to 15%" in chart.alt_text
    assert "exec-call: not enough data yet (80 done, 240 comparable not)" in chart.alt_text
