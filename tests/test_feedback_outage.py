"""Redis going away in the middle of a click, and coming back.

Runs a private ``redis-server`` (AOF on, fsync always, so a crash after a confirmed write
loses nothing) that the test kills and restarts, and a TCP proxy in front of it that can lose
the reply to one command after Redis ran it: the case where redis-py 8 retries a write that
already happened (on a timeout it retries by default, and cannot know the command ran).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bot.app import build_app
from bot.deps import build_deps
from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.feedback import feedback_store
from bot.feedback.capture import Recorder
from bot.feedback.drain import running_drain
from bot.feedback.events import FeedbackEvent
from bot.feedback.render import failure_text
from bot.loopback import LoopbackServer
from bot.render import FeedbackRef
from bot.settings import load_settings
from bot.state import connect
from bot.web import build_wsgi
from tests.polling import wait_until
from tests.slack_harness import CONFIG, CSM, NOW, SECRET, Harness
from tests.test_feedback_e2e import (
    CHANNEL,
    Digest,
    click,
    lines,
    open_modal,
    post_digest,
    radio,
    submit,
)

READY_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of our own on a free port, with its AOF in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_timeout=0.5)

        def answers() -> bool:
            with contextlib.suppress(redis.ConnectionError):
                return bool(probe.ping())
            return False

        wait_until(answers, f"redis-server on port {self.port} to start", timeout=READY_TIMEOUT_S)
        probe.close()

    def crash(self) -> None:
        """SIGKILL: no shutdown, no final save; only what the AOF already holds survives."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    own = RedisServer(tmp_path)
    own.start()
    yield own
    if own.process is not None:
        own.crash()


