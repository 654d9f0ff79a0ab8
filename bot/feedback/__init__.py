"""The feedback loop: one-click answers stored once and durably, privacy by default, the
figures that say whether the product works, and what retraining and shadow mode need.

Nothing here is wired at import time: :func:`feedback_store` builds the store from a Deps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.feedback.config import FeedbackConfig, load_feedback_config
from bot.feedback.store import FeedbackStore

if TYPE_CHECKING:  # bot.deps needs bot.settings, which loads this package's config
    from bot.deps import Deps


def feedback_store(deps: Deps) -> FeedbackStore:
    """The feedback store of ``deps``' Redis, key prefix and clock, with config/feedback.yaml."""
    return FeedbackStore(
        deps.redis,
        deps.settings.feedback,
        prefix=deps.prefix,
        clock=deps.clock,
    )


__all__ = ["FeedbackConfig", "FeedbackStore", "feedback_store", "load_feedback_config"]
