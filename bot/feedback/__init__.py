"""The feedback loop: one-click answers stored once and durably, privacy by default, the
figures that say whether the product works, and what retraining and shadow mode need.

Nothing here is wired at import time: :func:`feedback_store` builds the store from a Deps.
Importing the package loads neither the store nor what it needs (the event model, the
renderers, slack_sdk's Block Kit): settings load this package's config, and the web server's
parent process, which only checks the settings, should not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bot.deps needs bot.settings, which loads this package's config
    from bot.deps import Deps
    from bot.feedback.store import FeedbackStore


def feedback_store(deps: Deps) -> FeedbackStore:
    """The feedback store of ``deps``' Redis, key prefix and clock, with config/feedback.yaml."""
    from bot.feedback.store import FeedbackStore

    return FeedbackStore(
        deps.redis,
        deps.settings.feedback,
        prefix=deps.prefix,
        clock=deps.clock,
    )


__all__ = ["feedback_store"]
