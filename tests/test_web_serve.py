"""`churnbot serve`: where it listens, Socket Mode without a signing secret, and the
environment it documents in `.env.example`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from slack_bolt import BoltRequest

from bot.app import build_app
from bot.cli import main
from bot.deps import build_deps
from bot.emulator import SlackEmulator
from bot.loopback import LoopbackServer
from bot.settings import EnvSettings, load_settings
from bot.web import build_wsgi
from tests.polling import wait_until
from tests.slack_harness import BOOK, CONFIG, CSM, SECRET, publish

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_lists_every_variable_with_a_comment_and_no_value() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    found = {}
    for number, line in enumerate(lines):
        match = re.fullmatch(r"(?:# )?([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            found[match[1]] = match[2]
            assert lines[number - 1].startswith("#"), f"{match[1]} has no comment above it"
    expected = {field.alias for field in EnvSettings.model_fields.values()}
    assert set(found) == expected
    assert all(value == "" for value in found.values()), found


def socket_settings(emulator: SlackEmulator) -> dict[str, str]:
    return {
        "CHURNBOT_CONFIG": str(CONFIG),
        "SLACK_APP_TOKEN": "xapp-1-test",
        "SLACK_BOT_TOKEN": emulator.token,
        "SLACK_API_URL": emulator.base_url,
    }


def test_socket_mode_needs_no_signing_secret_and_answers(
    real_redis: redis.Redis, emulator: SlackEmulator
) -> None:
    """Requests come over the socket as dicts (no signature); the listeners answer them, and a
    payload of the wrong shape is refused before any listener, in an ack that says why."""
    settings = load_settings(socket_settings(emulator))
    deps = build_deps(settings, client=real_redis, prefix=f"test-{uuid.uuid4().hex}")
    try:
        publish(deps, BOOK)
        app = build_app(deps, socket_mode=True)
        command = {
            "command": "/churn",
            "text": "acme corp",
            "user_id": CSM,
            "team_id": "T0CHURNBOT",
            "response_url": "https://hooks.example/commands/1",
        }
        response = app.dispatch(BoltRequest(body=command, mode="socket_mode"))
        assert response.status == 200
        assert "Acme Corp" in json.loads(response.body)["text"]
        broken = app.dispatch(BoltRequest(body={**command, "user_id": 5}, mode="socket_mode"))
        assert broken.status == 200, "acknowledged: over the socket the ack is the only answer"
        assert broken.body.startswith("churnbot cannot read this request: ")
        with LoopbackServer(build_wsgi(None, deps)) as probes, httpx.Client(timeout=10) as http:
            assert http.get(f"{probes.url}/healthz").status_code == 200
            assert http.get(f"{probes.url}/readyz").json()["redis"] is True
            assert "churnbot_redis_up 1.0" in http.get(f"{probes.url}/metrics").text
            assert http.post(f"{probes.url}/slack/events", content=b"x").status_code == 404
    finally:
        deps.background.shutdown(wait=True)
        keys = list(real_redis.scan_iter(match=f"{deps.prefix}:*", count=1000))
        if keys:
            real_redis.unlink(*keys)


def test_serve_socket_mode_asks_for_the_app_token_not_the_signing_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHURNBOT_CONFIG", str(CONFIG))
    assert main(["serve", "--socket-mode"]) == 2
    err = capsys.readouterr().err
    assert "SLACK_APP_TOKEN" in err
    assert "SLACK_SIGNING_SECRET" not in err


def test_serve_checks_the_bot_token_and_redis_before_it_starts_workers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The workers build the app after the fork; what can be wrong is said before it, in one
    line, rather than as a worker that fails to boot."""
    monkeypatch.setenv("CHURNBOT_CONFIG", str(CONFIG))
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    assert main(["serve"]) == 2
    assert "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "is not reachable" in err
    assert "Traceback" not in err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_serve(env: dict[str, str], *, host: str) -> subprocess.Popen[str]:
    """A real `churnbot serve --host HOST` process: this environment without its Slack and
    churnbot variables, plus ``env``; its stderr is kept for the assertion messages."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHURNBOT_"))}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "churnbot"), "serve", "--host", host],
        env=inherited | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_serve_listens_on_the_host_it_is_given(emulator: SlackEmulator) -> None:
    """A real `churnbot serve --host 127.0.0.2` (gunicorn): answers there, not on 127.0.0.1,
    and starts without Bolt's warning about the token."""
    port = free_port()
    env = {
        "CHURNBOT_CONFIG": str(CONFIG),
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": emulator.token,
        "SLACK_API_URL": emulator.base_url,
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "PORT": str(port),
    }
    server = start_serve(env, host="127.0.0.2")
    answers: list[httpx.Response] = []

    def answered() -> bool:
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        try:
            answers.append(httpx.get(f"http://127.0.0.2:{port}/healthz", timeout=1))
        except httpx.TransportError:
            return False
        return True

    try:
        wait_until(answered, "churnbot serve to answer on 127.0.0.2", timeout=30, interval=0.1)
        assert answers[-1].json() == {"status": "ok"}
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "will be unused" not in err
