"""The ``churnbot`` command line: one module per command, ``main(argv)`` for tests.

Every :class:`~models.errors.ChurnbotError` becomes a one-line-per-problem message on stderr
and exit status 2; a user never sees a traceback for a problem they can fix. Results go to
stdout, progress and logs to stderr (logs as JSON lines when stderr is not a terminal).
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

import click

from bot.logs import configure_logging
from models.errors import ChurnbotError

#: Every command: its module under ``bot.cli``, the click object in it, and its one-line
#: summary for ``churnbot --help`` (the first sentence of its docstring; a test keeps the two
#: equal). Listed here so that help and each command import only what that command runs:
#: ``churnbot serve`` and ``churnbot --help`` never load pandas or scikit-learn.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check-config": (
        "check_config",
        "check_config",
        "Check every config file and report all problems in one pass.",
    ),
    "demo": (
        "demo",
        "command",
        "Generate (or reuse) the sample book, train, score, and show the digest (then the same "
        "digest with the kill switch on).",
    ),
    "export": (
        "export",
        "group",
        "Send the scores out of Slack: to a file or a SQL table, for BI and CRM sync.",
    ),
    "feedback": (
        "feedback",
        "group",
        "Export, erase and enrich the CSMs' feedback stored in Redis.",
    ),
    "init": ("init", "command", "Profile an export and write a starter config folder for it."),
    "models": ("models_cmd", "group", "List, inspect and promote trained models."),
    "sample-data": (
        "sample_data",
        "command",
        "Generate a realistic synthetic account book with a causal churn story.",
    ),
    "score": (
        "score",
        "command",
        "Score every live account, explain it, pick an action, and publish a snapshot to Redis.",
    ),
    "serve": (
        "serve",
        "command",
        "Serve Slack requests at POST /slack/events, with GET /healthz (liveness), GET /readyz "
        "(readiness: Redis answers) and GET /metrics.",
    ),
    "spec": (
        "check_config",
        "spec",
        "Print the data product spec: consumer, promise, surface, action, feedback signal.",
    ),
    "train": (
        "train",
        "command",
        "Train a calibrated churn model on earlier dates and evaluate it on later ones.",
    ),
    "worker": (
        "worker",
        "command",
        "Post every digest of config/channels.yaml on its schedule, exactly once, score the book "
        "on the schedule of its ``scoring:`` section, and alert owners of the accounts that "
        "jumped in each new snapshot (whoever published it).",
    ),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attribute, _ = entry
        command = getattr(importlib.import_module(f"bot.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the summaries above, without importing any command."""
        width = formatter.width or 80
        limit = width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=summary).get_short_help_str(limit))
            for name, (_, _, summary) in sorted(COMMANDS.items())
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="churnbot", prog_name="churnbot")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def cli(verbose: bool) -> None:
    """churnbot: churn-risk digests for customer-success teams, in Slack."""
    configure_logging(verbose=verbose)


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
