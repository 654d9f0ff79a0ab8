"""Typed views of Redis replies, for the type checker only.

Every client churnbot reads with is opened with ``decode_responses=True`` (``store.connect``,
and the FakeRedis of the demo and the tests), so Redis answers ``str``. redis-py annotates one
signature for both modes (``bytes | str``) and stream entries as possibly ``None`` (only
XCLAIM and friends return those). These helpers narrow a reply at the single point where it is
read: each is a ``cast``, with no check and no conversion, so nothing changes at run time.

Writes have the opposite problem: redis-py takes ``dict[FieldT, EncodableT]`` (a ``Mapping``
for HSET), which is invariant in its key type, so a plain ``dict[str, str]`` is rejected
although ``str`` is a ``FieldT``; :func:`as_fields` states that widening.
"""

from __future__ import annotations

from typing import TypeAlias, TypeVar, cast

from redis.typing import EncodableT, FieldT, StreamRangeResponse, ZSetRangeResponse

#: The field/value mapping of XADD and HSET.
Fields: TypeAlias = dict[FieldT, EncodableT]
_V = TypeVar("_V", bound=EncodableT)

#: One stream entry as a decoding client returns it: (entry id, fields).
Entry: TypeAlias = tuple[str, dict[str, str]]


def as_fields(mapping: dict[str, _V]) -> Fields:
    """``mapping`` (str keys) as the field mapping XADD and HSET take; the same object."""
    return cast(Fields, mapping)


def text(reply: bytes | str) -> str:
    """A string reply (GET of an existing key, XADD's id, a member, ...)."""
    return cast(str, reply)


def maybe_text(reply: bytes | str | None) -> str | None:
    """A string reply that is None when the key or field is missing (GET, HGET)."""
    return cast("str | None", reply)


def texts(reply: list[bytes | str]) -> list[str]:
    """A list of strings (LRANGE, ZRANGEBYLEX, ...)."""
    return cast("list[str]", reply)


def members(reply: ZSetRangeResponse) -> list[str]:
    """The members of a ZRANGE-family reply asked without scores."""
    return cast("list[str]", reply)


def text_set(reply: set[bytes | str]) -> set[str]:
    """A set of strings (SMEMBERS)."""
    return cast("set[str]", reply)


def text_hash(reply: dict[bytes | str, bytes | str]) -> dict[str, str]:
    """A hash (HGETALL)."""
    return cast("dict[str, str]", reply)


def entries(reply: StreamRangeResponse | None) -> list[Entry]:
    """The entries of XRANGE / XREVRANGE (a list, empty for a missing stream, never None)."""
    return cast("list[Entry]", reply)
