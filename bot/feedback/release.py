"""Every release judged on the product, not only the model: one record per model version.

A model version's record has its offline metrics (from its registry card: how it scored on
the held-out period when it was trained), then what live use says about it: adoption,
acceptance, correction rate, action completion and precision of flagged accounts over every
stored answer to its scores (``bot.feedback.metrics.period_figures``), and the save rate of
each action on the accounts it flagged (``models.save_rate``). `/churn-admin stats` puts the
champion beside the version it replaced and beside the shadow candidate, on the same figures;
a shadow candidate was never shown to CSMs, so its live figures are its shadow comparison.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bot.deps import Deps
from bot.feedback.metrics import (
    Adoption,
    Rates,
    Targets,
    answered,
    period_figures,
    rates_line,
)
from bot.feedback.outcomes import Outcome
from bot.feedback.save_rates import save_rate_lines, save_rate_units
from bot.feedback.store import FeedbackStore
from models.errors import ModelError
from models.registry import ModelCard, Registry
from models.save_rate import LABEL, SaveRate, SaveRateConfig, breakdown, save_rate

log = logging.getLogger(__name__)

#: The card's offline figures a record shows, in order, with their labels.
OFFLINE = (("roc_auc", "ROC AUC"), ("pr_auc", "PR AUC"), ("top_decile_precision", "top decile"))


@dataclass(frozen=True)
class ReleaseRecord:
    """One model version's record. ``rates`` is None for a version never shown to CSMs."""

    version: str
    role: str  # "champion", "previous", "shadow candidate"
    offline: Mapping[str, float | None]
    rates: Rates | None
    adoption: Adoption | None
    save_rates: tuple[SaveRate, ...] = ()
    note: str = ""


def offline_metrics(card: ModelCard | None) -> dict[str, float | None]:
    """The card's held-out figures for the model (None where the card has none)."""
    model: Mapping[str, Any] = (card.metrics.get("model") or {}) if card else {}
    return {name: model.get(name) for name, _ in OFFLINE}


def version_save_rates(
    units: pd.DataFrame, version: str, config: SaveRateConfig
) -> tuple[SaveRate, ...]:
    """Each action's save rate on the accounts ``version`` flagged."""
    mine = units[units["model_version"] == version]
    return tuple(
        save_rate(rows, config, action=str(action), model_version=version)
        for action, rows in mine.groupby("action", sort=True)
    )


def previous_version(
    champion: str | None, events: pd.DataFrame, cards: Sequence[ModelCard]
) -> str | None:
    """The version the champion replaced: the other version CSMs answered most recently,
    else the newest registered version older than the champion."""
    others = events[events["model_version"] != champion]
    if not others.empty:
        return str(others.sort_values("at")["model_version"].iloc[-1])
    created = {card.version: card.created_at for card in cards}
    older = [
        card.version
        for card in cards
        if card.version != champion
        and (champion not in created or card.created_at < created[champion])
    ]
    return max(older, key=lambda version: created[version]) if older else None


def build_record(
    version: str,
    role: str,
    *,
    card: ModelCard | None,
    events: pd.DataFrame,
    units: pd.DataFrame,
    targets: Targets,
    outcomes: Mapping[str, Outcome],
    high_risk: float,
    horizon_days: int,
    config: SaveRateConfig,
    shown: bool = True,
    note: str = "",
) -> ReleaseRecord:
    """A version's record from the events and save-rate units of all its versions."""
    rates = adoption = None
    if shown:
        rates, adoption = period_figures(
            events[events["model_version"] == version],
            targets=targets,
            outcomes=outcomes,
            high_risk=high_risk,
            horizon_days=horizon_days,
        )
    return ReleaseRecord(
        version=version,
        role=role,
        offline=offline_metrics(card),
        rates=rates,
        adoption=adoption,
        save_rates=version_save_rates(units, version, config) if shown else (),
        note=note,
    )


def card_or_none(registry: Registry, version: str) -> ModelCard | None:
    """The version's card, or None (logged) when the registry no longer has it."""
    try:
        return registry.card(version)
    except ModelError as exc:
        log.warning("no card for model %s: %s", version, exc)
        return None


