"""The one place churnbot opens Redis, so every process talks to it with the same options.

``REDIS_URL`` set: a ``redis.Redis`` whose timeouts, retries and protocol are chosen here rather
than inherited from redis-py's defaults (redis-py 8.0 changed them to a 5 s socket timeout, 10
retries and RESP3, which would hold a slash command past Slack's 3 s). Unset: the embedded
in-process store (fakeredis with Lua), which lets the demo and a laptop run without a server, at
the price of persisting nothing, so it says so loudly. fakeredis is a test fake, so it is not a
runtime dependency: it comes with the optional ``embedded`` extra (and the dev extra), and is
imported only when the embedded store is asked for.

A lost Redis must reach a Slack user as an honest message, never a traceback: connection
failures become :class:`StoreUnavailable` (a ``ChurnbotError``), and no message ever carries the
password of the URL.
"""

from __future__ import annotations

import functools
import logging
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import HiredisRespSerializer
from redis.driver_info import DriverInfo
from redis.retry import Retry
from redis.utils import HIREDIS_AVAILABLE

from bot.state.deadline import DeadlineBackoff, with_deadlines
from models.errors import ChurnbotError, ConfigError

if TYPE_CHECKING:
    import fakeredis

if HIREDIS_AVAILABLE:
    import hiredis

_log = logging.getLogger(__name__)

#: A slash command must be answered within Slack's 3 s: a Redis call may not hang longer than this.
SOCKET_TIMEOUT_S = 2.0
#: Connections idle longer than this are PINGed before use, so a connection silently dropped by
#: a load balancer or NAT surfaces as a reconnect rather than as a failed command.
HEALTH_CHECK_INTERVAL_S = 30
#: Few retries with short, jittered backoff: enough to ride out a failover blip, short enough
#: that a dead Redis is reported within a few seconds instead of after redis-py's 10 retries.
RETRIES = 2
_MASK = "***"


class StoreError(ChurnbotError):
    """Shared state in Redis (or the embedded store) could not be read or written as asked."""


class StoreUnavailable(StoreError):
    """Redis does not answer (refused, timed out, wrong password, ...)."""


def mask_url(url: str) -> str:
    """``url`` with any password (userinfo or ``?password=``) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{_MASK}@{hostport}"
    query = urlencode(
        [
            (key, _MASK if key == "password" else value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _scrub(text: str, url: str) -> str:
    """Remove the URL's password from ``text`` (e.g. a library's error message), raw or decoded."""
    parts = urlsplit(url)
    secrets = [parts.password or ""]
    secrets += [v for k, v in parse_qsl(parts.query) if k == "password"]
    for secret in filter(None, secrets):
        for form in {secret, unquote(secret)}:
            text = text.replace(form, _MASK)
    return text


def describe(r: redis.Redis) -> str:
    """Where ``r`` points, for messages; built from the pool's options, so no password in it."""
    if is_embedded(r):
        return "the embedded in-process store"
    kwargs = r.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={db}"
    tls = issubclass(r.connection_pool.connection_class, redis.SSLConnection)
    return f"{'rediss' if tls else 'redis'}://{kwargs.get('host')}:{kwargs.get('port')}/{db}"


class translate_errors:
    """Turn Redis failures into churnbot errors the caller can show as a plain message.

    A class rather than a ``@contextmanager`` generator: churnbot makes every Redis call in one
    of these, and a generator's context manager costs about four times as much to enter and
    leave (a digest makes three or four)."""

    __slots__ = ("_r",)

    def __init__(self, r: redis.Redis) -> None:
        self._r = r

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            # AuthenticationError is a ConnectionError too. Not chained: the text says it all,
            # and the original may carry connection details we do not want in logs.
            raise StoreUnavailable(
                f"Redis at {describe(self._r)} is not reachable: {exc}"
            ) from None
        if isinstance(exc, redis.ResponseError):
            # e.g. "OOM command not allowed" when a noeviction Redis is full.
            raise StoreError(f"Redis at {describe(self._r)} refused a command: {exc}") from None


#: Delete a lock key only if it still holds our token (a lease that ran out may be someone
#: else's now). KEYS[1] the lock, ARGV[1] our token.
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def book_root(prefix: str, book: str, *, owner: str) -> str:
    """``<prefix>:{<book>}:``, the start of every key of a book; ``{book}`` is the hash tag
    that keeps a book's keys in one Redis Cluster slot, so braces elsewhere would break it."""
    for name, value in (("prefix", prefix), ("book", book)):
        if not value or "{" in value or "}" in value:
            raise ValueError(
                f"The '{name}' parameter of {owner} must be a non-empty string without braces "
                f"(they delimit the hash tag). Got {value!r} instead."
            )
    return f"{prefix}:{{{book}}}:"


