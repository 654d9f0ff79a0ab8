"""Shared state behind a small interface: snapshots and the kill switch, in Redis or embedded.

Nothing here connects at import time; build a client with :func:`connect` and pass it in.

The snapshot store and the kill switch are imported on first use of their names (PEP 562):
the snapshot store needs numpy, and a module that only needs the connection helpers (the web
door, the feedback store) should not pay for it on import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bot.state.store import StoreError, StoreUnavailable, connect, ping

if TYPE_CHECKING:
    from bot.state.killswitch import KillSwitch, KillSwitchState, serving_snapshot
    from bot.state.snapshots import (
        SnapshotExists,
        SnapshotMeta,
        SnapshotNotFound,
        SnapshotStore,
    )

_LAZY = {
    "KillSwitch": "bot.state.killswitch",
    "KillSwitchState": "bot.state.killswitch",
    "serving_snapshot": "bot.state.killswitch",
    "SnapshotExists": "bot.state.snapshots",
    "SnapshotMeta": "bot.state.snapshots",
    "SnapshotNotFound": "bot.state.snapshots",
    "SnapshotStore": "bot.state.snapshots",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "KillSwitch",
    "KillSwitchState",
    "SnapshotExists",
    "SnapshotMeta",
    "SnapshotNotFound",
    "SnapshotStore",
    "StoreError",
    "StoreUnavailable",
    "connect",
    "ping",
    "serving_snapshot",
]
