"""Which accounts an export of shared snapshots has stopped listing.

A weekly export lists every account the team still has on each snapshot date; an account that
is missing from the newest snapshot has been dropped from the CRM (lost, merged, deleted)
whether or not anyone recorded a churn date. Its newest row is weeks old, and scoring it would
put an account the team no longer has into the digests with a confident, stale risk. So such
an account is not scored, and the run says how many were left out and why.

Only a table of shared snapshots says this. An export whose accounts are observed on their own
dates (a billing day each, a last activity date, one row each) has no date on which every
account is due, and an account listed long ago may simply be quiet: there every account keeps
its newest row (:func:`models.scoring.live_rows`). The two are told apart by the two newest
dates: in shared snapshots the newest lists most of the accounts the one before it listed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Share of the accounts of the date before the newest that the newest date must list for
#: the table to be read as shared snapshots (a weekly book loses a few percent a week).
SHARED_SHARE = 0.5
#: How many unlisted accounts a message names.
NAMED = 5


@dataclass(frozen=True)
class Turnover:
    """The newest snapshot against the one before it: of the accounts ``previous`` listed
    (``before``), how many the newest (``newest``) lists again (``kept``). A health check
    holds the scores back when too many are missing (:func:`models.health.check_completeness`):
    an export cut short would otherwise drop them from every digest."""

    newest: dt.date
    previous: dt.date
    before: int
    kept: int

    @property
    def missing_share(self) -> float:
        return 1 - self.kept / self.before if self.before else 0.0


@dataclass(frozen=True)
class Unlisted:
    """Accounts the newest snapshot no longer lists: their ids and the date each was last
    listed (empty when the table is not one of shared snapshots), and the ``turnover`` from
    the snapshot before (None when the table has no such two snapshots)."""

    newest: np.datetime64 | None
    ids: pd.Index
    last_listed: np.ndarray
    turnover: Turnover | None = None

    @classmethod
    def none(cls, turnover: Turnover | None = None) -> Unlisted:
        return cls(None, pd.Index([]), np.array([], dtype="datetime64[D]"), turnover)

    def __len__(self) -> int:
        return len(self.ids)

    def among(self, ids: pd.Index) -> Unlisted:
        """Those of ``ids`` (the accounts that would have been scored: one whose churn was
        recorded is left out for that reason, not this one)."""
        keep = self.ids.isin(ids)
        return Unlisted(self.newest, self.ids[keep], self.last_listed[keep], self.turnover)

    def message(self) -> str | None:
        """One line for the run's output, naming a few of them (the most recently listed first)."""
        if not len(self) or self.newest is None:
            return None
        order = np.argsort(self.last_listed, kind="stable")[::-1][:NAMED]
        named = ", ".join(
            f"{self.ids[i]} (last listed {self.last_listed[i]})" for i in order.tolist()
        )
        more = f" and {len(self) - NAMED:,} more" if len(self) > NAMED else ""
        return (
            f"{len(self):,} account(s) not scored: the newest snapshot ({self.newest}) no longer "
            f"lists them, so their rows are out of date: {named}{more}. If they churned, a churn "
            "date or yes in the label column lets training learn from them."
        )


def unlisted(codes: np.ndarray, dates: np.ndarray, ids: pd.Index) -> Unlisted:
    """The accounts of a table of shared snapshots that its newest date does not list.

    ``codes`` numbers each row's account 0, 1, ... (-1 for a row whose id cannot be read),
    ``dates`` are the rows' dates (datetime64; NaT where unreadable: such rows are ignored)
    and ``ids`` the account of each code. Every row counts, rejected by validation or not: an
    account whose newest row is malformed is still listed.

    The table is one of shared snapshots when the newest date lists at least
    :data:`SHARED_SHARE` of the accounts the date before it listed: a weekly book keeps most
    of its accounts from one week to the next, while on per-account dates the accounts of one
    day are due again weeks later. When the newest lists fewer but the two dates before it
    were shared snapshots, the newest looks cut short (or is a stray date, a typo in one
    row): no account is taken for unlisted, and the turnover says what is missing.
    """
    readable = (codes >= 0) & ~np.isnat(dates)
    code, day = codes[readable], dates[readable].astype("datetime64[D]").astype(np.int64)
    if not len(code):
        return Unlisted.none()
    last = np.full(len(ids), np.iinfo(np.int64).min)
    np.maximum.at(last, code, day)
    newest = int(day.max())
    before = day < newest
    if not before.any():  # one snapshot
        return Unlisted.none()
    previous = int(day[before].max())
    on_previous = np.unique(code[day == previous])
    turnover = Turnover(
        _date(newest), _date(previous), len(on_previous), int((last[on_previous] == newest).sum())
    )
    if turnover.kept < SHARED_SHARE * turnover.before:
        earlier = day < previous
        if not earlier.any():
            return Unlisted.none()
        listed_then = np.zeros(len(ids), dtype=bool)
        listed_then[on_previous] = True
        kept_then = listed_then[code[day == day[earlier].max()]].mean()
        # Shared snapshots until the newest: it is cut short; else per-account dates.
        return Unlisted.none(turnover if kept_then >= SHARED_SHARE else None)
    gone = np.flatnonzero((last > np.iinfo(np.int64).min) & (last < newest))
    return Unlisted(
        np.datetime64(newest, "D"), ids[gone], last[gone].astype("datetime64[D]"), turnover
    )


def _date(day: int) -> dt.date:
    return np.datetime64(day, "D").astype(dt.date)
