"""Batch scoring: risk, band, reasons and one recommended action for every live account.

Scoring produces arrays, never one Python object per account: risk and contributions from one
pass of the model, the top reasons by array operations, the playbook as boolean masks, whether
the data is too thin to score (:mod:`models.abstain`), and a compact record per account
(:mod:`models.cards`) holding the numbers a card's sentences are rendered from when the card
is read; a chunk's records are one buffer, its texts packed UTF-8.

Work goes in chunks so memory stays flat as the book grows: features and contributions exist
for one slice at a time, and callers consume an iterator of chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from models import listing
from models.abstain import InputColumns, Thin, thin
from models.cards import (
    ABSTAIN_AGE,
    ABSTAIN_FLAG,
    BANDS,
    FROM_SEGMENT,
    CardCodec,
    ScoredChunk,
    Texts,
    codec_spec,
    mask_bytes,
)
from models.contract import AccountSchema
from models.errors import ModelError
from models.explain import risk_and_contributions
from models.features import FeatureSet
from models.listing import Unlisted
from models.packing import HEADER_ROW, Records, texts
from models.playbook import TOP_REASON_COLUMNS, Coded, Playbook
from models.reasons import ReasonWriter
from models.registry import LoadedModel
from models.spec import AbstainSettings, RiskBands

if TYPE_CHECKING:
    from models.playbook import Column

DEFAULT_CHUNK = 50_000


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
    #: When an account is too thin to score (None: every account is scored).
    abstain: AbstainSettings | None = None
    #: The date each live account first appears in the data (index of the rows scored), for
    #: the abstain history check; None: ages unknown, not judged.
    first_seen: pd.Series | None = None

    def __post_init__(self) -> None:
        """A model reads the columns it was trained on; one trained under another data
        configuration (another export, another config folder sharing the registry) would
        fail later on the first chunk, with a message about the data rather than the model."""
        foreign = self.model.features.columns_outside(self.schema)
        if foreign:
            raise ModelError(
                f"model {self.model.card.version} was trained on another data configuration: "
                f"it reads column(s) {', '.join(foreign)}, which this configuration's schema "
                "does not declare; train a model on this configuration first (`churnbot train`)"
            )

    def with_first_seen(self, first_seen: pd.Series | None) -> Scorer:
        """This scorer, judging accounts' ages by ``first_seen`` (see :mod:`models.abstain`)."""
        return replace(self, first_seen=first_seen)

    @cached_property
    def features(self) -> FeatureSet:
        return self.model.features

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return self.model.estimator.predict_proba(self.features.build(rows))[:, 1]

    def codec(self) -> CardCodec:
        """How this run's records read back as cards (stored once per snapshot)."""
        return CardCodec(self._spec)

    @cached_property
    def _spec(self) -> dict[str, object]:
        card = self.features.config.card
        return codec_spec(
            reasons=self.writer.spec(),
            actions=[(e.name, e.action, e.why, e.owner) for e in self.playbook.entries],
            context=[
                (item.label or item.column.replace("_", " ").capitalize(), item.format)
                + ((FROM_SEGMENT,) if item.column in self._segment_items else ())
                for item in card.items
            ],
            link=self._link,
            model_version=self.model.card.version,
            abstain=None
            if self.abstain is None
            else {
                "labels": self._inputs.labels(),
                "history": list(self._inputs.history),
                "min_history_days": self.abstain.min_history_days,
            },
        )

    @cached_property
    def _segment_items(self) -> frozenset[str]:
        """Context items the card shows from the account's indexed segment: the segment
        column itself, when it is text (a number would read differently as text)."""
        column = self.schema.optional_column("segment")
        if column is None or self.schema.columns[column].type not in ("string", "category"):
            return frozenset()
        return frozenset({column})

    @cached_property
    def _inputs(self) -> InputColumns:
        return InputColumns.of(self.features)

    @cached_property
    def _link(self) -> dict[str, object]:
        return link_spec(self.features, self.schema)

    def column_chunks(
        self,
        rows: pd.DataFrame,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[ScoredChunk]:
        """The book scored chunk by chunk: columns plus one record per account, so memory
        stays flat as the book grows (the publisher stores each chunk before the next)."""
        total = len(rows)
        for start in range(0, total, chunk_size):
            chunk = rows.iloc[start : start + chunk_size]
            yield self.score(chunk)
            if progress:
                progress(start + len(chunk), total)

    def score(self, rows: pd.DataFrame) -> ScoredChunk:
        """Score, explain and recommend for one chunk of account rows, as arrays."""
        features = self.features.build(rows)
        reference = self.model.card.notes["explain_reference"]
        risk, contributions = risk_and_contributions(self.model.estimator, features, reference)
        chosen = self.writer.choose(contributions)
        band = np.where(risk >= self.bands.high, 2, np.where(risk >= self.bands.medium, 1, 0))
        n = len(rows)
        header = np.empty(n, dtype=HEADER_ROW)
        header["as_of"] = _days(rows[self.schema.date_column])
        header["rule"] = self._rules(chosen.order, chosen.shown, band, rows, features)
        header["band"] = band
        abstained = self._abstained(rows)
        header["count"] = chosen.counts() | np.where(abstained.any, ABSTAIN_FLAG, 0)
        records = Records(n)
        everyone = np.arange(n)
        records.add_fixed(everyone, header.view(np.uint8).reshape(n, HEADER_ROW.itemsize))
        self.writer.pack(chosen, rows, features, records)
        for item in self.features.config.card.items:
            column = item.column
            if column not in self._segment_items:
                records.add_values(everyone, rows[column] if column in rows else features[column])
        pack_link(self._link, rows, records)
        abstained.pack(records)
        schema = self.schema
        segment = schema.optional_column("segment")
        return ScoredChunk(
            account_id=texts(rows[schema.id_column]),
            account_name=texts(rows[schema.name_column]),
            owner=texts(rows[schema.owner_column]),
            segment=Texts(b"", np.zeros(n + 1, dtype=np.int64))
            if segment is None
            else texts(rows[segment]),
            risk=risk,
            records=records.to_packed(),
            abstained=abstained.any,
        )

    def _abstained(self, rows: pd.DataFrame) -> _Abstained:
        if self.abstain is None:
            return _Abstained.none(len(rows), len(self._inputs.columns))
        verdict = thin(
            rows,
            self._inputs,
            self.abstain,
            date_column=self.schema.date_column,
            first_seen=self.first_seen,
        )
        return _Abstained(verdict)

    def _rules(
        self,
        order: np.ndarray,
        shown: np.ndarray,
        band: np.ndarray,
        rows: pd.DataFrame,
        features: pd.DataFrame,
    ) -> np.ndarray:
        """The index of each row's winning playbook rule (the default last)."""
        # Codes: a rule's condition on reasons or band is then a test on small integers.
        codes = np.array([*self.writer.codes, ""], dtype=object)
        top = np.where(shown, order, len(codes) - 1)
        blank = np.full(len(rows), len(codes) - 1)
        book: dict[str, Column] = {
            **{
                column: Coded(top[:, i] if i < top.shape[1] else blank, codes)
                for i, column in enumerate(TOP_REASON_COLUMNS)
            },
            "band": Coded(band, np.array(BANDS, dtype=object)),
            **{
                name: _condition_column(features[name] if name in features else rows[name])
                for name in self.playbook.columns
            },
        }
        return self.playbook.rule_indices(book)


@dataclass(frozen=True)
class _Abstained:
    """A chunk's abstain verdict and how its records say what is missing."""

    verdict: Thin

    @classmethod
    def none(cls, n: int, n_inputs: int) -> _Abstained:
        never = np.zeros(n, dtype=bool)
        return cls(Thin(np.zeros((n, n_inputs), dtype=bool), never, never, np.full(n, np.inf)))

    @property
    def any(self) -> np.ndarray:
        return self.verdict.abstained

    def pack(self, records: Records) -> None:
        """The tail :class:`models.cards.AbstainReader` reads, for the abstained rows only."""
        verdict = self.verdict
        where = np.flatnonzero(verdict.abstained)
        if not len(where):
            return
        width = mask_bytes(verdict.empty.shape[1])
        tail = np.zeros((len(where), ABSTAIN_AGE.size + width), dtype=np.uint8)
        age = np.where(verdict.too_new[where], verdict.age[where], -1).astype("<i4")
        tail[:, : ABSTAIN_AGE.size] = age.view(np.uint8).reshape(len(where), ABSTAIN_AGE.size)
        if width:
            empty = verdict.empty[where] & verdict.too_empty[where, None]
            tail[:, ABSTAIN_AGE.size :] = np.packbits(empty, axis=1, bitorder="little")
        records.add_fixed(where, tail)


def _condition_column(column: pd.Series) -> Column:
    """A column a playbook condition reads: numbers as they are, anything else as codes of its
    distinct values (a condition on text then looks up a handful of values)."""
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy()
    codes, uniques = pd.factorize(column)
    return Coded(codes, np.asarray(uniques, dtype=object))


def link_spec(features: FeatureSet, schema: AccountSchema) -> dict[str, object]:
    """How each card links to the CRM record (:class:`models.cards.LinkReader`): the schema's
    url column, else the card's URL template over the row's columns."""
    column = schema.optional_column("url")
    template = None if column is not None else features.config.card.crm_url
    fields = dict.fromkeys(features.config.card.url_fields) if template is not None else {}
    return {
        "column": column,
        "template": template,
        "fields": [[name, name == schema.id_column] for name in fields],
    }


def pack_link(link: Mapping[str, Any], rows: pd.DataFrame, records: Records) -> None:
    """Each row's values of its CRM link into ``records`` (what ``link_spec`` reads)."""
    everyone = np.arange(len(rows))
    if link["column"] is not None:
        records.add_values(everyone, rows[link["column"]])
    for name, from_id in link["fields"]:
        if not from_id:
            records.add_values(everyone, rows[name])


def _days(column: pd.Series) -> np.ndarray:
    """A date column as whole days since 1970-01-01 (the date part of each value)."""
    if getattr(column.dtype, "tz", None) is not None:
        column = column.dt.tz_localize(None)
    return column.to_numpy(dtype="datetime64[D]").astype(np.int32)


@dataclass(frozen=True)
class LiveRows:
    """Each live account's newest row, and the accounts left out because the export no longer
    lists them (:mod:`models.listing`), for the run to say so."""

    frame: pd.DataFrame
    unlisted: Unlisted
    #: The name of each of ``unlisted.ids``, in order (from its newest row), so that an
    #: account left out can still be recognised by the name people know it by.
    unlisted_names: tuple[str, ...] = ()


def live_rows(
    frame: pd.DataFrame, schema: AccountSchema, unlisted: Unlisted | None = None
) -> LiveRows:
    """Each account's newest row, for accounts that had not churned by then and that the
    export still lists.

    Accounts are observed on their own dates in some exports, so "newest" is per account, not
    the newest date of the whole table. An account with a churn date recorded has churned or
    is leaving (a cancellation noted, effective on that day, even one after the data's last
    date): its team knows, and a risk score would only contradict them (a "low risk" beside
    a cancellation), so it is not scored. A yes/no label marks an account already lost as
    churned. An account that a table of shared snapshots no longer lists is not scored either
    (:mod:`models.listing`): ``unlisted`` says which, as found from every row of the table
    (a loader that read only some rows found it from all the rows' keys); without it, it is
    found from ``frame``, which must then be the whole table.
    """
    date, account = schema.date_column, schema.id_column
    if unlisted is None:
        codes, ids = pd.factorize(frame[account])
        unlisted = listing.unlisted(codes, _days(frame[date]).astype("datetime64[D]"), ids)
    ordered = frame.sort_values(date, kind="stable")
    latest = ordered.drop_duplicates(account, keep="last").sort_index()
    label = latest[schema.label_column]
    if schema.label_is_date:
        live = label.isna().to_numpy()
    else:
        live = ~label.astype("boolean").fillna(False).to_numpy(bool)
    listed = ~latest[account].isin(unlisted.ids).to_numpy()
    gone = latest[live & ~listed]
    left_out = unlisted.among(pd.Index(gone[account].to_numpy()))
    names = gone.set_index(account)[schema.name_column].reindex(left_out.ids)
    return LiveRows(
        latest[live & listed].reset_index(drop=True),
        left_out,
        tuple(names.fillna("").astype(str).tolist()),
    )


def latest_rows(frame: pd.DataFrame, schema: AccountSchema) -> pd.DataFrame:
    """The rows :func:`live_rows` scores, of a whole table."""
    return live_rows(frame, schema).frame


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
