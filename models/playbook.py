"""The playbook engine: map an account's top reasons and context to one recommended action.

Rules live in config/playbooks.yaml, are tried in order and the first match wins, so a team
reads the file top to bottom and knows what the bot will say. Matching is vectorised: each
rule is a boolean mask over the whole book, so a million accounts take a handful of passes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.config_files import format_validation_error, read_yaml
from models.errors import ConfigError

if TYPE_CHECKING:  # numpy and pandas where rules are applied, not where settings are read
    from typing import TypeAlias

    import numpy as np
    import pandas as pd

    #: A column of the book a rule reads.
    Column: TypeAlias = "Coded | pd.Series | np.ndarray"

TOP_REASON_COLUMNS = ("reason_1", "reason_2", "reason_3")


class Conditions(BaseModel):
    """When a rule applies; every condition given must hold.

    ``values``, ``at_least`` and ``at_most`` name a column of the account schema or a model
    feature (a feature's value is what the model saw, e.g. days to renewal).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    reasons_any: tuple[str, ...] | None = None
    top_reason: tuple[str, ...] | None = None
    band: tuple[str, ...] | None = None
    values: dict[str, tuple[str, ...]] | None = None
    at_least: dict[str, float] | None = None
    at_most: dict[str, float] | None = None

    @property
    def columns(self) -> set[str]:
        """The columns or features the conditions read."""
        return {name for kind in (self.values, self.at_least, self.at_most) for name in kind or {}}


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

    @property
    def columns(self) -> set[str]:
        """Every column or feature some rule reads (the book must carry them)."""
        return {name for rule in self.rules for name in rule.when.columns}

    @property
    def entries(self) -> tuple[Action, ...]:
        """The rules in order, then the default: what :meth:`rule_indices` indexes."""
        return (*self.rules, self.default)

    def recommend(self, book: pd.DataFrame) -> pd.Series:
        """Name of the winning rule for every row (see :meth:`rule_indices`)."""
        import numpy as np
        import pandas as pd

        names = np.array([entry.name for entry in self.entries], dtype=object)
        return pd.Series(names[self.rule_indices(book)], index=book.index, name="rule")

    def rule_indices(self, book: pd.DataFrame | Mapping[str, Column]) -> np.ndarray:
        """Index in :attr:`entries` of the winning rule for every row.

        ``book`` needs reason_1..reason_3 (risk-raising reason codes, strongest first, empty
        when fewer), band, and every name in :attr:`columns`: a table, or (a scoring run's
        chunk) its columns by name, text as :class:`Coded`, numbers as arrays.
        """
        import numpy as np

        n = len(book["band"])
        chosen = np.full(n, len(self.rules), dtype=np.intp)
        open_rows = np.ones(n, dtype=bool)
        for index, rule in enumerate(self.rules):
            hits = open_rows & _matches(rule.when, book)
            chosen[hits] = index
            open_rows &= ~hits
        return chosen

    def action(self, rule_name: str) -> Recommendation:
        """The action text of one rule (or the default)."""
        entry: Action = next((r for r in self.rules if r.name == rule_name), self.default)
        return Recommendation(entry.name, entry.action, entry.why, entry.owner)


@dataclass(frozen=True)
class Coded:
    """A text column as small codes into its distinct values (-1: empty), so a condition on
    it looks up a handful of values instead of comparing every cell's text."""

    codes: np.ndarray
    levels: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)


def _isin(series: Column, values: Collection[str], *, as_text: bool = False) -> np.ndarray:
    """Whether each cell is one of ``values`` (``as_text``: compared as text)."""
    import numpy as np
    import pandas as pd

    if isinstance(series, pd.Series) and series.dtype == "category":
        series = Coded(series.cat.codes.to_numpy(), series.cat.categories.to_numpy())
    if isinstance(series, Coded):  # a lookup on the small codes
        levels = series.levels
        if as_text:
            levels = np.array([str(level) for level in levels], dtype=object)
        wanted = np.isin(levels, list(values))
        return np.append(wanted, False)[series.codes]  # code -1: empty
    series = pd.Series(series) if isinstance(series, np.ndarray) else series
    if as_text:
        series = series.astype("object").astype("str")
    return series.isin(list(values)).to_numpy(dtype=bool)


