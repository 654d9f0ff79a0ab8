"""config/sources.yaml: column mapping, reject limit and the optional HTTP source."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.config_files import load_yaml_model


class HttpSourceConfig(BaseModel):
    """A paginated JSON endpoint serving account rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    token_env: str = "CHURNBOT_SOURCE_TOKEN"
    pagination: Literal["cursor", "page"] = "cursor"
    items_field: str = "items"
    cursor_field: str = "next_cursor"
    cursor_param: str = "cursor"
    page_param: str = "page"
    page_size_param: str = "page_size"
    page_size: int = Field(default=500, gt=0, le=100_000)
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff_seconds: float = Field(default=0.5, ge=0)


class SourcesConfig(BaseModel):
    """How a user's table maps onto the contract and how strict loading is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mapping: dict[str, str] = Field(default_factory=dict)
    max_reject_share: float = Field(default=0.05, ge=0, le=1)
    http: HttpSourceConfig | None = None


def load_sources_config(path: Path) -> SourcesConfig:
    return load_yaml_model(path, SourcesConfig)
