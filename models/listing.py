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
A newest date that lists fewer is cut short when the dates before it were shared snapshots,
or, in a table of only two dates, when most of the accounts it lists were listed on the
first (on dates of their own, each account would be on one of the two).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

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
    #: Set when the table has only these two dates and the newest lists under
    #: :data:`SHARED_SHARE` of the accounts of the first: how many accounts the newest lists
    #: that the first did not (no more than it lists again, else the table is read as accounts
    #: on dates of their own).
    new: int | None = None

    @property
    def missing_share(self) -> float:
        return 1 - self.kept / self.before if self.before else 0.0


@dataclass(frozen=True)
class Unlisted:
    """Accounts the newest snapshot no longer lists: their ids and the date each was last
    listed (empty when the table is not one of shared snapshots), and the ``turnover`` from
    the snapshot before (None when the table has no such two snapshots; never None when
    some account is unlisted)."""

    ids: pd.Index
    last_listed: np.ndarray
    turnover: Turnover | None = None

    @classmethod
    def none(cls, turnover: Turnover | None = None) -> Unlisted:
        return cls(pd.Index([]), np.array([], dtype="datetime64[D]"), turnover)

    def __len__(self) -> int:
        return len(self.ids)

    def among(self, ids: pd.Index) -> Unlisted:
        """Those of ``ids`` (the accounts that would have been scored: one whose churn was
        recorded is left out for that reason, not this one)."""
        keep = self.ids.isin(ids)
        return Unlisted(self.ids[keep], self.last_listed[keep], self.turnover)

    def message(self) -> str | None:
        """One line for the run's output, naming a few of them (the most recently listed first)."""
        if not len(self) or self.turnover is None:
            return None
        order = np.argsort(self.last_listed, kind="stable")[::-1][:NAMED]
        named = ", ".join(
            f"{self.ids[i]} (last listed {self.last_listed[i]})" for i in order.tolist()
        )
        more = f" and {len(self) - NAMED:,} more" if len(self) > NAMED else ""
        return (
            f"{len(self):,} account(s) not scored: the newest snapshot "
            f"({self.turnover.newest}) no longer lists them, so their rows are out of date: "
            f"{named}{more}. If they churned, a churn date or yes in the label column lets "
            "training learn from them."
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
    row): no account is taken for unlisted, and the turnover says what is missing. So it is
    when the table has only those two dates and at least :data:`SHARED_SHARE` of the accounts
    the newest lists were listed on the first: a second snapshot cut short, since on dates of
    their own each account would have one of the two (a single snapshot has no newest to
    judge).

    A year of a million weekly accounts is fifty million rows, so this is a few passes over
    whole arrays, without sorting or selecting rows.
    """
    day = _days(dates)
    readable = (codes >= 0) & (day != NO_DAY)
    if not readable.any():
        return Unlisted.none()
    every = bool(readable.all())
    code = codes if every else np.where(readable, codes, len(ids))  # a spare slot
    day = day if every else np.where(readable, day, NO_DAY)
    last = np.full(len(ids) + 1, NO_DAY)
    np.maximum.at(last, code, day)
    last = last[:-1]
    newest = int(day.max())
    previous = int(np.max(day, where=day < newest, initial=NO_DAY))
    if previous == NO_DAY:  # one snapshot
        return Unlisted.none()
    on_previous = _listed_on(code, day, previous, len(ids))
    turnover = Turnover(
        _date(newest),
        _date(previous),
        int(on_previous.sum()),
        int((on_previous & (last == newest)).sum()),
    )
    if turnover.kept < SHARED_SHARE * turnover.before:
        earlier = int(np.max(day, where=day < previous, initial=NO_DAY))
        if earlier == NO_DAY:  # two dates: cut short if the newest lists few new accounts
            new = int(((last == newest) & ~on_previous).sum())
            returning = turnover.kept >= SHARED_SHARE * (turnover.kept + new)
            return Unlisted.none(replace(turnover, new=new) if returning else None)
        on_earlier = _listed_on(code, day, earlier, len(ids))
        kept_then = (on_earlier & on_previous).sum() / on_earlier.sum()
        # Shared snapshots until the newest: it is cut short; else per-account dates.
        return Unlisted.none(turnover if kept_then >= SHARED_SHARE else None)
    gone = np.flatnonzero((last != NO_DAY) & (last < newest))
    return Unlisted(ids[gone], last[gone].astype("datetime64[D]"), turnover)


#: The day of a row that has none (NaT's integer).
NO_DAY = np.iinfo(np.int64).min
_NS_PER_DAY = 86_400 * 10**9


def _days(dates: np.ndarray) -> np.ndarray:
    """Whole days since 1970 as int64, :data:`NO_DAY` for NaT (nanosecond dates by integer
    division: numpy's unit cast of fifty million of them takes seconds)."""
    if np.datetime_data(dates.dtype)[0] != "ns":
        dates = dates.astype("datetime64[D]")
        return dates.view(np.int64)
    ns = dates.view(np.int64)
    return np.where(ns == NO_DAY, NO_DAY, ns // _NS_PER_DAY)


def _listed_on(code: np.ndarray, day: np.ndarray, on: int, accounts: int) -> np.ndarray:
    """Which accounts have a row dated ``on``."""
    listed = np.zeros(accounts + 1, dtype=bool)
    listed[code[day == on]] = True
    return listed[:-1]


def _date(day: int) -> dt.date:
    return np.datetime64(day, "D").astype(dt.date)
