"""Message refreshes after feedback clicks: queued by the web process, drawn by a drain.

Signed clicks go into the real app on loopback (real Redis, the Web API emulator), as in
test_feedback_e2e; here the harness's own drain thread is stopped, and each test steps drains
of its own on a clock it moves by hand, so pacing and retries are checked without sleeping.
The last test runs ``churnbot worker`` as a process and lets it draw what the app queued.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
import pytest
import redis
from slack_sdk import WebClient

from bot.app import build_app
from bot.deps import Deps, build_deps
from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.emulator.server import Call
from bot.feedback import feedback_store
from bot.feedback.drain import GROUP, RETRY_S, RefreshDrain, build_drain
from bot.loopback import LoopbackServer
from bot.render import DigestContent, FeedbackRef, digest_messages
from bot.settings import load_settings
from bot.state import SnapshotMeta, connect
from bot.web import build_wsgi
from tests.polling import wait_until
from tests.slack_harness import ADMIN, BOOK, CONFIG, CSM, SECRET, Harness
from tests.test_feedback_e2e import CHANNEL, OMAR, Digest, click, lines, post_digest
from tests.test_feedback_outage import RedisServer, free_port

CHURNBOT = str(Path(sys.executable).with_name("churnbot"))


@dataclass
class Clock:
    """Monotonic seconds that move only when a test says so."""

    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rig(harness: Harness) -> Harness:
    """The harness with its drain thread stopped: nothing is drawn unless a test steps."""
    assert harness.refreshes is not None
    harness.refreshes.stop()
    assert not harness.refreshes.is_alive()
    return harness


@pytest.fixture
def digest(rig: Harness) -> Digest:
    return post_digest(rig)


def drain(h: Harness, clock: Clock, **options: float) -> RefreshDrain:
    return build_drain(h.deps, clock=clock, **options)


def queued(h: Harness) -> int:
    """Refreshes in the queue, drawn or not (an entry goes once it is drawn)."""
    return int(h.deps.redis.xlen(feedback_store(h.deps).refresh_stream))


def pending(h: Harness) -> int:
    """Refreshes some drain has read and not finished."""
    try:
        summary = h.deps.redis.xpending(feedback_store(h.deps).refresh_stream, GROUP)
    except redis.ResponseError:  # no group yet: no drain ever read
        return 0
    return int(summary["pending"])


def updates(h: Harness) -> list[Call]:
    return h.emulator.calls("chat.update")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def shown(h: Harness, ts: str) -> dict[str, str]:
    """The feedback lines of the channel message ``ts`` as it stands now."""
    [message] = [m for m in h.emulator.history(CHANNEL) if m["ts"] == ts]
    return lines(message)


def test_a_click_is_stored_once_acked_and_queued_and_the_drain_updates_the_message(
    rig: Harness, digest: Digest
) -> None:
    response = click(rig, "feedback_helpful", digest.value("ACC-000001"), digest=digest)
    assert response.status_code == 200
    assert len(list(feedback_store(rig.deps).events())) == 1
    assert updates(rig) == [], "the web process itself calls no chat.update"
    assert queued(rig) == 1

    assert drain(rig, Clock()).step() == 1
    [update] = updates(rig)
    assert update.ok
    assert update.body["ts"] == digest.ts
    assert shown(rig, digest.ts) == {"ACC-000001": f"👍 <@{CSM}>"}
    assert (queued(rig), pending(rig)) == (0, 0)


def test_a_double_click_is_stored_once_and_drawn_once(rig: Harness, digest: Digest) -> None:
    value = digest.value("ACC-000002")
    for _ in range(2):
        response = click(rig, "feedback_not_helpful", value, digest=digest, account_id="ACC-000002")
        assert response.status_code == 200
    assert len(list(feedback_store(rig.deps).events())) == 1
    assert rig.deps.redis.xlen(feedback_store(rig.deps).stream) == 1
    assert queued(rig) == 2, "each click queues its refresh"
    assert drain(rig, Clock()).step() == 1
    assert len(updates(rig)) == 1
    assert shown(rig, digest.ts) == {"ACC-000002": f"👎 <@{CSM}>"}
    assert queued(rig) == 0


FIVE = [
    (CSM, "feedback_helpful"),
    (CSM, "feedback_action_done"),
    (OMAR, "feedback_helpful"),
    (OMAR, "feedback_not_helpful"),
    (ADMIN, "feedback_action_done"),
]
ALL_FIVE = {
    "ACC-000001": f"👍 <@{CSM}>, <@{OMAR}> · 👎 <@{OMAR}> · ✅ <@{CSM}>, <@{ADMIN}>",
}


def test_five_quick_clicks_on_one_message_give_two_updates_not_five(
    rig: Harness, digest: Digest
) -> None:
    """The first click is drawn at once; the next four, within the second, share one draw."""
    clock = Clock()
    refreshes = drain(rig, clock)
    value = digest.value("ACC-000001")
    (user, action), *rest = FIVE
    click(rig, action, value, user=user, digest=digest)
    assert refreshes.step() == 1
    for user, action in rest:
        click(rig, action, value, user=user, digest=digest)
    assert refreshes.step() == 0, "drawn less than a second ago: the next draw waits"
    clock.now += 0.5
    assert refreshes.step() == 0
    assert len(updates(rig)) == 1
    clock.now += 0.5
    assert refreshes.step() == 1
    assert len(updates(rig)) == 2
    assert shown(rig, digest.ts) == ALL_FIVE
    assert len(list(feedback_store(rig.deps).events())) == 5
    assert queued(rig) == 0


def test_clicks_queued_before_the_drain_looks_share_one_update(
    rig: Harness, digest: Digest
) -> None:
    value = digest.value("ACC-000001")
    for user, action in FIVE:
        assert click(rig, action, value, user=user, digest=digest).status_code == 200
    assert queued(rig) == 5
    assert drain(rig, Clock()).step() == 1
    assert len(updates(rig)) == 1
    assert shown(rig, digest.ts) == ALL_FIVE
    assert queued(rig) == 0


def test_a_drain_that_dies_after_reading_leaves_the_refresh_to_another(
    rig: Harness, digest: Digest
) -> None:
    click(rig, "feedback_helpful", digest.value("ACC-000001"), digest=digest)
    clock = Clock()
    dead = drain(rig, clock)
    assert dead.read() == 1
    del dead  # gone between reading and drawing, as a killed worker would be
    assert (queued(rig), pending(rig)) == (1, 1)

    # A live drain leaves an entry alone while its reader may still be working on it...
    patient = drain(rig, clock, claim_idle_s=60)
    assert patient.step() == 0
    assert updates(rig) == []
    assert pending(rig) == 1
    # ... and takes it over once it has been idle long enough (here: at once).
    heir = drain(rig, clock, claim_idle_s=0)
    assert heir.step() == 1
    [update] = updates(rig)
    assert update.ok
    assert shown(rig, digest.ts) == {"ACC-000001": f"👍 <@{CSM}>"}
    assert (queued(rig), pending(rig)) == (0, 0)


def test_a_rate_limited_update_waits_for_retry_after_while_other_messages_go_on(
    rig: Harness,
) -> None:
    first, second = post_digest(rig), post_digest(rig)
    for digest in (first, second):
        click(rig, "feedback_helpful", digest.value("ACC-000001"), digest=digest)
    rig.emulator.fail_next("chat.update", status=429, retry_after=30)
    clock = Clock()
    refreshes = drain(rig, clock)

    assert refreshes.step() == 1, "one message drawn, the other put back"
    limited, drawn = updates(rig)
    assert (limited.status, drawn.ok) == (429, True)
    waiting = limited.body["ts"]
    assert drawn.body["ts"] != waiting
    assert shown(rig, drawn.body["ts"]) == {"ACC-000001": f"👍 <@{CSM}>"}
    assert shown(rig, waiting) == {}
    assert queued(rig) == 1

    clock.now += 29
    assert refreshes.step() == 0
    assert len(updates(rig)) == 2, "not retried before Retry-After"
    clock.now += 1
    assert refreshes.step() == 1
    assert updates(rig)[-1].ok
    assert shown(rig, waiting) == {"ACC-000001": f"👍 <@{CSM}>"}
    assert queued(rig) == 0


def test_an_update_slack_refuses_is_dropped_and_a_server_error_tried_again(
    rig: Harness,
) -> None:
    gone, flaky = post_digest(rig), post_digest(rig)
    click(rig, "feedback_helpful", gone.value("ACC-000001"), digest=gone)
    clock = Clock()
    refreshes = drain(rig, clock)
    rig.emulator.fail_next("chat.update", error="message_not_found")
    assert refreshes.step() == 1
    assert (queued(rig), pending(rig)) == (0, 0), "nothing to retry: the message is gone"

    click(rig, "feedback_helpful", flaky.value("ACC-000001"), digest=flaky)
    rig.emulator.fail_next("chat.update", status=503)
    assert refreshes.step() == 0
    assert queued(rig) == 1
    clock.now += RETRY_S
    assert refreshes.step() == 1
    assert updates(rig)[-1].ok
    assert shown(rig, flaky.ts) == {"ACC-000001": f"👍 <@{CSM}>"}


def test_a_drain_starts_again_when_its_queue_was_deleted(rig: Harness, digest: Digest) -> None:
    refreshes = drain(rig, Clock())
    assert refreshes.step() == 0  # the group exists now
    rig.deps.redis.delete(feedback_store(rig.deps).refresh_stream)
    click(rig, "feedback_helpful", digest.value("ACC-000001"), digest=digest)
    assert refreshes.step() == 0, "its group went with the stream"
    assert refreshes.step() == 1, "made again, from the start of the queue"
    assert shown(rig, digest.ts) == {"ACC-000001": f"👍 <@{CSM}>"}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own: ``churnbot worker`` uses the default key prefix."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.crash()


@pytest.mark.slow
def test_churnbot_worker_draws_the_refreshes_the_web_process_queued(
    own_redis: RedisServer, emulator: SlackEmulator, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    env = {
        "CHURNBOT_CONFIG": str(CONFIG),
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": emulator.token,
        "SLACK_API_URL": emulator.base_url,
        "REDIS_URL": url,
    }
    client = connect(url)
    deps = build_deps(load_settings(env), client=client)
    with LoopbackServer(build_wsgi(build_app(deps), deps)) as server:  # a web process alone
        h = Harness(deps, emulator, SlackSender(server.url, SECRET), server.url)
        digest = post_digest(h)
        for user, action in FIVE[:2]:
            click(h, action, digest.value("ACC-000001"), user=user, digest=digest)
        h.sender.close()
    deps.background.shutdown(wait=True)
    assert (updates(h), queued(h)) == ([], 2), "queued, and nothing drew them yet"

    log = tmp_path / "worker.err"
    worker = subprocess.Popen(
        [CHURNBOT, "worker"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        wait_until(lambda: queued(h) == 0, "the worker to draw the queue", timeout=40)
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=40)
    assert code == 0, log.read_text()
    [update] = updates(h)
    assert update.ok
    assert shown(h, digest.ts) == {"ACC-000001": f"👍 <@{CSM}> · ✅ <@{CSM}>"}
    client.close()


@pytest.mark.slow
def test_churnbot_serve_on_the_embedded_store_draws_its_own_refreshes(
    emulator: SlackEmulator, tmp_path: Path
) -> None:
    """Without REDIS_URL no worker can see the web process's store, so it redraws itself."""
    port = free_port()
    env = {
        "CHURNBOT_CONFIG": str(CONFIG),
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": emulator.token,
        "SLACK_API_URL": emulator.base_url,
        "PORT": str(port),
    }
    message = digest_messages(
        DigestContent("Churn risk", "#cs-smb", "today", None, BOOK[:3], "20261123T090000-old")
    )[0]
    web = WebClient(token=emulator.token, base_url=emulator.base_url)
    posted = web.chat_postMessage(channel=CHANNEL, text=message.text, blocks=message.blocks)
    digest = Digest(cast(SnapshotMeta, None), posted["ts"], posted["message"])
    # A button that carries its whole score: it counts even though no snapshot is stored.
    value = FeedbackRef(
        "ACC-000001", "20261123T090000-old", "20261123-abcdef0123", 0.81, "usage-drop", "digest"
    ).to_value()
    log = tmp_path / "serve.err"
    server = subprocess.Popen(
        [CHURNBOT, "serve", "--host", "127.0.0.1"],
        env={k: v for k, v in os.environ.items() if not k.startswith("REDIS")} | env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/healthz"), "churnbot serve to start", timeout=40)
        h = Harness(cast(Deps, None), emulator, SlackSender(url, SECRET), url)
        assert click(h, "feedback_helpful", value, digest=digest).status_code == 200
        emulator.wait_for(lambda call: call.method == "chat.update" and call.ok, timeout=20)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=40)
    assert shown(h, digest.ts) == {"ACC-000001": f"👍 <@{CSM}>"}, log.read_text()
