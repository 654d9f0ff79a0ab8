"""The charts of the admins' weekly report and of `/churn-admin stats`: gather the figures,
draw them (``bot.render.charts``), share them through Slack's external upload flow.

* **calibration**: predicted risk against what happened, by decile, over every account a CSM
  answered on whose outcome is now known (the accounts people looked at, not the whole book;
  the chart says so). Below :data:`MIN_KNOWN_OUTCOMES` it is left out and the report says why.
* **adoption and acceptance**: the weekly figures of ``bot.feedback.stats``.
* **save rate per action**: each action's save rate with its interval, or "not enough data
  yet" (``bot.feedback.save_rates.current_save_rates``, the figures `/churn-admin stats`
  lists); without any action shown yet, a note instead of an empty chart.

Files can only be shared into a conversation id, so an admin without an admin channel gets
the charts in the direct message ``conversations.open`` gives (a user id is refused). pandas
and matplotlib are imported inside the functions: the web process loads this module with
`/churn-admin` and must not pay for them at start-up. Sending is after the acknowledgement
or in the worker; a failure is logged, never raised, like every notice to the admins.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.feedback.outcomes import Outcome, churned_within
from bot.render.charts import Chart, adoption_chart, calibration_chart, save_rate_chart
from models.errors import ChurnbotError

if TYPE_CHECKING:
    import pandas as pd

    from bot.deps import Deps
    from bot.feedback.store import FeedbackStore
    from models.metrics import CalibrationRow

log = logging.getLogger(__name__)

#: Fewer known outcomes than this make deciles of a handful of accounts: no chart, a note.
MIN_KNOWN_OUTCOMES = 50
CALIBRATION_SOURCE = "accounts CSMs answered on, whose outcome is known"
NO_SAVE_RATES = "Save rate per action: no recommended action has been shown in a digest yet."


@dataclass(frozen=True)
class ReportCharts:
    """The charts to share, and one line for each chart that could not be drawn, saying why."""

    charts: tuple[Chart, ...]
    notes: tuple[str, ...] = ()


def calibration_rows(
    events: pd.DataFrame, outcomes: Mapping[str, Outcome], horizon_days: int
) -> tuple[list[CalibrationRow], int]:
    """Deciles of predicted risk against observed churn over the account-weeks of ``events``
    whose outcome is known (one row per account and as-of date: several clicks on one card
    are one prediction), and how many such rows there were."""
    import numpy as np

    from models.metrics import calibration_table

    if events.empty:
        return [], 0
    at = events["at"].dt.tz_convert("UTC").dt.date
    reference = [
        dt.date.fromisoformat(as_of) if isinstance(as_of, str) and as_of else day
        for as_of, day in zip(events["as_of"], at, strict=True)
    ]
    shown = events.assign(reference=reference).drop_duplicates(["account_id", "reference"])
    horizon = dt.timedelta(days=horizon_days)
    labels = [
        churned_within(outcomes.get(account), reference, horizon)
        for account, reference in zip(shown["account_id"], shown["reference"], strict=True)
    ]
    known = [i for i, label in enumerate(labels) if label is not None]
    if not known:
        return [], 0
    risk = shown["risk"].to_numpy(dtype=float)[known]
    churned = np.array([labels[i] for i in known], dtype=int)
    return calibration_table(churned, risk, bins=10), len(known)


def gather(deps: Deps, store: FeedbackStore, weeks: Sequence[dt.date]) -> ReportCharts:
    """Draw the charts for ``weeks`` (Mondays, oldest first) from the stored feedback."""
    from bot.feedback.events import events_table
    from bot.feedback.save_rates import current_save_rates
    from bot.feedback.stats import figures

    notes: list[str] = []
    charts = [adoption_chart(figures(deps, store, list(weeks)))]
    events = events_table(store.events())
    outcomes = store.outcomes(sorted(set(events["account_id"])))
    rows, known = calibration_rows(events, outcomes, deps.settings.spec.horizon_days)
    if known >= MIN_KNOWN_OUTCOMES:
        charts.insert(0, calibration_chart(rows, source=f"{known} {CALIBRATION_SOURCE}"))
    else:
        notes.append(
            f"Calibration: {known} answered account(s) with a known outcome so far; the chart "
            f"needs at least {MIN_KNOWN_OUTCOMES}."
        )
    rates = current_save_rates(deps, store, events)
    if rates:
        charts.append(save_rate_chart(rates))
    else:
        notes.append(NO_SAVE_RATES)
    return ReportCharts(tuple(charts), tuple(notes))


def share(client: WebClient, channel: str, report: ReportCharts, comment: str) -> bool:
    """Upload the charts into ``channel`` (a conversation id) as one message with
    ``comment`` and the notes; True when Slack accepted them."""
    text = "\n".join([comment, *(f"_{note}_" for note in report.notes)])
    uploads = [
        {"file": c.png, "filename": c.filename, "title": c.title, "alt_txt": c.alt_text}
        for c in report.charts
    ]
    try:
        client.files_upload_v2(channel=channel, file_uploads=uploads, initial_comment=text)
    except SlackApiError as exc:
        log.error("could not share charts in %s: %s", channel, exc.response.get("error"))
        return False
    except (SlackRequestError, OSError) as exc:
        log.error("could not share charts in %s: %s", channel, exc)
        return False
    return True


def direct_message(client: WebClient, user: str) -> str | None:
    """The id of the bot's direct message with ``user`` (files need it), or None."""
    try:
        return str(client.conversations_open(users=user)["channel"]["id"])
    except SlackApiError as exc:
        log.error("could not open a direct message with %s: %s", user, exc.response.get("error"))
    except OSError as exc:
        log.error("could not open a direct message with %s: %s", user, exc)
    return None


def admin_conversations(deps: Deps, client: WebClient) -> list[str]:
    """Where the admins read notices: the admin channel, or a direct message with each."""
    config = deps.settings.slack
    if config.admin_channel:
        return [config.admin_channel]
    opened = (direct_message(client, admin) for admin in config.admins)
    return [channel for channel in opened if channel is not None]


def send_weekly_charts(
    deps: Deps, client: WebClient, store: FeedbackStore, weeks: Sequence[dt.date]
) -> None:
    """The weekly report's charts to every admin conversation (the caller fences the week)."""
    try:
        report = gather(deps, store, weeks)
    except ChurnbotError as exc:
        log.error("weekly report charts not drawn: %s", exc)
        return
    comment = f"*churnbot charts, week of {weeks[-1]}*"
    for channel in admin_conversations(deps, client):
        share(client, channel, report, comment)


def send_stats_charts(deps: Deps, client: WebClient, store: FeedbackStore, user: str) -> None:
    """`/churn-admin stats`' charts, in the asking admin's direct message with churnbot
    (an ephemeral answer cannot carry files)."""
    from bot.feedback.stats import last_weeks

    try:
        report = gather(deps, store, last_weeks(deps.clock().date(), store.config.stats_weeks))
    except ChurnbotError as exc:
        log.error("/churn-admin stats charts not drawn: %s", exc)
        return
    channel = direct_message(client, user)
    if channel is not None:
        share(client, channel, report, "*churnbot charts for `/churn-admin stats`*")
