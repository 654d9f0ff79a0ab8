"""The churnbot CLI run in-process as a user runs it, with what it printed kept apart:
results on stdout, progress and notes on stderr, and never a stack trace in either."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from bot.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    """``churnbot ARGV...``: its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()
