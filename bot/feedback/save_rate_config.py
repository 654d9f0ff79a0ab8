"""config/save_rate.yaml: when a save rate is shown rather than "not enough data yet".

Apart from ``bot.feedback.save_rates`` (which needs pandas) so that the settings, loaded by
every process, can check it at start-up without loading the analytics.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from models.config_files import load_yaml_model

if TYPE_CHECKING:
    from models.save_rate import SaveRateConfig

FILENAME = "save_rate.yaml"


class SaveRateFile(BaseModel):
    """config/save_rate.yaml (every key optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_units: int = Field(default=30, ge=1, le=100_000)
    min_churned: int = Field(default=10, ge=1, le=100_000)
    done_within_days: int = Field(default=14, ge=0, le=365)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)

    def estimator(self) -> SaveRateConfig:
        from models.save_rate import SaveRateConfig

        return SaveRateConfig(**self.model_dump())


def load_save_rate_config(config_dir: Path) -> SaveRateFile:
    """The validated config/save_rate.yaml of ``config_dir``; the defaults without one."""
    path = config_dir / FILENAME
    return load_yaml_model(path, SaveRateFile) if path.is_file() else SaveRateFile()
