"""The playbook engine: map an account's top reasons and context to one recommended action.

Rules live in config/playbooks.yaml, are tried in order and the first match wins, so a team
reads the file top to bottom and knows what the bot will say. Matching is vectorised: each
rule is a boolean mask over the whole book, so a million accounts take a handful of passes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.config_files import format_validation_error, read_yaml
from models.errors import ConfigError

TOP_REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")


class Conditions(BaseModel):
    """When a rule applies; every condition given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reasons_any: tuple[str, ...] | None = None
    top_reason: tuple[str, ...] | None = None
    segment: tuple[str, ...] | None = None
    band: tuple[str, ...] | None = None
    industry: tuple[str, ...] | None = None
    plan: tuple[str, ...] | None = None
    arr_min: float | None = Field(default=None, ge=0)
    arr_max: float | None = Field(default=None, ge=0)
    renewal_within_days: int | None = Field(default=None, ge=0)


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    action: str = Field(min_length=1, max_length=300)
    why: str = Field(min_length=1, max_length=300)
    owner: str = Field(min_length=1, max_length=100)


class Rule(Action):
    when: Conditions


class PlaybookFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[Rule, ...] = ()
    default: Action


@dataclass(frozen=True)
class Recommendation:
    """The action chosen for one account and the rule that chose it (kept in the snapshot)."""

    rule: str
    action: str
    why: str
    owner: str


class Playbook:
    """Validated rules plus the default; ``recommend`` maps a book to one action per account."""

    def __init__(self, rules: tuple[Rule, ...], default: Action) -> None:
        self.rules = rules
        self.default = default

    def recommend(self, book: pd.DataFrame) -> pd.Series:
        """Name of the winning rule for every row.

        ``book`` needs reason_1..reason_3 (risk-raising reason codes, strongest first, empty
        when fewer), segment, band, industry, plan, arr and days_to_renewal.
        """
        chosen = np.full(len(book), self.default.name, dtype=object)
        open_rows = np.ones(len(book), dtype=bool)
        for rule in self.rules:
            hits = open_rows & _matches(rule.when, book)
            chosen[hits] = rule.name
            open_rows &= ~hits
        return pd.Series(chosen, index=book.index, name="rule")

    def action(self, rule_name: str) -> Recommendation:
        """The action text of one rule (or the default)."""
        entry: Action = next((r for r in self.rules if r.name == rule_name), self.default)
        return Recommendation(entry.name, entry.action, entry.why, entry.owner)


def _isin(series: pd.Series, values: Collection[str]) -> np.ndarray:
    return series.isin(list(values)).to_numpy(dtype=bool)


def _matches(when: Conditions, book: pd.DataFrame) -> np.ndarray:
    mask = np.ones(len(book), dtype=bool)
    if when.reasons_any is not None:
        mask &= np.logical_or.reduce(
            [_isin(book[column], when.reasons_any) for column in TOP_REASON_COLUMNS]
        )
    if when.top_reason is not None:
        mask &= _isin(book["reason_1"], when.top_reason)
    for column in ("segment", "band", "industry", "plan"):
        allowed = getattr(when, column)
        if allowed is not None:
            mask &= _isin(book[column], allowed)
    if when.arr_min is not None:
        mask &= (book["arr"] >= when.arr_min).to_numpy(dtype=bool)
    if when.arr_max is not None:
        mask &= (book["arr"] <= when.arr_max).to_numpy(dtype=bool)
    if when.renewal_within_days is not None:
        days = book["days_to_renewal"]
        mask &= ((days >= 0) & (days <= when.renewal_within_days)).to_numpy(dtype=bool)
    return mask


def _semantic_problems(
    source: str, parsed: PlaybookFile, reason_codes: Collection[str], bands: Collection[str]
) -> list[str]:
    problems = []
    seen: set[str] = set()
    for index, rule in enumerate(parsed.rules, start=1):
        where = f"{source}: rule {index} ({rule.name})"
        if rule.name in seen or rule.name == parsed.default.name:
            problems.append(f"{where}: the name is used twice; rule names must be unique")
        seen.add(rule.name)
        for key in ("reasons_any", "top_reason"):
            unknown = sorted(set(getattr(rule.when, key) or ()) - set(reason_codes))
            if unknown:
                problems.append(
                    f"{where}: when.{key}: unknown reason {', '.join(unknown)}; "
                    f"known reasons: {', '.join(sorted(reason_codes))}"
                )
        unknown_bands = sorted(set(rule.when.band or ()) - set(bands))
        if unknown_bands:
            problems.append(
                f"{where}: when.band: unknown band {', '.join(unknown_bands)}; "
                f"expected one of {', '.join(bands)}"
            )
        when = rule.when
        if when.arr_min is not None and when.arr_max is not None and when.arr_min > when.arr_max:
            problems.append(f"{where}: when.arr_min {when.arr_min} is above arr_max {when.arr_max}")
        if when == Conditions():
            problems.append(
                f"{where}: when: no condition given; such a rule hides every rule after it "
                "(use `default` for the fallback)"
            )
    return problems


def load_playbook(
    path: Path, *, reason_codes: Collection[str], segments: Collection[str] | None = None
) -> Playbook:
    """Load config/playbooks.yaml; refuse unknown reasons, bad conditions and a missing default."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected `rules:` and `default:` at the top level")
    if "default" not in data:
        raise ConfigError(
            f"{path}: default: missing; add a `default:` action used when no rule matches"
        )
    try:
        parsed = PlaybookFile.model_validate(data)
    except ValidationError as exc:
        message = format_validation_error(str(path), exc)
        raise ConfigError(_name_rules(message, data)) from None
    problems = _semantic_problems(str(path), parsed, reason_codes, ("high", "medium", "low"))
    if segments is not None:
        for index, rule in enumerate(parsed.rules, start=1):
            unknown = sorted(set(rule.when.segment or ()) - set(segments))
            if unknown:
                problems.append(
                    f"{path}: rule {index} ({rule.name}): when.segment: unknown segment "
                    f"{', '.join(unknown)}; expected one of {', '.join(segments)}"
                )
    if problems:
        raise ConfigError("\n".join(problems))
    return Playbook(parsed.rules, parsed.default)


def _name_rules(message: str, data: dict) -> str:
    """Turn ``rules.2.when.x`` into ``rule 3 (name).when.x`` so a user finds the rule."""
    rules = data.get("rules") or []
    for index, rule in enumerate(rules):
        name = rule.get("name", "?") if isinstance(rule, dict) else "?"
        message = message.replace(f": rules.{index}.", f": rule {index + 1} ({name}): ")
        message = message.replace(f": rules.{index}:", f": rule {index + 1} ({name}):")
    return message
