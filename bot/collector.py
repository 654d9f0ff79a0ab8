"""Python's cyclic garbage collector paused around work that makes many long-lived objects.

A collection walks every tracked object; while a block builds hundreds of thousands of objects
in no reference cycle (a publish's names and index entries, the imports and settings of a
start), its passes walk them again and again and free nothing. Used by the snapshot store's
publish and by ``churnbot serve``'s start.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off for the block, then on again only if it was on before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
