"""What `churnbot train --with-feedback` reads: the stored corrections, as labels and weights."""

from __future__ import annotations

import pandas as pd
import redis

from bot.feedback.events import events_table
from bot.feedback.store import FeedbackStore
from bot.settings import Settings
from models.feedback_labels import FeedbackLabels, feedback_labels


def training_feedback(
    settings: Settings, client: redis.Redis, frame: pd.DataFrame
) -> FeedbackLabels:
    """The corrections in the feedback stream turned into labels and weights for ``frame``."""
    config = settings.feedback
    events = events_table(FeedbackStore(client, config).events())
    return feedback_labels(
        events,
        frame,
        settings.schema,
        horizon_days=settings.spec.horizon_days,
        confirmed_weight=config.confirmed_weight,
        settings=settings.spec.training,
    )
