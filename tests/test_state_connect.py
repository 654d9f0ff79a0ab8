"""The Redis client churnbot connects with (``bot.state.store.connect``)."""

from __future__ import annotations

import os

import pytest
import redis
import redis.utils
from redis._parsers import _HiredisParser
from redis.connection import HiredisRespSerializer

from bot.state import connect
from tests.redis_fixtures import DEFAULT_TEST_REDIS_URL


def test_the_client_parses_replies_and_packs_commands_in_c(real_redis: redis.Redis) -> None:
    """redis-py uses hiredis's parser and command packer when hiredis is installed, which
    the project's dependencies ask for (``redis[hiredis]``): a digest's CPU fell by about a
    fifth with them. A connection of churnbot's own pool, deadline mix-in included, must
    get both; without hiredis it silently falls back to the pure-Python ones."""
    connection = real_redis.connection_pool.get_connection()
    try:
        assert isinstance(connection._parser, _HiredisParser)
        assert isinstance(connection._command_packer, HiredisRespSerializer)
        connection.send_command("PING")
        assert connection.read_response() == "PONG"
    finally:
        real_redis.connection_pool.release(connection)


def test_new_connections_do_not_read_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's version for CLIENT SETINFO is given once; redis-py would otherwise look
    it up in the installed package's metadata for each connection it opens (about 1 ms,
    paid by every thread of a cold worker). New connections here must not consult it."""

    def looked_up() -> str:
        raise AssertionError("a new connection read redis-py's version from package metadata")

    client = connect(os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL))
    monkeypatch.setattr(redis.utils, "get_lib_version", looked_up)
    pool = client.connection_pool
    connections = [pool.get_connection() for _ in range(3)]
    try:
        for connection in connections:
            connection.send_command("PING")
            assert connection.read_response() == "PONG"
    finally:
        for connection in connections:
            pool.release(connection)
        client.close()


@pytest.mark.parametrize(
    "args",
    [
        ("EVALSHA", "0" * 40, 2, "k1", b"k2", "tok\u00e9n \U0001f680", 60000, 1.5, -3, b"\x00\xff"),
        ("SCRIPT LOAD", "return 1"),  # a name with a space: split, as redis-py does
        (b"SET", "k", "v"),  # a bytes name
        ("SET", bytearray(b"k"), memoryview(b"v")),  # arguments redis-py copies into bytes
        ("HSET", "k", "f", ""),
    ],
)
def test_commands_are_packed_as_redis_py_packs_them(
    real_redis: redis.Redis, args: tuple[object, ...]
) -> None:
    """churnbot's connections pack commands with :class:`~bot.state.store._HiredisPacker`,
    which skips redis-py's pass over the arguments when it has nothing to do: the bytes sent
    must be the ones redis-py's own hiredis packer makes, whatever the arguments."""
    connection = real_redis.connection_pool.get_connection()
    try:
        packer = connection._command_packer
        assert type(packer) is not HiredisRespSerializer
        assert packer.pack(*args) == HiredisRespSerializer().pack(*args)
    finally:
        real_redis.connection_pool.release(connection)


def test_what_hiredis_cannot_pack_fails_as_with_redis_py(real_redis: redis.Redis) -> None:
    """An argument neither packer takes is redis-py's ``DataError``, before anything is sent;
    a ``bytearray`` or ``memoryview`` argument is stored as its bytes."""
    with pytest.raises(redis.DataError):
        real_redis.set("churnbot-test:packer", None)  # type: ignore[arg-type]
    try:
        real_redis.set("churnbot-test:packer", memoryview(b"stored"))
        assert real_redis.get("churnbot-test:packer") == "stored"
    finally:
        real_redis.delete("churnbot-test:packer")
