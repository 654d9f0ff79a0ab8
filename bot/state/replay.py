"""The replay guard: a Slack request's signature is used once, whoever checks it.

The web door (``bot.door``) remembers every signature it lets through, so a captured request
sent again is refused. It checks in a Redis round trip of its own before Bolt sees the
request, unless the request is one whose listener writes to Redis anyway and can claim the
signature in that same write (``bot.middleware.FOLDED_REPLAY``: a feedback click). Then the
door hands the guard down as the request's pending guard (:func:`deferred`, a context
variable that follows the request's thread as ``bot.state.deadline`` does), the listener's
script claims it atomically with its effect (a replayed click changes nothing), and the door
refuses the request afterwards if the signature had been used. Why: a click's answer waits
on Redis, and a round trip of its own for the guard doubled its round trips, each one a wait
for Redis and then for the interpreter lock on a busy web process.

A listener that takes the guard settles it before any other effect: in its write, or with
:meth:`SeenSignature.settle` when it writes nothing (a note to the user must not be sent
again by a replay). Either way the claim stores a token of this request, so a claim that
redis-py sends again after its reply timed out finds its own token, not a replay.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import redis

from bot.state.store import StoreError, translate_errors

log = logging.getLogger(__name__)


class SignatureReplayed(Exception):
    """A write that claims the request's signature found it used by another request."""


@dataclass
class SeenSignature:
    """The guard of one request: its signature, remembered for ``ttl_s`` once claimed under
    ``root`` (the door's key prefix, or the root of the keys a listener's script writes, so
    that a Redis Cluster finds them in one slot). ``first`` is None until settled."""

    signature: str
    root: str
    ttl_s: int
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    first: bool | None = None

    def key(self, root: str | None = None) -> str:
        return f"{self.root if root is None else root}seen-signature:{self.signature}"

    def settle(self, r: redis.Redis) -> bool:
        """Claim the signature in a round trip of its own; True if this request is its first
        use (StoreError if Redis cannot be asked, and the guard stays unsettled)."""
        key = self.key()
        with translate_errors(r):
            first = r.set(key, self.token, nx=True, ex=self.ttl_s) or r.get(key) == self.token
        self.first = bool(first)
        return self.first


_PENDING: ContextVar[SeenSignature | None] = ContextVar("churnbot_replay_guard", default=None)


@contextmanager
def deferred(guard: SeenSignature) -> Iterator[SeenSignature]:
    """Within this block, ``guard`` is the request's guard for a listener to settle."""
    token = _PENDING.set(guard)
    try:
        yield guard
    finally:
        _PENDING.reset(token)


def pending() -> SeenSignature | None:
    """The current request's guard if a listener is to settle it and none has yet."""
    guard = _PENDING.get()
    return guard if guard is not None and guard.first is None else None


def first_use(guard: SeenSignature, r: redis.Redis) -> bool:
    """True unless ``guard``'s signature was used by another request, settling it in a round
    trip of its own if nothing settled it yet. If Redis cannot be asked the request goes on:
    every effect it could have needs Redis too, and its listener says so honestly."""
    if guard.first is not None:
        return guard.first
    try:
        return guard.settle(r)
    except StoreError as exc:
        log.warning("could not check a Slack request for replay, handling it: %s", exc)
        return True


def settle_pending(r: redis.Redis) -> bool:
    """:func:`first_use` of the current request's guard, settling it if nothing did yet (True
    if the door checked it itself): before a note to the user, which a replay must not send
    again. For a listener that took the guard and then had nothing to write, and for the app's
    error handler when a listener failed before settling it (two copies of a request in flight
    at once would otherwise both fail and both say so); a guard a write already settled
    answers as it was settled, so a replay whose listener failed after its write says
    nothing."""
    guard = _PENDING.get()
    return guard is None or first_use(guard, r)
