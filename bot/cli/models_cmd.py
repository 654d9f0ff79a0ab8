"""``churnbot models list|show|promote``: the versioned registry with one champion."""

from __future__ import annotations

import json

import click
from rich.table import Column, Table

from bot.cli.common import console, out, settings_from_environment
from models.registry import ModelCard, Registry


def _registry() -> Registry:
    return Registry(settings_from_environment().paths.registry)


@click.group("models")
def group() -> None:
    """List, inspect and promote trained models."""


@group.command("list")
def list_models() -> None:
    """Every registered model, newest first; the champion is starred."""
    registry = _registry()
    champion = registry.champion_version()
    cards = registry.list()
    if not cards:
        # An empty list is an empty result: the hint goes to stderr, stdout stays empty.
        console.print("No models yet: run `churnbot train`.")
        return
    table = Table(
        "",
        Column("version", no_wrap=True),
        "created",
        "training window",
        "ROC AUC",
        "top-decile lift",
    )
    for card in cards:
        model = card.metrics.get("model", {})
        table.add_row(
            "*" if card.version == champion else "",
            card.version,
            f"{card.created_at:%Y-%m-%d %H:%M}",
            " to ".join(str(day) for day in card.training_window),
            f"{model.get('roc_auc', float('nan')):.3f}",
            f"{model.get('top_decile_lift', float('nan')):.2f}",
        )
    out.print(table)


@group.command("show")
@click.argument("version", required=False)
def show(version: str | None) -> None:
    """Print a model card (default: the champion's) as JSON."""
    registry = _registry()
    card = registry.load(version).card if version is None else registry.card(version)
    click.echo(json.dumps(card.model_dump(mode="json"), indent=2))


@group.command("promote")
@click.argument("version")
def promote(version: str) -> None:
    """Make VERSION the champion that scoring uses."""
    registry = _registry()
    loaded = registry.load(version)  # refuse to promote a model that would not load
    registry.promote(version)
    out.print(f"Champion is now {version}.")
    suspects = _suspects(loaded.card)
    if suspects:  # promoted by a person, who should see again why train held it back
        console.print(
            f"warning: {version} was trained on feature(s) {suspects} that look recorded after "
            "the churn (`churnbot models show` lists them); its scores will not be as good "
            "as its evaluation unless those columns are known before an account churns",
            markup=False,
            highlight=False,
        )


def _suspects(card: ModelCard) -> str:
    """The features train named as likely written after the churn (models.leakage), if any."""
    return ", ".join(s["name"] for s in card.notes.get("leakage_suspects", []))