def product_lines(
    deps: Deps,
    store: FeedbackStore,
    events: pd.DataFrame,
    *,
    who: Targets,
    outcomes: Mapping[str, Outcome],
) -> list[str]:
    """Did acting help, and is this release better: save rates, then release records, over
    every stored event (``events``), with the target CSMs (``who``) and the known outcomes of
    the accounts flagged in them, which ``bot.feedback.stats.stats_answer`` reads once for
    the weekly figures too."""
    config = deps.settings.save_rate
    units = save_rate_units(deps, store, config, events)
    return save_rate_lines(breakdown(units, config.estimator())) + release_lines(
        release_records(deps, events, units, config.estimator(), who=who, outcomes=outcomes)
    )


def release_records(
    deps: Deps,
    events: pd.DataFrame,
    units: pd.DataFrame,
    config: SaveRateConfig,
    *,
    who: Targets,
    outcomes: Mapping[str, Outcome],
) -> list[ReleaseRecord]:
    """The champion's record, then the previous version's and the shadow candidate's (those
    that exist), over every stored answer (``events``; ``outcomes`` holds the known ones of
    the accounts flagged in them)."""
    from bot.feedback.shadow import ShadowStore

    registry = Registry(deps.settings.paths.registry)
    champion = registry.champion_version()

    def record(version: str, role: str, *, shown: bool = True, note: str = "") -> ReleaseRecord:
        return build_record(
            version,
            role,
            card=card_or_none(registry, version),
            events=events,
            units=units,
            targets=who,
            outcomes=outcomes,
            high_risk=deps.settings.spec.risk_bands.high,
            horizon_days=deps.settings.spec.horizon_days,
            config=config,
            shown=shown,
            note=note,
        )

    records = []
    if champion is not None:
        records.append(record(champion, "champion"))
        previous = previous_version(champion, events, registry.list())
        if previous is not None:
            records.append(record(previous, "previous"))
    shadow = ShadowStore(deps.redis, prefix=deps.prefix).latest()
    if shadow is not None and shadow.candidate_version != champion:
        version = shadow.candidate_version
        note = (
            f" (shadow run {shadow.created_at[:10]}: top {shadow.live.top_n} overlap "
            f"{shadow.live.overlap_share:.0%}; see `/churn-admin shadow`)"
        )
        records.append(record(version, "shadow candidate", shown=False, note=note))
    return records


# --- text -------------------------------------------------------------------------------------


def _offline_text(offline: Mapping[str, float | None]) -> str:
    parts = [
        f"{label} {value:.3f}" if name != "top_decile_precision" else f"{label} {value:.0%}"
        for name, label in OFFLINE
        if (value := offline.get(name)) is not None
    ]
    return " · ".join(parts) if parts else "no offline metrics on record"


def _save_rates_text(rates: Sequence[SaveRate]) -> str:
    if not rates:
        return "no shown account with a known outcome yet"
    parts = []
    for rate in rates:
        if rate.enough:
            parts.append(
                f"`{rate.action}` {rate.estimate:.0%} "
                f"({rate.confidence:.0%} CI {rate.low:.0%} to {rate.high:.0%}, "
                f"n={rate.done}+{rate.control_units})"
            )
        else:
            parts.append(
                f"`{rate.action}` not enough data yet (n={rate.done}+{rate.control_units})"
            )
    return "; ".join(parts)


def release_lines(records: Sequence[ReleaseRecord]) -> list[str]:
    """The stats section comparing the records, champion first."""
    lines = [
        "*Release records* (offline: the card's held-out period; live: every stored answer "
        f"to that version's scores; save rates: {LABEL})"
    ]
    for record in records:
        head = f"• {record.role} `{record.version}`: offline {_offline_text(record.offline)}"
        if record.rates is None or record.adoption is None:
            lines.append(f"{head} · live: never shown to CSMs{record.note}")
            continue
        adoption = record.adoption
        active = (
            f"{adoption.active}/{adoption.targets} {adoption.share:.0%}"
            if adoption.share is not None
            else "n/a"
        )
        lines.append(
            f"{head}\n    live: {answered(record.rates)} · adoption {active} · "
            f"{rates_line(record.rates)}\n    save rates: {_save_rates_text(record.save_rates)}"
            f"{record.note}"
        )
    return lines
