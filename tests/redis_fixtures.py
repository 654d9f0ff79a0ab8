"""Redis for the state tests: the real server and the embedded store, one prefix per test.

Import the fixtures into a test module (``from tests.redis_fixtures import ...``). The real
server must answer: a missing Redis fails the run loudly instead of skipping the tests that
matter most. Tests share that server, so each one works under its own ``test-<uuid>`` prefix
and deletes exactly its own keys afterwards (never FLUSHDB).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from bot.state.store import StoreUnavailable, _embedded_server, connect

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def real_redis() -> Iterator[redis.Redis]:
    """The real Redis at ``TEST_REDIS_URL`` (default 127.0.0.1:6379/0), checked once."""
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    try:
        client = connect(url)
    except StoreUnavailable as exc:
        pytest.fail(
            f"The state tests need a running Redis: {exc}. Start redis-server, or point "
            "TEST_REDIS_URL at one.",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture(params=["real", "embedded"])
def redis_client(request: pytest.FixtureRequest) -> redis.Redis:
    """Each test runs against the real server and against the embedded store."""
    if request.param == "real":
        return request.getfixturevalue("real_redis")
    return connect(None)


def own_prefix(client: redis.Redis) -> Iterator[str]:
    """A key prefix no other test uses; its keys in ``client`` are removed afterwards."""
    prefix = f"test-{uuid.uuid4().hex}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1_000))
    if keys:
        client.unlink(*keys)


@pytest.fixture
def key_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix no other test uses; its keys are removed after the test."""
    yield from own_prefix(redis_client)


@pytest.fixture
def real_prefix(real_redis: redis.Redis) -> Iterator[str]:
    """A prefix of the test's own on the real server, its keys removed afterwards."""
    yield from own_prefix(real_redis)


@pytest.fixture
def empty_embedded_store() -> Iterator[None]:
    """The process's embedded store (no REDIS_URL), empty for this test and emptied after
    it: a CLI run in another test must not leave snapshots this one compares against."""
    _embedded_server.cache_clear()
    yield
    _embedded_server.cache_clear()
