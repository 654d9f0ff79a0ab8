"""Hostile values inside correctly signed requests: they are refused where they are read and
spoil nothing for the other people on the same message."""

from __future__ import annotations

import logging

import pytest

from bot.render import FeedbackRef
from tests.slack_harness import CSM, Harness
from tests.test_feedback_e2e import CHANNEL, click, lines, post_digest


def test_a_forged_feedback_value_with_control_characters_breaks_no_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """An older-style button value whose account id carries the store's field separator (a
    control character) used to be saved, after which "who answered what" could no longer be
    read back for that message: nobody's answer showed any more."""
    caplog.set_level(logging.WARNING)
    digest = post_digest(harness)
    forged = FeedbackRef(
        "ACC-000002\x1fhelpful\x1fU0EVIL00001",
        digest.meta.snapshot_id,
        "20261123-abcdef0123",
        0.4,
        "usage-drop",
        "digest",
    )
    response = click(
        harness, "feedback_helpful", forged.to_value(), digest=digest, account_id="ACC-000002"
    )
    assert response.status_code == 200
    harness.emulator.wait_for("response_url")  # the clicker is told the button was unreadable
    click(harness, "feedback_helpful", digest.value("ACC-000001"), digest=digest)
    harness.emulator.wait_for("chat.update")
    [message] = harness.emulator.history(CHANNEL)
    assert lines(message) == {"ACC-000001": f"👍 <@{CSM}>"}
    assert "Traceback" not in caplog.text
