"""Shared pieces of the CLI: settings from the real environment, the two output streams, and a
progress display.

Results go to stdout (``out``), so ``churnbot models list | less`` and ``churnbot spec > spec.yaml``
get them; progress, warnings and logs go to stderr (``console``, the older name, kept so every
command that already prints progress through it stays on stderr).

rich is imported when a command first uses ``console`` or ``out`` (PEP 562) or draws a
progress bar: `churnbot serve` reads its settings through this module, and its web process
prints nothing with rich.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

from bot.settings import Settings, load_settings

if TYPE_CHECKING:
    from rich.console import Console

    #: Progress, steps, warnings: stderr, never mixed into a command's results.
    console: Console
    #: A command's results (tables, reports, what was written where): stdout.
    out: Console


@cache
def _console(name: str) -> Console:
    from rich.console import Console

    return Console(stderr=name == "console")


def __getattr__(name: str) -> Console:
    """``console`` and ``out``, each built once, on first use."""
    if name in ("console", "out"):
        return _console(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def settings_from_environment() -> Settings:
    """The only place the CLI reads ``os.environ``."""
    return load_settings(os.environ)


def stop_requested() -> threading.Event:
    """An event set when the process is asked to stop (SIGTERM from the platform, or Ctrl-C),
    for a long-running command to wait on and then finish what it was doing rather than die
    in the middle of it. Call it from the main thread (signal handlers live there)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """Yield a ``progress(done, total)`` callback that drives a terminal progress bar."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console("console"),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None)
        started = False

        def update(done: int, total: int) -> None:
            nonlocal started
            started = True
            bar.update(task, completed=done, total=total)

        try:
            yield update
        finally:
            if not started:  # the job stopped before its first step: no "0/None" bar left
                bar.remove_task(task)


@contextmanager
def status(message: str) -> Iterator[Callable[[str], None]]:
    """Yield a ``step(text)`` callback that shows the current step of a long job."""
    stderr = _console("console")
    with stderr.status(message) as spinner:

        def step(text: str) -> None:
            spinner.update(f"{message}: {text}")
            stderr.print(f"  {text}")

        yield step
