"""The real app on loopback, a Web API emulator, real Redis, and a signed-request sender.

Fixtures for the end-to-end tests: requests go in exactly as Slack sends them, and what the
app calls goes out to the emulator, where the tests read it.
"""

from __future__ import annotations

import datetime as dt
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.app import build_app
from bot.deps import Deps, build_deps
from bot.emulator import SlackEmulator, SlackUser
from bot.emulator.sender import SlackSender
from bot.feedback.drain import DrainThread, running_drain
from bot.loopback import LoopbackServer
from bot.settings import load_settings
from bot.state import SnapshotMeta, connect
from bot.web import build_wsgi

CONFIG = Path(__file__).resolve().parent.parent / "config"
SECRET = "test-signing-secret"
ADMIN = "U0ADMIN001"
CSM = "U0CSM00001"
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def make_card(account_id: str, name: str, risk: float, **extra: Any) -> dict[str, Any]:
    band = "high" if risk >= 0.3 else "medium" if risk >= 0.12 else "low"
    card = {
        "account_id": account_id,
        "account_name": name,
        "owner": "maria.lopez@example.com",
        "segment": "smb",
        "plan": "growth",
        "industry": "Retail",
        "arr": 24_000.0,
        "as_of": "2026-11-23",
        "renewal_date": "2027-01-10",
        "risk": risk,
        "band": band,
        "reasons": [
            {
                "code": "usage_decline",
                "text": "Logins down 48% on the previous 30 days (31 to 16)",
                "impact": 0.9,
            },
            {"code": "renewal", "text": "Renewal in 48 days (Jan 10)", "impact": 0.5},
        ],
        "healthy": None,
        "action": {
            "rule": "usage-drop",
            "action": "Invite the team to an enablement webinar",
            "why": "Falling usage comes before churn",
            "owner": "CSM",
        },
        "model_version": "20261123-abcdef0123",
        "previous_risk": None,
        "change": None,
    }
    card.update(extra)
    return card


BOOK = [
    make_card("ACC-000001", "Acme Corp", 0.81),
    make_card("ACC-000002", "Acme Labs", 0.42),
    make_card("ACC-000003", "Société Générale Test", 0.35),
    make_card("ACC-000004", "Beta Industries", 0.20, owner="omar.haddad@example.com"),
    make_card("ACC-000005", "Gamma Logistics", 0.05, owner="omar.haddad@example.com"),
    make_card("ACC-000006", "<!channel> Evil & Co", 0.15),
]


def publish(
    deps: Deps,
    cards: list[dict[str, Any]],
    *,
    healthy: bool = True,
    created: dt.datetime = NOW,
    as_of: str = "2026-11-23",
) -> SnapshotMeta:
    meta = SnapshotMeta(
        snapshot_id=f"{created:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        as_of=as_of,
        model_version="20261123-abcdef0123",
        created_at=created.isoformat(),
        healthy=healthy,
        n_accounts=len(cards),
        health=[{"name": "freshness", "ok": healthy, "message": "ok" if healthy else "stale"}],
    )
    deps.store.publish_cards(meta, cards)
    return meta


@dataclass
class Harness:
    deps: Deps
    emulator: SlackEmulator
    sender: SlackSender
    url: str
    #: The in-process drain of feedback refreshes (a test may stop it and step its own).
    refreshes: DrainThread | None = None


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    users = [
        SlackUser(id=CSM, name="maria", real_name="Maria Lopez", email="maria.lopez@example.com"),
        SlackUser(
            id="U0OMAR0001", name="omar", real_name="Omar Haddad", email="omar.haddad@example.com"
        ),
        SlackUser(id=ADMIN, name="admin", real_name="Ada Admin", email="ada@example.com"),
    ]
    with SlackEmulator(users=users) as running:
        yield running


@pytest.fixture
def harness(real_redis: redis.Redis, emulator: SlackEmulator) -> Iterator[Harness]:
    prefix = f"test-{uuid.uuid4().hex}"
    settings = load_settings(
        {
            "CHURNBOT_CONFIG": str(CONFIG),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": emulator.token,
            "SLACK_API_URL": emulator.base_url,
        }
    )
    clock = lambda: NOW  # noqa: E731 - a fixed clock for the whole test
    deps = build_deps(settings, client=real_redis, prefix=prefix, clock=clock)
    # No worker runs beside the app here: an in-process drain draws the feedback refreshes.
    with LoopbackServer(build_wsgi(build_app(deps), deps)) as server, running_drain(deps) as drain:
        sender = SlackSender(server.url, SECRET)
        yield Harness(deps, emulator, sender, server.url, drain)
        sender.close()
    deps.background.shutdown(wait=True)
    keys = list(real_redis.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        real_redis.unlink(*keys)


def process_environment(
    emulator: SlackEmulator, redis_url: str, config: Path = CONFIG, **more: str
) -> dict[str, str]:
    """What a churnbot process started by a test reads: the contract of its environment
    variables, pointed at the emulator and a Redis (``more``: SLACK_APP_TOKEN, PORT...)."""
    return {
        "CHURNBOT_CONFIG": str(config),
        "SLACK_BOT_TOKEN": emulator.token,
        "SLACK_API_URL": emulator.base_url,
        "REDIS_URL": redis_url,
        **more,
    }


class RedisServer:
    """A private ``redis-server`` on a free loopback port, which a test may freeze (SIGSTOP:
    the kernel still accepts connections, nothing answers, exactly like a hung Redis), thaw,
    or stop. Waits are bounded polls, never sleeps."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start")

    def _answers(self) -> bool:
        probe = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        try:
            return bool(probe.ping())
        except redis.RedisError:
            return False
        finally:
            probe.close()

    def freeze(self) -> None:
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process.poll() is None:
            self.thaw()
            self._process.terminate()
            self._process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def private_harness(redis_server: RedisServer, emulator: SlackEmulator) -> Iterator[Harness]:
    """The real app on its own redis-server, opened by ``connect`` exactly as ``churnbot serve``
    opens Redis (its timeouts and retries), so a test can freeze or stop that server."""
    settings = load_settings(
        {
            "CHURNBOT_CONFIG": str(CONFIG),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": emulator.token,
            "SLACK_API_URL": emulator.base_url,
            "REDIS_URL": redis_server.url,
        }
    )
    client = connect(redis_server.url)
    deps = build_deps(settings, client=client, clock=lambda: NOW)
    with LoopbackServer(build_wsgi(build_app(deps), deps)) as server:
        sender = SlackSender(server.url, SECRET)
        yield Harness(deps, emulator, sender, server.url)
        sender.close()
        redis_server.thaw()
    deps.background.shutdown(wait=True)
    client.close()