class _HiredisPacker(HiredisRespSerializer):
    """redis-py's hiredis command packer, without its pass over the arguments in Python when
    that pass has nothing to do. redis-py splits a command name with a space (``SCRIPT LOAD``)
    and copies each ``bytearray`` or ``memoryview`` argument into ``bytes`` before hiredis packs
    them, and it makes that test for every argument of every command: a generator and an
    ``isinstance`` per argument, about 1.3K instructions each, and a digest sends some 120
    arguments (its plan, exposures, audit entry). Here hiredis packs the arguments as given
    when the name has no space; what it does not take (a ``bytes`` name, a ``bytearray``
    argument) raises ``TypeError`` before anything is sent, and goes redis-py's way, which
    converts it or raises its ``DataError``. The same bytes either way."""

    def pack(self, *args: Any) -> list[bytes]:
        try:
            if " " not in args[0]:  # a bytes name raises TypeError here
                return [hiredis.pack_command(args)]
        except TypeError:
            pass
        return super().pack(*args)


def is_embedded(r: redis.Redis) -> bool:
    """True for a client of the embedded store. Never imports fakeredis: if it was never
    imported, no client of it exists."""
    fake = sys.modules.get("fakeredis")
    return fake is not None and isinstance(r, fake.FakeRedis)


@functools.cache
def _embedded_server() -> fakeredis.FakeServer:
    """One embedded store per process, so every part of the app sees the same state."""
    import fakeredis  # embedded() checked that it is installed

    return fakeredis.FakeServer()


def embedded() -> redis.Redis:
    """A client of this process's embedded store, without :func:`connect`'s warning (for a
    caller that explains the choice itself, such as ``churnbot demo``)."""
    try:
        import fakeredis
    except ModuleNotFoundError:
        raise ConfigError(
            "environment: the embedded in-process store (used when REDIS_URL is not set, and "
            "by `churnbot demo`) is not installed. Install it with "
            "pip install 'churnbot[embedded]', or set REDIS_URL to your Redis server "
            "(e.g. redis://localhost:6379/0)."
        ) from None
    return fakeredis.FakeRedis(server=_embedded_server(), decode_responses=True, protocol=2)


def connect(redis_url: str | None, *, logger: logging.Logger = _log) -> redis.Redis:
    """A checked Redis client for ``redis_url`` (``REDIS_URL``), or the embedded store if None.

    The client PINGs once here so a wrong URL or a dead server fails at start-up with a
    :class:`StoreUnavailable` naming the (masked) URL, not at the first Slack request.
    RESP2 (``protocol=2``) because every Redis-compatible server and proxy speaks it and
    churnbot needs nothing from RESP3; ``decode_responses`` because all values are text.
    """
    if redis_url is None:
        client = embedded()
        logger.warning(
            "REDIS_URL is not set: using the embedded in-process store. Nothing persists "
            "across restarts and processes do not share state; set REDIS_URL in production."
        )
        return client
    try:
        client = redis.Redis.from_url(
            redis_url,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            retry=Retry(DeadlineBackoff(ExponentialWithJitterBackoff(base=0.05, cap=0.5)), RETRIES),
            protocol=2,
            decode_responses=True,
            client_name="churnbot",
            # The version CLIENT SETINFO reports, given once: left unset, redis-py reads it
            # from the package metadata for every new connection (about 1 ms each, so a
            # cold worker's first hundred connections paid about 0.1 s for it).
            driver_info=DriverInfo(lib_version=redis.__version__),
            command_packer=_HiredisPacker() if HIREDIS_AVAILABLE else None,
        )
    except ValueError as exc:
        raise ConfigError(
            f"environment: REDIS_URL must be a redis://, rediss:// or unix:// URL; "
            f"got {mask_url(redis_url)!r} instead ({_scrub(str(exc), redis_url)})."
        ) from None
    with_deadlines(client)  # a request's `deadline(...)` bounds every call it makes
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise StoreUnavailable(
            f"Redis at {mask_url(redis_url)} is not reachable: {_scrub(str(exc), redis_url)}"
        ) from None
    return client


def ping(r: redis.Redis) -> bool:
    """True if Redis answers now (for readiness checks, which must not raise)."""
    try:
        return bool(r.ping())
    except redis.RedisError:
        return False