class ReplyDropper:
    """A TCP proxy to Redis that, once armed, forwards the next command containing a marker
    and then cuts the connection instead of returning Redis's reply."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.marker: bytes | None = None
        self.dropped = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes) -> None:
        with self.lock:
            self.marker = marker

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                cut = threading.Event()
                threading.Thread(target=self._up, args=(client, upstream, cut), daemon=True).start()
                threading.Thread(
                    target=self._down, args=(client, upstream, cut), daemon=True
                ).start()

    def _up(self, client: socket.socket, upstream: socket.socket, cut: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                with self.lock:
                    if self.marker is not None and self.marker in data:
                        self.marker = None
                        cut.set()  # before forwarding, so the reply cannot slip through
                upstream.sendall(data)

    def _down(self, client: socket.socket, upstream: socket.socket, cut: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if cut.is_set():
                    with self.lock:
                        self.dropped += 1
                    break
                client.sendall(data)
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


@dataclass
class Rig:
    harness: Harness
    digest: Digest


@contextlib.contextmanager
def app_on(url: str) -> Iterator[Rig]:
    """The real app on loopback, on the Redis at ``url``, with a digest posted."""
    with SlackEmulator() as emulator:
        settings = load_settings(
            {
                "CHURNBOT_CONFIG": str(CONFIG),
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_BOT_TOKEN": emulator.token,
                "SLACK_API_URL": emulator.base_url,
            }
        )
        client = connect(url)
        deps = build_deps(
            settings, client=client, prefix=f"test-{uuid.uuid4().hex}", clock=lambda: NOW
        )
        with LoopbackServer(build_wsgi(build_app(deps), deps)) as loopback, running_drain(deps):
            sender = SlackSender(loopback.url, SECRET)
            harness = Harness(deps, emulator, sender, loopback.url)
            yield Rig(harness, post_digest(harness))
            sender.close()
        deps.background.shutdown(wait=True)
        client.close()


def test_redis_going_away_mid_click_and_coming_back(server: RedisServer) -> None:
    with app_on(f"redis://127.0.0.1:{server.port}/0") as rig:
        h, digest = rig.harness, rig.digest
        store = feedback_store(h.deps)
        value = digest.value("ACC-000001")
        assert click(h, "feedback_helpful", value, digest=digest).status_code == 200
        h.emulator.wait_for("chat.update")
        modal = open_modal(h, digest)

        server.crash()
        lost = h.emulator.response_url("while-down")
        response = click(h, "feedback_action_done", value, digest=digest, response_url=lost)
        assert response.status_code == 200, "acknowledged, not an error page"
        [told] = h.emulator.wait_for(lambda call: call.response_url_name == "while-down")
        assert "was *not* saved" in told.body["text"]
        assert "click the button again" in told.body["text"]
        refused = submit(h, modal, {"real_state": radio("churned")})
        assert refused.json()["response_action"] == "errors"
        assert "not* saved" in refused.json()["errors"]["note"]

        server.start()  # the same port, the AOF replayed
        [kept] = list(store.events())
        assert (kept.kind, kept.user) == ("helpful", CSM), "the confirmed click survived a crash"
        assert h.deps.redis.xlen(store.stream) == 1, "the failed click left nothing behind"

        again = click(h, "feedback_action_done", value, digest=digest)
        assert again.status_code == 200
        assert submit(h, modal, {"real_state": radio("churned")}).text in ("", "null")
        assert [e.kind for e in store.events()] == ["helpful", "action_done", "correction"]
        shown = {"ACC-000001": f"👍 <@{CSM}> · ✏️ <@{CSM}> · ✅ <@{CSM}>"}
        # Answers close together share one redraw (bot.feedback.refresh): wait for the lines.
        wait_until(lambda: lines(h.emulator.history(CHANNEL)[0]) == shown, "all three", timeout=10)


def test_a_reply_lost_after_the_write_is_retried_without_a_duplicate(server: RedisServer) -> None:
    proxy = ReplyDropper(server.port)
    try:
        with app_on(f"redis://127.0.0.1:{proxy.port}/0") as rig:
            h, digest = rig.harness, rig.digest
            store = feedback_store(h.deps)
            proxy.arm(b"event_id")  # the record script's arguments
            response = click(h, "feedback_helpful", digest.value("ACC-000001"), digest=digest)
            assert response.status_code == 200
            assert proxy.dropped == 1, "Redis ran the write and its reply was lost"
            assert h.deps.redis.xlen(store.stream) == 1
            h.emulator.wait_for("chat.update")
            [message] = h.emulator.history(CHANNEL)
            assert lines(message) == {"ACC-000001": f"👍 <@{CSM}>"}, "and the user saw it saved"
    finally:
        proxy.close()


def test_a_store_too_slow_for_slack_is_reported_unconfirmed_and_a_retry_counts_once(
    server: RedisServer,
) -> None:
    """Redis that stops answering (not refusing): the click is answered within the deadline
    with "could not confirm", and the write that lands later is not doubled by the retry."""
    client = connect(f"redis://127.0.0.1:{server.port}/0")
    settings = load_settings({"CHURNBOT_CONFIG": str(CONFIG)})
    deps = build_deps(settings, client=client, clock=lambda: NOW)
    store = feedback_store(deps)
    recorder = Recorder(deps, store, b"secret", deadline_s=0.2)
    ref = FeedbackRef("ACC-000001", "snap-1", "m1", 0.8, "usage-drop", "digest")

    def build() -> FeedbackEvent:
        return recorder.event("helpful", ref, CSM, card=None)

    redis.Redis(port=server.port).execute_command("CLIENT", "PAUSE", 800, "WRITE")
    assert recorder.save(build, CSM, None).status == "unconfirmed"
    wait_until(
        lambda: client.xlen(store.stream) > 0, "the paused write to land", timeout=READY_TIMEOUT_S
    )
    again = recorder.save(build, CSM, None)
    assert again.status == "saved"
    assert again.recorded is not None
    assert not again.recorded.fresh
    assert client.xlen(store.stream) == 1
    assert "could not confirm" in failure_text("unconfirmed", retry="click the button")
    client.close()
