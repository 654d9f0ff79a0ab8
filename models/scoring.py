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
from urllib.parse import quote

import numpy as np
import pandas as pd

from models.cards import CardCodec, ScoredChunk
from models.contract import AccountSchema
from models.explain import explain
from models.features import FeatureSet
from models.playbook import TOP_REASON_COLUMNS, Playbook, Recommendation
from models.reasons import Explained, Reason, ReasonWriter
from models.registry import LoadedModel
from models.spec import RiskBands

DEFAULT_CHUNK = 50_000


@dataclass(frozen=True)
class AccountScore:
    """One account's line in a snapshot: what a CSM sees and what feedback refers to.

    ``context`` is the card's context line as configured in features.yaml (label, text);
    ``segment`` and ``url`` are the values of the schema's optional segment and url columns.
    """

    account_id: str
    account_name: str
    owner: str
    segment: str | None
    url: str | None
    context: tuple[tuple[str, str], ...]
    as_of: dt.date
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
            "segment": self.segment or "",
            "url": self.url,
            "context": [list(pair) for pair in self.context],
            "as_of": self.as_of.isoformat(),
            "risk": round(self.risk, 6),
            "band": self.band,
            "reasons": [vars(reason) for reason in self.reasons],
            "healthy": vars(self.healthy) if self.healthy else None,
            "action": vars(self.action),
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class Scorer:
    """Everything scoring needs, loaded and validated once per run.

    The features come from the model's own card (``model.features``), so a model is scored
    with exactly the features it was trained on.
    """

    model: LoadedModel
    schema: AccountSchema
    writer: ReasonWriter
    playbook: Playbook
    bands: RiskBands

    @cached_property
    def features(self) -> FeatureSet:
        return self.model.features

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return self.model.estimator.predict_proba(self.features.build(rows))[:, 1]

    def score(self, rows: pd.DataFrame) -> list[AccountScore]:
        """Score, explain and recommend for one chunk of account rows."""
        with _cyclic_gc_paused():
            return self._score(rows)

    def _score(self, rows: pd.DataFrame) -> list[AccountScore]:
        features = self.features.build(rows)
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
                "band": bands,
                **{
                    name: (features[name] if name in features else rows[name]).to_numpy()
                    for name in self.playbook.columns
                },
            }
        )
        rules = self.playbook.recommend(book).to_numpy()
        actions = {rule: self.playbook.action(rule) for rule in set(rules)}
        return self._accounts(rows, features, risk, bands, explained, [actions[r] for r in rules])

    @cached_property
    def _role_columns(self) -> tuple[str, str, str, str]:
        """Id, name, owner and as-of date columns, looked up in the schema once per run
        rather than once per account (each lookup scans the schema)."""
        schema = self.schema
        return schema.id_column, schema.name_column, schema.owner_column, schema.date_column

    def _accounts(
        self,
        rows: pd.DataFrame,
        features: pd.DataFrame,
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
        values = rows[list(dict.fromkeys([id_column, name_column, owner_column]))].to_dict("list")
        n = len(rows)
        segment = _optional_texts(rows, self.schema.optional_column("segment"), n)
        url = _urls(self.features, self.schema, rows)
        context = _context_lines(self.features, rows, features)
        version = self.model.card.version
        return [
            AccountScore(
                account_id=str(account_id),
                account_name=str(name),
                owner=str(owner),
                segment=segment_i,
                url=url_i,
                context=context_i,
                as_of=as_of,
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
                segment_i,
                url_i,
                context_i,
                as_of,
                risk_i,
                band,
                reasons,
                action,
            ) in zip(
                values[id_column],
                values[name_column],
                values[owner_column],
                segment,
                url,
                context,
                _dates(rows[date_column]),
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

    def codec(self) -> CardCodec:
        """How this run's records read back as cards (stored once per snapshot)."""
        return CardCodec()

    def column_chunks(
        self,
        rows: pd.DataFrame,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[ScoredChunk]:
        """The book scored chunk by chunk as columns plus one record per account."""
        for accounts in self.score_chunks(rows, chunk_size=chunk_size, progress=progress):
            cards = [account.to_card() for account in accounts]
            yield ScoredChunk(
                account_id=[a.account_id for a in accounts],
                account_name=[a.account_name for a in accounts],
                owner=[a.owner for a in accounts],
                segment=[a.segment or "" for a in accounts],
                risk=np.array([a.risk for a in accounts], dtype=float),
                records=[CardCodec.encode(card) for card in cards],
            )


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


def _dates(column: pd.Series) -> list[dt.date]:
    """A date column as ``datetime.date`` objects, each distinct value converted once (a
    snapshot has one as-of date, not one per account)."""
    codes, uniques = pd.factorize(column)
    days = [pd.Timestamp(value).date() for value in uniques]
    return [days[code] for code in codes.tolist()]


def _optional_texts(rows: pd.DataFrame, column: str | None, n: int) -> list[str | None]:
    """An optional role's column as text per row (None where empty or not configured)."""
    if column is None:
        return [None] * n
    return [None if pd.isna(v) else str(v) for v in rows[column].tolist()]


def _urls(features: FeatureSet, schema: AccountSchema, rows: pd.DataFrame) -> list[str | None]:
    """Each account's CRM link: the schema's url column, else the card's URL template filled
    with the row's values (None where a value it needs is empty)."""
    column = schema.optional_column("url")
    template = features.config.card.crm_url
    if column is not None or template is None:
        return _optional_texts(rows, column, len(rows))
    fields = features.config.card.url_fields
    values = rows[list(dict.fromkeys(fields))].astype("object").to_dict("records")
    return [
        None
        if any(pd.isna(v) for v in record.values())
        else template.format_map({str(k): quote(str(v), safe="") for k, v in record.items()})
        for record in values
    ]


def _context_lines(
    features: FeatureSet, rows: pd.DataFrame, values: pd.DataFrame
) -> list[tuple[tuple[str, str], ...]]:
    """Each row's card context line: (label, text) per configured item, empty ones left out.

    Written column by column, each distinct value formatted once (a book has a handful of
    segments and plans and a few hundred renewal dates).
    """
    columns = []
    for item in features.config.card.items:
        source = rows[item.column] if item.column in rows else values[item.column]
        label = item.label or item.column.replace("_", " ").capitalize()
        codes, uniques = pd.factorize(source)
        texts = [_context_text(value, item.format) for value in uniques]
        columns.append([(label, texts[code]) if code >= 0 else None for code in codes.tolist()])
    return (
        [tuple(pair for pair in line if pair is not None) for line in zip(*columns, strict=True)]
        if columns
        else [()] * len(rows)
    )


def _context_text(value: object, template: str | None) -> str:
    if template is not None:
        try:
            return template.format(value=value)
        except (ValueError, TypeError):
            pass  # a value the format does not fit (text in a number format): shown plainly
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        return f"{value:%b %d, %Y}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return str(value)


def latest_rows(frame: pd.DataFrame, schema: AccountSchema) -> pd.DataFrame:
    """Each account's newest row, for accounts that had not churned by then.

    Accounts are observed on their own dates in some exports, so "newest" is per account, not
    the newest date of the whole table. A churn-date label tells whether the account had
    churned by the end of the data; a yes/no label marks an account already lost as churned.
    """
    date, account = schema.date_column, schema.id_column
    ordered = frame.sort_values(date, kind="stable")
    latest = ordered.drop_duplicates(account, keep="last").sort_index()
    label = latest[schema.label_column]
    if schema.label_is_date:
        live = label.isna() | (label > frame[date].max())
    else:
        live = ~label.astype("boolean").fillna(False).astype(bool)
    return latest[live].reset_index(drop=True)


def predict_risk(
    estimator: object,
    features: FeatureSet,
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
        x = features.build(chunk)
        out[start : start + len(chunk)] = estimator.predict_proba(x)[:, 1]  # type: ignore[attr-defined]
        if progress:
            progress(start + len(chunk), total)
    return out
