"""Counting a child process's instructions with valgrind's callgrind, for the benches whose
figure must not move with the machine's speed or load (``digest_instructions.py``,
``click_instructions.py``).

The child runs under callgrind with collection off (``--instr-atstart=no``); it warms up,
switches collection on for what it counts and off again (:func:`collect`), and the parent
reads the total callgrind prints at exit (:func:`counted`). Imported as
``from _callgrind import ...``, like ``_common``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def require_valgrind() -> None:
    """Exit with what to install when valgrind or callgrind_control is missing."""
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"{' and '.join(missing)} not found: install valgrind first")


def counted(arguments: list[str], out: Path, what: str, **run: Any) -> tuple[int, str]:
    """Instructions callgrind collected while this interpreter ran ``arguments`` (a script
    and its arguments), and the child's stderr; ``out``: callgrind's output file; ``run``:
    more of ``subprocess.run``'s arguments (``env``, ``cwd``). Exits naming ``what`` if the
    child failed or callgrind counted nothing."""
    child = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            *arguments,
        ],
        capture_output=True,
        text=True,
        check=False,
        **run,
    )
    collected = re.search(r"Collected : (\d+)", child.stderr)
    if child.returncode != 0 or collected is None:
        raise SystemExit(f"{what} failed under valgrind:\n{child.stderr[-3000:]}")
    return int(collected.group(1)), child.stderr


def collect(state: str) -> None:
    """Switch callgrind's collection in this process on or off."""
    subprocess.run(
        ["callgrind_control", "--instr", state, str(os.getpid())], check=True, capture_output=True
    )
