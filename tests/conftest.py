"""Fixtures shared by every test module."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.redis_fixtures", "tests.slack_harness"]

ENV_PREFIXES = ("SLACK_", "REDIS_URL", "CHURNBOT_", "PORT")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's Slack tokens, Redis URL or churnbot settings."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
