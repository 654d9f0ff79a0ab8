"""config/feedback.yaml: retention, de-duplication window and the knobs of the feedback loop.

Loaded with :func:`models.config_files.load_yaml_model`, so a mistake reads like every other
config error: ``config/feedback.yaml: retention_days: Input should be greater than 0``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from models.config_files import load_yaml_model

FILENAME = "feedback.yaml"


class FeedbackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retention_days: int = Field(default=365, gt=0, le=3650)
    dedupe_days: int = Field(default=14, gt=0, le=365)
    message_state_days: int = Field(default=30, gt=0, le=365)
    note_max_chars: int = Field(default=1000, ge=50, le=2900)
    confirmed_weight: float = Field(default=2.0, ge=1.0, le=20.0)
    stats_weeks: int = Field(default=4, ge=1, le=26)
    shadow_top_n: int = Field(default=50, ge=1, le=1000)
    metrics_refresh_seconds: int = Field(default=300, ge=0, le=86_400)
    #: The niceness of the thread that redraws messages after clicks (``bot.feedback.drain``):
    #: background work that must yield the CPU to the web process answering clicks when they
    #: share cores. 0 leaves it as it is; 19 is the most yielding.
    refresh_nice: int = Field(default=10, ge=0, le=19)

    @property
    def retention(self) -> dt.timedelta:
        return dt.timedelta(days=self.retention_days)


def load_feedback_config(config_dir: Path) -> FeedbackConfig:
    """The validated config/feedback.yaml of ``config_dir``."""
    return load_yaml_model(config_dir / FILENAME, FeedbackConfig)