def _numbers(series: Column) -> np.ndarray:
    import numpy as np

    if isinstance(series, np.ndarray):
        return series.astype(np.float64, copy=False)
    assert not isinstance(series, Coded), "a bound applies to numbers"
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _matches(when: Conditions, book: pd.DataFrame | Mapping[str, Column]) -> np.ndarray:
    import numpy as np

    mask = np.ones(len(book["band"]), dtype=bool)
    if when.reasons_any is not None:
        mask &= np.logical_or.reduce(
            [_isin(book[column], when.reasons_any) for column in TOP_REASON_COLUMNS]
        )
    if when.top_reason is not None:
        mask &= _isin(book["reason_1"], when.top_reason)
    if when.band is not None:
        mask &= _isin(book["band"], when.band)
    for column, allowed in (when.values or {}).items():
        mask &= _isin(book[column], allowed, as_text=True)
    with np.errstate(invalid="ignore"):  # an empty cell (NaN) meets no bound
        for column, low in (when.at_least or {}).items():
            mask &= _numbers(book[column]) >= low
        for column, high in (when.at_most or {}).items():
            mask &= _numbers(book[column]) <= high
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
        for name in sorted(set(when.at_least or {}) & set(when.at_most or {})):
            low, high = (when.at_least or {})[name], (when.at_most or {})[name]
            if low > high:
                problems.append(f"{where}: when.at_least.{name} {low} is above at_most {high}")
        if when == Conditions():
            problems.append(
                f"{where}: when: no condition given; such a rule hides every rule after it "
                "(use `default` for the fallback)"
            )
    return problems


def read_playbook(path: Path) -> PlaybookFile:
    """config/playbooks.yaml's own shape (its keys, a default, each rule's fields), without
    what it names: what :func:`load_playbook` checks first, and all that can be checked of it
    while the reasons or the schema it names have problems of their own."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected `rules:` and `default:` at the top level")
    if "default" not in data:
        raise ConfigError(
            f"{path}: default: missing; add a `default:` action used when no rule matches"
        )
    try:
        return PlaybookFile.model_validate(data)
    except ValidationError as exc:
        message = format_validation_error(str(path), exc, PlaybookFile)
        raise ConfigError(_name_rules(message, data)) from None


def load_playbook(
    path: Path,
    *,
    reason_codes: Collection[str],
    columns: Mapping[str, Collection[str] | None] | None = None,
) -> Playbook:
    """Load config/playbooks.yaml; refuse unknown reasons, bad conditions and a missing default.

    ``columns`` (the schema's columns and the model features, each with its allowed values
    or None) makes a condition on an unknown name, or on a value a category never takes, an
    error.
    """
    parsed = read_playbook(path)
    problems = _semantic_problems(str(path), parsed, reason_codes, ("high", "medium", "low"))
    if columns is not None:
        problems += _column_problems(str(path), parsed, columns)
    if problems:
        raise ConfigError("\n".join(problems))
    return Playbook(parsed.rules, parsed.default)


def _column_problems(
    source: str, parsed: PlaybookFile, columns: Mapping[str, Collection[str] | None]
) -> list[str]:
    problems = []
    for index, rule in enumerate(parsed.rules, start=1):
        where = f"{source}: rule {index} ({rule.name})"
        for key in ("values", "at_least", "at_most"):
            for name in getattr(rule.when, key) or {}:
                if name not in columns:
                    problems.append(
                        f"{where}: when.{key}.{name}: not a column of schema.yaml nor a "
                        f"feature of features.yaml (known: {', '.join(sorted(columns))})"
                    )
        for name, wanted in (rule.when.values or {}).items():
            allowed = columns.get(name)
            unknown = sorted(set(wanted) - set(allowed)) if allowed is not None else []
            if unknown:
                problems.append(
                    f"{where}: when.values.{name}: unknown value {', '.join(unknown)}; "
                    f"expected one of {', '.join(allowed or ())}"
                )
    return problems


def _name_rules(message: str, data: dict) -> str:
    """Turn ``rules.2.when.x`` into ``rule 3 (name).when.x`` so a user finds the rule."""
    rules = data.get("rules") or []
    for index, rule in enumerate(rules):
        name = rule.get("name", "?") if isinstance(rule, dict) else "?"
        message = message.replace(f": rules.{index}.", f": rule {index + 1} ({name}): ")
        message = message.replace(f": rules.{index}:", f": rule {index + 1} ({name}):")
    return message
