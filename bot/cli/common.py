"""Shared pieces of the CLI: settings from the real environment, the two output streams, and a
progress display.

Results go to stdout (``out``), so ``churnbot models list | less`` and ``churnbot spec > spec.yaml``
get them; progress, warnings and logs go to stderr (``console``, the older name, kept so every
command that already prints progress through it stays on stderr).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bot.settings import Settings, load_settings

#: Progress, steps, warnings: stderr, never mixed into a command's results.
console = Console(stderr=True)
#: A command's results (tables, reports, what was written where): stdout.
out = Console()


def settings_from_environment() -> Settings:
    """The only place the CLI reads ``os.environ``."""
    return load_settings(os.environ)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """Yield a ``progress(done, total)`` callback that drives a terminal progress bar."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def status(message: str) -> Iterator[Callable[[str], None]]:
    """Yield a ``step(text)`` callback that shows the current step of a long job."""
    with console.status(message) as spinner:

        def step(text: str) -> None:
            spinner.update(f"{message}: {text}")
            console.print(f"  {text}")

        yield step
