"""A save rate of 75% planted through what digests and CSMs record, for the tests that show it
(the weekly report's chart, ``/churn-admin stats``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from bot.deps import Deps
from bot.digest.exposures import Exposure, ExposureLog
from bot.feedback import feedback_store
from bot.feedback.events import FeedbackEvent
from bot.feedback.outcomes import Outcome
from bot.render.feedback import FeedbackRef
from tests.slack_harness import CSM

SHOWN_WEEK = dt.datetime(2026, 8, 3, 14, 0, tzinfo=dt.UTC)  # a Monday, a quarter before NOW


def plant_save_rate(deps: Deps, model_version: str, *, never_done: int = 0) -> None:
    """80 accounts shown by ``model_version`` in a digest with `escalations`: done on 40 (4
    churned), not on 40 (16 churned), outcomes known: a save rate of 75%. ``never_done`` more
    are shown with `usage-drop`, which nobody does."""
    cards: list[dict[str, Any]] = [
        {
            "account_id": f"ACC-9{n:05d}",
            "segment": "smb",
            "band": "high",
            "risk": 0.6,
            "action": {"rule": "escalations" if n < 80 else "usage-drop"},
            "model_version": model_version,
            "as_of": "2026-08-03",
        }
        for n in range(80 + never_done)
    ]
    exposures = [Exposure.from_card(card, snapshot_id="snap-aug") for card in cards]
    ExposureLog(deps.redis, prefix=deps.prefix).record("cs-east", exposures, at=SHOWN_WEEK)
    store = feedback_store(deps)
    outcomes = {}
    for n, card in enumerate(cards):
        churned = n < 4 or 40 <= n < 56
        outcomes[card["account_id"]] = Outcome(
            dt.date(2026, 9, 1) if churned else None,
            dt.date(2026, 9, 1) if churned else dt.date(2026, 11, 20),
        )
        if n < 40:
            ref = FeedbackRef(
                card["account_id"], "snap-aug", model_version, 0.6, "escalations", "digest"
            )
            at = SHOWN_WEEK + dt.timedelta(days=2)
            event = FeedbackEvent(uuid.uuid4().hex, uuid.uuid4().hex, "action_done", ref, at, "smb")
            store.record(event, user=CSM)
    store.set_outcomes(outcomes)
