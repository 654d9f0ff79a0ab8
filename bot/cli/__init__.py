"""The ``churnbot`` command line: one module per command, ``main(argv)`` for tests.

Every :class:`~models.errors.ChurnbotError` becomes a one-line-per-problem message on stderr
and exit status 2; a user never sees a traceback for a problem they can fix. Results go to
stdout, progress and logs to stderr (logs as JSON lines when stderr is not a terminal).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from bot.cli import (
    check_config,
    demo,
    feedback,
    init,
    models_cmd,
    sample_data,
    score,
    serve,
    train,
    worker,
)
from bot.logs import configure_logging
from models.errors import ChurnbotError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="churnbot", prog_name="churnbot")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def cli(verbose: bool) -> None:
    """churnbot: churn-risk digests for customer-success teams, in Slack."""
    configure_logging(verbose=verbose)


for module in (
    init,
    sample_data,
    train,
    score,
    serve,
    worker,
    models_cmd,
    check_config,
    demo,
    feedback,
):
    module.register(cli)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status instead of exiting, so tests can call it."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except ChurnbotError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except Exception as exc:  # a bug, not a user mistake: say so without a traceback
        logging.getLogger("churnbot").debug("unexpected error", exc_info=True)
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (run with -v for details)", err=True
        )
        return 1
    return 0


def entry_point() -> None:
    sys.exit(main())
