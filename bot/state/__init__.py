"""Shared state behind a small interface: snapshots and the kill switch, in Redis or embedded.

Nothing here connects at import time; build a client with :func:`connect` and pass it in.
"""

from bot.state.killswitch import KillSwitch, KillSwitchState, serving_snapshot
from bot.state.snapshots import SnapshotExists, SnapshotMeta, SnapshotNotFound, SnapshotStore
from bot.state.store import StoreError, StoreUnavailable, connect, ping

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
