"""``churnbot train``: train, evaluate against the baseline, register, maybe promote."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import cast

import click

from bot.cli.common import console, out, settings_from_environment, status
from bot.cli.data_source import account_data_options, load_accounts
from bot.feedback.training import training_feedback
from bot.settings import Settings
from bot.state import connect
from models.evaluation import format_report, save_report
from models.features import FeatureSet
from models.feedback_labels import FeedbackLabels
from models.pipeline import TrainOutcome, train_and_register
from models.registry import ModelCard, Registry
from models.validate import LoadResult


def print_outcome(outcome: TrainOutcome, settings: Settings) -> None:
    """The evaluation report and the verdict: results, so on stdout."""
    sla = settings.spec.accuracy_sla
    card = outcome.card
    # train_and_register always fills the eval window of the card it returns.
    eval_window = cast("tuple[date, date]", card.eval_window)
    out.print(format_report(outcome.report), markup=False, highlight=False)
    trials = card.params.get("curve_trials")
    if trials:
        adopted = ", ".join(card.params.get("curves") or []) or "none (lines ranked as well)"
        line = (
            f"Bins tried for {len(trials['tried'])} feature(s) on the validation dates; "
            f"adopted for {adopted}"
        )
        if "eval_roc_auc_straight_lines" in trials:
            line += (
                f"; held-out ROC AUC {trials['eval_roc_auc_with_curves']:.3f} with them, "
                f"{trials['eval_roc_auc_straight_lines']:.3f} with straight lines"
            )
        out.print(line, markup=False, highlight=False)
    out.print(
        f"Model {card.version}: {sla.metric} {outcome.sla_value:.3f} "
        f"(target {sla.target}, floor {sla.floor}); trained on {card.training_window[0]} to "
        f"{card.training_window[1]}, evaluated on {eval_window[0]} to {eval_window[1]}"
    )
    for suspect in outcome.suspects:
        console.print(f"warning: {suspect.warning()}", markup=False, highlight=False)
    if outcome.bands_warning:
        console.print(f"warning: {outcome.bands_warning}", markup=False, highlight=False)
        digests = min_risk_warning(settings, outcome.report.suggested_bands)
        if digests:
            console.print(f"warning: {digests}", markup=False, highlight=False)
    if outcome.promoted:
        out.print(f"[green]Promoted {card.version} to champion.[/]")
    else:
        out.print(
            f"[yellow]Not promoted: {outcome.held_back}. Promote by hand with "
            f"`churnbot models promote {card.version}`.[/]"
        )


def min_risk_warning(settings: Settings, suggestion: tuple[float, float] | None) -> str | None:
    """With bands to lower, the digests whose ``min_risk`` is above the suggested medium
    threshold: they would show almost no account, whatever the bands say."""
    if suggestion is None:
        return None
    medium = suggestion[1]
    above = [d for d in settings.channels.digests if d.min_risk > medium]
    if not above:
        return None
    named = ", ".join(f"{d.name} (min_risk {d.min_risk:g})" for d in above)
    return (
        f"digests {named} in channels.yaml show only accounts "
        f"at or above min_risk, which almost none reach here: lower it to the medium "
        f"threshold, {medium:g}, with the bands"
    )


def run_training(
    settings: Settings,
    loaded: LoadResult,
    name: str,
    promote: bool | None,
    feedback: FeedbackLabels | None = None,
) -> TrainOutcome:
    """Train, evaluate, register and save the report: shared by `train` and `demo`."""
    registry = Registry(settings.paths.registry)
    before = registry.champion_version()
    with status("Training") as step:
        outcome = train_and_register(
            loaded.frame,
            settings.schema,
            settings.features,
            settings.spec,
            registry,
            data_source=name,
            promote=promote,
            progress=step,
            feedback=feedback,
        )
    reports = settings.paths.reports
    save_report(outcome.report, reports / f"evaluation-{outcome.card.version}.json")
    save_report(outcome.report, reports / "evaluation.json")
    if outcome.promoted and before is not None and before != outcome.card.version:
        warn_if_foreign(registry.card(before), settings)
    return outcome


def warn_if_foreign(replaced: ModelCard, settings: Settings) -> None:
    """Say so when the champion just replaced was trained under another data configuration
    (another config folder sharing this registry): scoring with that configuration now finds
    a model it cannot use, and its user should know why before the next run trips."""
    spec = replaced.notes.get("feature_set")
    if not isinstance(spec, dict):
        return
    foreign = FeatureSet.from_dict(spec).columns_outside(settings.schema)
    if foreign:
        console.print(
            f"[yellow]warning:[/] the champion this model replaced, {replaced.version}, was "
            f"trained on another data configuration (it read {', '.join(foreign)}); its "
            f"configuration must train again to score. Keep each configuration's registry "
            f"apart with its own CHURNBOT_VAR (this one: {settings.paths.registry})",
            highlight=False,
        )


@click.command("train")
@account_data_options
@click.option(
    "--promote/--no-promote",
    default=None,
    help="Make the new model champion [default: only when it meets the accuracy floor].",
)
@click.option(
    "--with-feedback",
    is_flag=True,
    help="Use the CSMs' corrections stored in Redis as labels and weights; the model card "
    "records how many and which.",
)
def command(data: Path | None, source: str, promote: bool | None, with_feedback: bool) -> None:
    """Train a calibrated churn model on earlier dates and evaluate it on later ones.

    A single snapshot is evaluated by cross-validation instead. Prints the evaluation against
    the baseline rule of features.yaml (if one is configured), saves it as JSON under
    var/reports/, and stores the model with its card in the registry (var/registry/).
    """
    settings = settings_from_environment()
    loaded, name = load_accounts(settings, data, source)
    feedback = None
    if with_feedback:
        feedback = training_feedback(settings, connect(settings.env.redis_url), loaded.frame)
    outcome = run_training(settings, loaded, name, promote, feedback)
    print_outcome(outcome, settings)
    if feedback is not None:
        out.print(
            f"Feedback: {feedback.corrections} corrections, {len(feedback.used)} used "
            f"({feedback.flipped} labels changed, {len(feedback.weights)} rows weighted); "
            "see `notes.feedback` in `churnbot models show`."
        )
