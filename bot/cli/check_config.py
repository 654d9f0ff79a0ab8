"""``churnbot check-config`` and ``churnbot spec``: the config folder, checked and printed."""

from __future__ import annotations

import os
from pathlib import Path

import click
import yaml

from bot.cli.common import console, out
from bot.settings import check_config_folder, load_env, load_settings
from models.errors import ConfigError


@click.command("check-config")
@click.option("--config", "config_dir", type=click.Path(path_type=Path), default=None)
def check_config(config_dir: Path | None) -> None:
    """Check every config file and report all problems in one pass."""
    folder = config_dir or load_env(os.environ).config_dir
    problems, warnings = check_config_folder(folder)
    for warning in warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False)
    if problems:
        raise ConfigError(f"{len(problems)} config file(s) have problems:\n" + "\n".join(problems))
    out.print(f"{folder}: configuration is valid")


@click.command("spec")
def spec() -> None:
    """Print the data product spec: consumer, promise, surface, action, feedback signal."""
    settings = load_settings(os.environ)
    click.echo(yaml.safe_dump(settings.spec.model_dump(mode="json"), sort_keys=False))
