"""The track record a CSM sees: how often the accounts churnbot flagged really churned.

A CSM is asked to act on a red dot; the honest answer to "should I believe it?" is what
happened to the accounts flagged before. Every served snapshot leaves a :class:`FlagEntry`
(the ids of its high-band accounts, counts per band, and a fixed sample of the whole book for
the base rate); once one horizon has passed, the real outcomes say how many churned.

Pure: entries, a ``churned(account_id, as_of)`` lookup (True, False, or None while unknown)
and dates in; rates out. Below a minimum of known outcomes the figures say "too few", never a
number that one account more would swing.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import hashlib
import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from models.spec import RiskBands

BANDS = ("high", "medium", "low")
#: ``churned(account_id, as_of)``: did the account churn within the horizon after ``as_of``?
#: None while the data does not tell yet.
Churned = Callable[[str, dt.date], bool | None]


@dataclass(frozen=True)
class Rate:
    """``churned`` of ``known`` accounts whose outcome is known."""

    churned: int
    known: int

    @property
    def share(self) -> float | None:
        return self.churned / self.known if self.known else None


@dataclass(frozen=True)
class FlagEntry:
    """What one served snapshot flagged: every high-band account, the count of each band,
    a sample of the whole book (account id -> band) for the base rate and the other bands,
    and the model's churn rate per band on its held-out evaluation."""

    snapshot_id: str
    as_of: dt.date
    model_version: str
    n_accounts: int
    bands: Mapping[str, int]
    flagged: tuple[str, ...]
    sample: Mapping[str, str]
    evaluation: Mapping[str, Rate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "as_of": self.as_of.isoformat(),
            "model_version": self.model_version,
            "n_accounts": self.n_accounts,
            "bands": dict(self.bands),
            "flagged": list(self.flagged),
            "sample": dict(self.sample),
            "evaluation": {b: [r.churned, r.known] for b, r in self.evaluation.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlagEntry:
        return cls(
            snapshot_id=data["snapshot_id"],
            as_of=dt.date.fromisoformat(data["as_of"]),
            model_version=data["model_version"],
            n_accounts=data["n_accounts"],
            bands=data["bands"],
            flagged=tuple(data["flagged"]),
            sample=data["sample"],
            evaluation={b: Rate(c, k) for b, (c, k) in data.get("evaluation", {}).items()},
        )


def flag_entry(
    *,
    snapshot_id: str,
    as_of: dt.date,
    model_version: str,
    account_ids: Sequence[str],
    bands: Sequence[str],
    sample_size: int,
    evaluation: Mapping[str, Rate] | None = None,
) -> FlagEntry:
    """The entry of one snapshot from each account's id and band (``bands[i]`` is
    ``account_ids[i]``'s).

    The sample keeps the ``sample_size`` ids of smallest hash: uniform over the book, and the
    same accounts snapshot after snapshot, so memory stays bounded whatever the book's size.
    A scoring run passes a million accounts through here, so the work per account stays in
    C: one hash each, then ``heapq.nsmallest`` over (hash, id, band) triples.
    """
    if len(account_ids) != len(bands):
        raise ValueError(f"{len(account_ids)} account ids but {len(bands)} bands")
    counts = dict.fromkeys(BANDS, 0) | collections.Counter(bands)
    ranks = [hashlib.blake2b(a.encode(), digest_size=8).digest() for a in account_ids]
    kept = heapq.nsmallest(sample_size, zip(ranks, account_ids, bands, strict=True))
    return FlagEntry(
        snapshot_id=snapshot_id,
        as_of=as_of,
        model_version=model_version,
        n_accounts=len(account_ids),
        bands=counts,
        flagged=tuple(sorted(itertools.compress(account_ids, [b == "high" for b in bands]))),
        sample={account_id: band for _, account_id, band in reversed(kept)},
        evaluation=dict(evaluation or {}),
    )


def window(today: dt.date, horizon_days: int) -> tuple[dt.date, dt.date]:
    """Flags whose outcome can be known by ``today``: from two horizons ago (exclusive) to
    one horizon ago (inclusive)."""
    until = today - dt.timedelta(days=horizon_days)
    return until - dt.timedelta(days=horizon_days), until


def _first_seen(
    entries: Sequence[FlagEntry], today: dt.date, horizon_days: int
) -> tuple[dict[str, tuple[dt.date, str]], dict[str, tuple[dt.date, str]]]:
    """Each account's first appearance in the window, (as_of, band), among the flagged
    accounts (all high) and among the book's sample (every band), in one pass."""
    since, until = window(today, horizon_days)
    flagged: dict[str, tuple[dt.date, str]] = {}
    sample: dict[str, tuple[dt.date, str]] = {}
    for entry in sorted(entries, key=lambda e: e.as_of):
        if not since < entry.as_of <= until:
            continue
        seen = (entry.as_of, "high")
        for account_id in entry.flagged:
            flagged.setdefault(account_id, seen)
        for account_id, band in entry.sample.items():
            sample.setdefault(account_id, (entry.as_of, band))
    return flagged, sample


def _rate(first: Mapping[str, tuple[dt.date, str]], churned: Churned) -> Rate:
    outcomes = [churned(account_id, as_of) for account_id, (as_of, _) in first.items()]
    return Rate(sum(o is True for o in outcomes), sum(o is not None for o in outcomes))


@dataclass(frozen=True)
class TrackRecord:
    """Of ``flagged`` accounts flagged high between ``since`` (exclusive) and ``until``, how
    many churned within the horizon, against the whole book's rate over the same dates."""

    since: dt.date
    until: dt.date
    horizon_days: int
    flagged: int
    flagged_rate: Rate
    base_rate: Rate
    min_outcomes: int

    @property
    def enough(self) -> bool:
        return min(self.flagged_rate.known, self.base_rate.known) >= self.min_outcomes


@dataclass(frozen=True)
class RiskLevel:
    """How often accounts of one band churned: from live outcomes once there are enough,
    else from the model's held-out evaluation; ``rate`` None when neither has enough."""

    band: str
    rate: Rate | None
    source: Literal["live", "evaluation", "none"]
    live_known: int
    min_outcomes: int
    horizon_days: int


def summarise(
    entries: Sequence[FlagEntry],
    churned: Churned,
    *,
    today: dt.date,
    horizon_days: int,
    min_outcomes: int,
) -> tuple[TrackRecord, dict[str, RiskLevel]]:
    """The track record and the churn rate per band, from one pass over the entries (each
    outcome looked up once).

    Risk levels: high counts every flagged account, the other bands the book's sample; below
    ``min_outcomes`` live outcomes a band falls back on the model's held-out evaluation, from
    the newest entry (the model being served)."""
    flagged, sample = _first_seen(entries, today, horizon_days)
    lookup = functools.cache(churned)
    since, until = window(today, horizon_days)
    flagged_rate = _rate(flagged, lookup)
    record = TrackRecord(
        since=since,
        until=until,
        horizon_days=horizon_days,
        flagged=len(flagged),
        flagged_rate=flagged_rate,
        base_rate=_rate(sample, lookup),
        min_outcomes=min_outcomes,
    )
    live = {"high": flagged_rate}
    for band in BANDS[1:]:
        live[band] = _rate({a: seen for a, seen in sample.items() if seen[1] == band}, lookup)
    evaluation = max(entries, key=lambda e: e.as_of).evaluation if entries else {}
    levels = {}
    for band in BANDS:
        rate, known = live[band], live[band].known
        if known >= min_outcomes:
            levels[band] = RiskLevel(band, rate, "live", known, min_outcomes, horizon_days)
        elif band in evaluation and evaluation[band].known >= min_outcomes:
            levels[band] = RiskLevel(
                band, evaluation[band], "evaluation", known, min_outcomes, horizon_days
            )
        else:
            levels[band] = RiskLevel(band, None, "none", known, min_outcomes, horizon_days)
    return record, levels


def evaluation_rates(calibration: Iterable[Mapping[str, Any]], bands: RiskBands) -> dict[str, Rate]:
    """The model's churn rate per band on its held-out evaluation, from the calibration table
    of its card (``metrics["calibration"]``): each bin counted in the band of its mean
    predicted risk."""
    totals = {band: [0.0, 0] for band in BANDS}
    for row in calibration:
        total = totals[bands.band(float(row["mean_predicted"]))]
        total[0] += float(row["observed_rate"]) * int(row["count"])
        total[1] += int(row["count"])
    return {band: Rate(round(c), int(k)) for band, (c, k) in totals.items() if k}
