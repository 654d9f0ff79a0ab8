"""The Redis client churnbot connects with (``bot.state.store.connect``)."""

from __future__ import annotations

import redis
from redis._parsers import _HiredisParser
from redis.connection import HiredisRespSerializer


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
