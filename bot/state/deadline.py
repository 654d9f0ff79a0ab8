"""A deadline for all the Redis calls made while answering one Slack request.

redis-py bounds each socket operation and retries each command, so against a hung Redis one
command costs its timeout times its attempts plus backoff, and a request makes several commands:
6 to 19 s were measured, while Slack gives up after 3 s and shows its own timeout error. Inside
``with deadline(seconds):`` every connect and read waits at most what is left of the budget,
backoff never sleeps past it, and once it is spent the next command fails at once with
``redis.TimeoutError`` (which ``translate_errors`` turns into ``StoreUnavailable``), so the
listener still has time to give the user churnbot's own "cannot reach its data" answer.

The budget lives in a context variable: it follows the request's thread and stops there. Work
handed to another thread (after the ack) and the worker process run without one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis
from redis.backoff import AbstractBackoff

_END: ContextVar[float | None] = ContextVar("churnbot_redis_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Give the Redis calls inside this block ``seconds`` in all (nested blocks only shorten)."""
    end = time.monotonic() + seconds
    outer = _END.get()
    token = _END.set(end if outer is None else min(outer, end))
    try:
        yield
    finally:
        _END.reset(token)


@contextmanager
def paused() -> Iterator[None]:
    """Stop the current budget's clock for work that is not Redis, such as a module's first
    import (`/churn-admin stats` loads pandas on first use, which on a busy machine can take
    longer than the whole budget and would make the next Redis call fail although Redis is
    fine). The budget ends later by exactly the time spent inside."""
    end = _END.get()
    started = time.monotonic()
    try:
        yield
    finally:
        if end is not None:
            _END.set(end + (time.monotonic() - started))


def remaining() -> float | None:
    """Seconds left in the current budget; None outside any; TimeoutError once it is spent."""
    end = _END.get()
    if end is None:
        return None
    left = end - time.monotonic()
    if left <= 0:
        raise redis.TimeoutError("the time this request may spend on Redis is up")
    return left


def capped(seconds: float) -> float:
    """``seconds``, or less if the current budget ends sooner (0 once it is spent): for a wait
    on work that talks to Redis in another thread, where the budget does not follow."""
    end = _END.get()
    return seconds if end is None else max(0.0, min(seconds, end - time.monotonic()))


class DeadlineBackoff(AbstractBackoff):
    """Another backoff whose pauses never run past the current deadline."""

    def __init__(self, inner: AbstractBackoff) -> None:
        self._inner = inner

    def reset(self) -> None:
        self._inner.reset()

    def compute(self, failures: int) -> float:
        return capped(self._inner.compute(failures))


class _DeadlineConnection:
    """Mixed in before a redis-py connection class: connect and read within the deadline.

    Writes only check that time is left: a command is a few hundred bytes, which the kernel
    buffers even when the server is frozen; the wait is always on the read.
    """

    socket_connect_timeout: float | None
    socket_timeout: float | None

    def _connect(self) -> Any:
        left = remaining()
        if left is None:
            return super()._connect()  # type: ignore[misc]
        configured = self.socket_connect_timeout
        self.socket_connect_timeout = left if configured is None else min(configured, left)
        try:
            return super()._connect()  # type: ignore[misc]
        finally:
            self.socket_connect_timeout = configured

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        remaining()
        super().send_packed_command(command, check_health)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        left = remaining()
        if left is not None and "timeout" not in kwargs:
            configured = self.socket_timeout
            kwargs["timeout"] = left if configured is None else min(configured, left)
        return super().read_response(*args, **kwargs)  # type: ignore[misc]


def with_deadlines(client: redis.Redis) -> redis.Redis:
    """Make ``client``'s future connections honour :func:`deadline` (call before first use)."""
    pool = client.connection_pool
    base = pool.connection_class
    if not issubclass(base, _DeadlineConnection):
        pool.connection_class = type(f"Deadline{base.__name__}", (_DeadlineConnection, base), {})
    return client
