"""A web worker answers its probes before its Bolt app is built, and Slack still gets answers.

``churnbot serve``'s workers build the Bolt app (Bolt, the listeners, their renderers) in a
background thread (``bot.cli.serve.build_in_background``): `/healthz` answers at once, a Slack
request that comes first waits for the app and is answered as any other, and a worker whose app
cannot be built stops as one that failed to boot, so gunicorn stops too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest
import redis
from gunicorn.arbiter import Arbiter
from slack_bolt import App

from bot.app import build_app
from bot.deps import build_deps
from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.loopback import LoopbackServer
from bot.settings import load_settings
from bot.web import build_wsgi
from tests.slack_harness import BOOK, CONFIG, NOW, SECRET, publish
from tests.test_light_processes import JOIN_BUILD, serving, web_environment

#: Slack waits this long for an answer.
SLACK_TIMEOUT_S = 3.0


def test_probes_answer_while_the_app_is_built_and_a_slack_request_waits_for_it(
    real_redis: redis.Redis, emulator: SlackEmulator
) -> None:
    settings = load_settings(
        {
            "CHURNBOT_CONFIG": str(CONFIG),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": emulator.token,
            "SLACK_API_URL": emulator.base_url,
        }
    )
    deps = build_deps(
        settings, client=real_redis, prefix=f"test-{uuid.uuid4().hex}", clock=lambda: NOW
    )
    publish(deps, BOOK)
    app: Future[App] = Future()
    try:
        with (
            LoopbackServer(build_wsgi(app, deps)) as server,
            httpx.Client(timeout=10) as http,
            ThreadPoolExecutor(1) as pool,
        ):
            assert http.get(f"{server.url}/healthz").json() == {"status": "ok"}
            assert http.get(f"{server.url}/readyz").json()["redis"] is True
            sender = SlackSender(server.url, SECRET)
            answer = pool.submit(sender.command, "/churn", "acme corp")
            assert not answer.done()  # no app yet: nothing can have answered it
            app.set_result(build_app(deps))
            response = answer.result(timeout=30)
            sender.close()
        assert response.status_code == 200
        assert "Acme Corp" in response.json()["text"]
    finally:
        deps.background.shutdown(wait=True)
        keys = list(real_redis.scan_iter(match=f"{deps.prefix}:*", count=1000))
        if keys:
            real_redis.unlink(*keys)


#: A worker's factory with settings its app refuses (no signing secret: `churnbot serve`
#: checks that before it forks, so only a bug could get this far), then waiting for the build.
UNBUILDABLE_WORKER = (
    """
import os
from bot.cli.serve import web_app
from bot.settings import load_settings
web_app(load_settings(os.environ))
"""
    + JOIN_BUILD
)


def test_a_worker_whose_app_cannot_be_built_stops_as_failed_to_boot() -> None:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHURNBOT_"))}
    env = {k: v for k, v in web_environment().items() if k != "SLACK_SIGNING_SECRET"}
    done = subprocess.run(
        [sys.executable, "-c", UNBUILDABLE_WORKER],
        env=inherited | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == Arbiter.WORKER_BOOT_ERROR, done.stderr
    assert "could not build the Slack app" in done.stderr
    assert "SLACK_SIGNING_SECRET is not set" in done.stderr


@pytest.mark.slow
def test_serve_answers_a_slack_command_sent_as_soon_as_it_is_healthy(
    emulator: SlackEmulator,
) -> None:
    """A real `churnbot serve`: the first request after the first healthy `/healthz` is a
    signed `/churn`, answered by the listener within Slack's 3 s."""
    slack = {"SLACK_BOT_TOKEN": emulator.token, "SLACK_API_URL": emulator.base_url}
    with serving(slack, probe="/healthz") as (_, url):
        sender = SlackSender(url, SECRET)
        started = time.perf_counter()
        response = sender.command("/churn", "help")
        elapsed = time.perf_counter() - started
        sender.close()
    assert response.status_code == 200
    assert response.json()["text"] == "How to use /churn"
    assert elapsed < SLACK_TIMEOUT_S
