"""Batch scoring: risk, band, reasons and one recommended action for every live account.

Work goes in chunks so memory stays flat as the book grows: features, contributions and
sentences exist for one slice at a time, and callers consume an iterator of chunks (the
publisher writes each chunk to the store before the next is built).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.contract import AccountSchema
from models.explain import explain
from models.features import build_features
from models.playbook import TOP_REASON_COLUMNS, Playbook, Recommendation
from models.reasons import Reason, ReasonWriter
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
        return self.model.estimator.predict_proba(build_features(rows))[:, 1]  # type: ignore[attr-defined]

    def score(self, rows: pd.DataFrame) -> list[AccountScore]:
        """Score, explain and recommend for one chunk of account rows."""
        features = build_features(rows)
        risk = self.model.estimator.predict_proba(features)[:, 1]  # type: ignore[attr-defined]
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
        return [
            self._account(record, float(risk[i]), str(bands[i]), explained[i], actions[rules[i]])
            for i, record in enumerate(rows.to_dict("records"))
        ]

    def _account(
        self,
        record: dict[str, object],
        risk: float,
        band: str,
        explained: object,
        action: Recommendation,
    ) -> AccountScore:
        schema = self.schema
        industry = record.get("industry")
        renewal = record.get("renewal_date")
        return AccountScore(
            account_id=str(record[schema.id_column]),
            account_name=str(record[schema.name_column]),
            owner=str(record[schema.owner_column]),
            segment=str(record["segment"]),
            plan=str(record["plan"]),
            industry=None if pd.isna(industry) else str(industry),
            arr=float(record["arr"]),  # type: ignore[arg-type]
            as_of=pd.Timestamp(record[schema.date_column]).date(),  # type: ignore[arg-type]
            renewal_date=None if pd.isna(renewal) else pd.Timestamp(renewal).date(),  # type: ignore[arg-type]
            risk=risk,
            band=band,
            reasons=explained.reasons,  # type: ignore[attr-defined]
            healthy=explained.healthy,  # type: ignore[attr-defined]
            action=action,
            model_version=self.model.card.version,
        )

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
