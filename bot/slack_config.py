"""config/slack.yaml: admins, the admin channel and the Slack-user-to-owner mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from models.config_files import load_yaml_model

SLACK_USER_ID = r"^[UW][A-Z0-9]{2,}$"


class SlackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    admins: tuple[Annotated[str, StringConstraints(pattern=SLACK_USER_ID)], ...] = Field(
        min_length=1
    )
    admin_channel: str | None = Field(default=None, pattern=r"^[CG][A-Z0-9]{2,}$")
    owners: dict[Annotated[str, StringConstraints(pattern=SLACK_USER_ID)], str] = Field(
        default_factory=dict
    )
    digest_size: int = Field(default=10, ge=1, le=20)

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.admins

    @property
    def owner_users(self) -> dict[str, str]:
        """Owner CSM (as written in the account data) -> their Slack user id: whom a digest
        mentions for an owner's accounts."""
        return {owner: user for user, owner in self.owners.items()}


def load_slack_config(path: Path) -> SlackConfig:
    return load_yaml_model(path, SlackConfig)
