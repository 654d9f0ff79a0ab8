"""Batch scoring: risk, band, reasons and one recommended action for every live account.

Work goes in chunks so memory stays flat as the book grows: features, contributions and
sentences exist for one slice at a time, and callers consume an iterator of chunks (the
publisher writes each chunk to the store before the next is built).
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from models.contract import AccountSchema
from models.explain import explain
from models.features import build_features
from models.playbook import TOP_REASON_COLUMNS, Playbook, Recommendation
from models.reasons import Explained, Reason, ReasonWriter
from models.registry import LoadedModel
from models.spec import RiskBands

DEFAULT_CHUNK = 50_000


@dataclass(frozen=True)
class AccountScore:
    """One account's line in a snapshot: what a CSM sees and what feedback refers to."""

    account_id: str
    account_name: str
    owner: str
    segment: str
    plan: str
    industry: str | None
    arr: float
    as_of: dt.date
    renewal_date: dt.date | None
    risk: float
    band: str
    reasons: tuple[Reason, ...]
    healthy: Reason | None
    action: Recommendation
    model_version: str

    def to_card(self) -> dict[str, object]:
        """A JSON-able dict: the stored card the Slack side renders."""
        return {
            "account_id": self.account_id,
            "account_name": self.account_name,
            "owner": self.owner,
            "segment": self.segment,
            "plan": self.plan,
            "industry": self.industry,
            "arr": round(self.arr, 2),
            "as_of": self.as_of.isoformat(),
            "renewal_date": self.renewal_date.isoformat() if self.renewal_date else None,
            "risk": round(self.risk, 6),
            "band": self.band,
            "reasons": [vars(reason) for reason in self.reasons],
            "healthy": vars(self.healthy) if self.healthy else None,
            "action": vars(self.action),
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class Scorer:
    """Everything scoring needs, loaded and validated once per run."""

    model: LoadedModel
    schema: AccountSchema
    writer: ReasonWriter
    playbook: Playbook
    bands: RiskBands

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return self.model.estimator.predict_proba(build_features(rows))[:, 1]

    def score(self, rows: pd.DataFrame) -> list[AccountScore]:
        """Score, explain and recommend for one chunk of account rows."""
        with _cyclic_gc_paused():
            return self._score(rows)

    def _score(self, rows: pd.DataFrame) -> list[AccountScore]:
        features = build_features(rows)
        risk = self.model.estimator.predict_proba(features)[:, 1]
        reference = self.model.card.notes["explain_reference"]
        contributions = explain(self.model.estimator, features, reference)
        explained = self.writer.explain(contributions, rows, features)
        top = self.writer.top_codes(contributions)
        bands = np.where(
            risk >= self.bands.high, "high", np.where(risk >= self.bands.medium, "medium", "low")
        )
        book = pd.DataFrame(
            {
                **{column: top[:, i] for i, column in enumerate(TOP_REASON_COLUMNS)},
                "segment": rows["segment"].to_numpy(),
                "band": bands,
                "industry": rows["industry"].to_numpy(),
                "plan": rows["plan"].to_numpy(),
                "arr": rows["arr"].to_numpy(),
                "days_to_renewal": (
                    rows["renewal_date"] - rows[self.schema.date_column]
                ).dt.days.to_numpy(),
            }
        )
        rules = self.playbook.recommend(book).to_numpy()
        actions = {rule: self.playbook.action(rule) for rule in set(rules)}
        return self._accounts(rows, risk, bands, explained, [actions[rule] for rule in rules])

    @cached_property
    def _role_columns(self) -> tuple[str, str, str, str]:
        """Id, name, owner and as-of date columns, looked up in the schema once per run
        rather than once per account (each lookup scans the schema)."""
        schema = self.schema
        return schema.id_column, schema.name_column, schema.owner_column, schema.date_column

    def _accounts(
        self,
        rows: pd.DataFrame,
        risk: np.ndarray,
        bands: np.ndarray,
        explained: list[Explained],
        actions: list[Recommendation],
    ) -> list[AccountScore]:
        """One AccountScore per row, built column by column.

        Only the columns a card shows become Python objects (a dict of every column for every
        row cost more than scoring, explaining and recommending together), and dates are
        converted from the raw array, each distinct date once.
        """
        id_column, name_column, owner_column, date_column = self._role_columns
        plain = [id_column, name_column, owner_column, "segment", "plan", "industry", "arr"]
        values = rows[list(dict.fromkeys(plain))].to_dict("list")
        version = self.model.card.version
        return [
            AccountScore(
                account_id=str(account_id),
                account_name=str(name),
                owner=str(owner),
                segment=str(segment),
                plan=str(plan),
                industry=None if pd.isna(industry) else str(industry),
                arr=float(arr),
                as_of=as_of,
                renewal_date=renewal,
                risk=risk_i,
                band=band,
                reasons=reasons.reasons,
                healthy=reasons.healthy,
                action=action,
                model_version=version,
            )
            for (
                account_id,
                name,
                owner,
                segment,
                plan,
                industry,
                arr,
                as_of,
                renewal,
                risk_i,
                band,
                reasons,
                action,
            ) in zip(
                values[id_column],
                values[name_column],
                values[owner_column],
                values["segment"],
                values["plan"],
                values["industry"],
                values["arr"],
                _dates(rows[date_column], optional=False),
                _dates(rows["renewal_date"], optional=True),
                risk.tolist(),
                bands.tolist(),
                explained,
                actions,
                strict=True,
            )
        ]

    def score_chunks(
        self,
        rows: pd.DataFrame,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[list[AccountScore]]:
        total = len(rows)
        for start in range(0, total, chunk_size):
            chunk = rows.iloc[start : start + chunk_size]
            yield self.score(chunk)
            if progress:
                progress(start + len(chunk), total)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a chunk's results are built.

    A chunk makes about ten small objects per account (reasons, cards' parts), none of them in
    a reference cycle, so reference counting frees them all. With the collector running, that
    many allocations trigger full collections that walk every live object of the process:
    over a third of the scoring time. The collector is restored afterwards only if it was on,
    so a caller that turned it off keeps it off.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _dates(column: pd.Series, *, optional: bool) -> list[dt.date | None]:
    """A date column as ``datetime.date`` objects, each distinct value converted once (a
    snapshot has one as-of date and a few hundred renewal dates, not one per account).

    A missing optional date is None; a missing required one (which validation rejects)
    stays what ``pd.Timestamp(NaT).date()`` gives, as it always did.
    """
    codes, uniques = pd.factorize(column)
    days: list[dt.date | None] = [pd.Timestamp(value).date() for value in uniques]
    if (codes < 0).any():
        # pandas-stubs omits NaT from Timestamp()'s arguments; at run time it returns NaT.
        days.append(None if optional else pd.Timestamp(pd.NaT).date())  # type: ignore[arg-type]
    return [days[code] for code in codes.tolist()]


def latest_rows(frame: pd.DataFrame, schema: AccountSchema) -> pd.DataFrame:
    """Rows of the newest as-of date for accounts that had not churned by then."""
    as_of = frame[schema.date_column]
    latest = frame[as_of == as_of.max()]
    churned = latest[schema.label_column]
    live = churned.isna() | (churned > latest[schema.date_column])
    return latest[live].reset_index(drop=True)


def predict_risk(
    estimator: object,
    frame: pd.DataFrame,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Bare probabilities chunk by chunk: the floor that full scoring is measured against."""
    total = len(frame)
    out = np.empty(total, dtype=float)
    for start in range(0, total, chunk_size):
        chunk = frame.iloc[start : start + chunk_size]
        out[start : start + len(chunk)] = estimator.predict_proba(build_features(chunk))[:, 1]  # type: ignore[attr-defined]
        if progress:
            progress(start + len(chunk), total)
    return out
