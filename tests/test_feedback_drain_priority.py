"""The refresh drain is background work: its thread yields the CPU, and only its thread.

A redraw may wait a moment; a click's ack may not. Wherever the drain runs (``churnbot
worker``, or beside the web in ``churnbot serve`` on the embedded store, or beside the Web API
emulator in bench/feedback.py), it shares cores with a web process answering clicks, so its
thread runs at config/feedback.yaml's ``refresh_nice`` and the threads beside it do not.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from bot.feedback.config import load_feedback_config
from bot.render import FeedbackRef
from models.errors import ConfigError
from tests.polling import wait_until
from tests.slack_harness import BOOK, Harness, publish
from tests.test_feedback_e2e import click

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="threads have a niceness of their own on Linux only"
)


def nice_of(native_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, native_id)


def alive_nice_of(native_id: int) -> int | None:
    """The niceness of a thread that may have ended meanwhile (a request's, say)."""
    try:
        return nice_of(native_id)
    except ProcessLookupError:
        return None


def test_the_drain_thread_runs_niced_and_the_rest_of_its_process_does_not(
    harness: Harness,
) -> None:
    nice = harness.deps.settings.feedback.refresh_nice
    assert nice > 0, "the shipped config/feedback.yaml yields the CPU"
    own = nice_of(threading.get_native_id())
    [drain] = [t for t in threading.enumerate() if t.name == "feedback-refresh"]
    assert drain.native_id is not None
    native_id = drain.native_id
    wait_until(
        lambda: nice_of(native_id) == min(19, own + nice), "the drain to lower itself", timeout=5
    )
    others = [int(tid) for tid in os.listdir("/proc/self/task") if int(tid) != native_id]
    assert {nice for nice in map(alive_nice_of, others) if nice is not None} == {own}, (
        "the web's threads (and the emulator's) keep their priority"
    )


def test_work_the_drain_starts_does_not_nice_the_pool_that_answers_users(
    harness: Harness,
) -> None:
    """A thread inherits the niceness of the thread that starts it. Redrawing a ``/churn``
    card may start the track record's computation on a pool; the first such thread must not
    be one of ``deps.background``'s (it tells users their click was not saved)."""
    meta = publish(harness.deps, BOOK)
    value = FeedbackRef(
        "ACC-000001", meta.snapshot_id, meta.model_version, 0.81, "usage-drop", "card"
    ).to_value()
    url = harness.emulator.response_url("card")
    assert click(harness, "feedback_helpful", value, response_url=url).status_code == 200
    [call] = harness.emulator.wait_for("response_url")
    assert call.body["replace_original"] is True, "the card was drawn again, by the drain"
    own = nice_of(threading.get_native_id())
    used = harness.deps.background.submit(threading.get_native_id).result(timeout=10)
    pool = {t.native_id for t in threading.enumerate() if t.name.startswith("after-ack")}
    assert {alive_nice_of(tid) for tid in pool | {used} if tid} == {own}


def test_refresh_nice_is_a_niceness(tmp_path: Path) -> None:
    (tmp_path / "feedback.yaml").write_text("refresh_nice: 20\n")
    with pytest.raises(ConfigError, match="refresh_nice"):
        load_feedback_config(tmp_path)
