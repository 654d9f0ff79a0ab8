"""The rows a scoring run needs: each account's newest, and the accuracy check's known outcomes.

A weekly export keeps every week of every account, so a year of a million accounts is fifty
million rows, while a scoring run scores one row per account (the newest), judges accuracy
on one week of rows whose outcomes are known by now (:func:`models.monitoring.known_window`)
and, for the abstain check, needs to know only whether an account was first seen recently.
Reading, checking and holding the other weeks is most of the cost of a run and tells it
nothing, so a loader asked for :class:`ScoringRows` reads the id, date and label of every row
first, picks the rows needed here, and validates only those.

"Newest" and "live" are per account, as in :func:`models.scoring.latest_rows`: accounts
observed on their own dates keep their own newest row, and an account whose newest row says
it has churned is not scored, so that row is not read, unless an older row of the account is
(the accuracy check's week holds one): that row, a yes/no label's "no" of weeks before, would
otherwise pass for the account's newest and have a lost account scored as live. A row whose
id or date cannot be read is always kept, so validation still reports it.
When validation rejects an account's newest row, the account's next-newest row is read and
checked too, as it would have been had every row been read: the account is scored on its last
good row, not dropped. Reject counts (and the reject limit) are then those of the rows read.
Which accounts the newest snapshot no longer lists (:mod:`models.listing`) is found from every
row's keys too, so an account whose newest row was rejected is still listed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from models.contract import AccountSchema
from models.listing import Unlisted, unlisted
from models.monitoring import in_window, known_window
from models.sources_config import SourcesConfig
from models.validate import LoadResult, Reject, RowKeys, row_keys, validate_frame

ReadRows = Callable[[np.ndarray], pd.DataFrame]


@dataclass(frozen=True)
class ScoringRows:
    """Ask a loader for what a scoring run reads, not the whole history.

    ``history_days`` is the abstain check's ``min_history_days`` (0: off): an account first
    seen fewer days before its newest row is too new to score, so for each live account the
    rows that tell its first-seen date apart from "long enough ago" are read too (see
    :meth:`_Picker.history`).
    """

    horizon_days: int
    history_days: int = 0


class _Picker:
    """Picks the rows of :class:`ScoringRows` from every row's keys, as often as rows are
    picked again after rejections."""

    def __init__(self, need: ScoringRows, keys: RowKeys, schema: AccountSchema) -> None:
        self._need = need
        self._dates = keys.dates
        self._day = keys.dates.view("int64")
        self._readable = (keys.accounts >= 0) & ~np.isnat(keys.dates)
        self._codes = keys.accounts
        self._accounts = int(keys.accounts.max(initial=-1)) + 1
        self._churned = _churned(keys, schema)
        self._ids = keys.ids

    def unlisted(self) -> Unlisted:
        """The accounts the newest snapshot no longer lists, from every row's keys."""
        return unlisted(self._codes, self._dates, self._ids)

    def pick(self, usable: np.ndarray) -> np.ndarray:
        """Rows at their account's newest usable date unless that row says the account has
        churned, rows of the known-outcome window of the usable rows (and the newest row of
        an account they belong to, so that none passes for it), and rows whose id or date
        cannot be read. ``usable`` leaves out rows already rejected, so an account whose
        newest row failed gets its next one."""
        counted = self._readable & usable
        every = bool(counted.all())
        codes = self._codes if every else self._codes[counted]
        day = self._day if every else self._day[counted]
        newest = np.full(self._accounts + 1, np.iinfo(np.int64).min)  # the last for code -1
        np.maximum.at(newest, codes, day)
        at_newest = (self._day == newest[self._codes]) & counted
        live = at_newest & ~self._churned
        keep = ~self._readable | live
        window = known_window(
            self._dates if every else self._dates[counted], self._need.horizon_days
        )
        if window is not None:
            outcomes = self._readable & in_window(self._dates, window)
            keep |= outcomes
            read = np.zeros(self._accounts + 1, dtype=bool)
            read[self._codes[outcomes & counted]] = True
            keep |= at_newest & self._churned & read[self._codes]
        if self._need.history_days:
            keep |= self.history(counted, newest, live, keep)
        return keep

    def history(
        self, counted: np.ndarray, newest: np.ndarray, live: np.ndarray, keep: np.ndarray
    ) -> np.ndarray:
        """Rows that make a live account's first-seen date in the rows read
        (:func:`models.abstain.first_seen`) give the same verdict as in the whole table:
        an account with a row at least ``history_days`` older than its newest keeps one
        such row (its latest, unless one is read already), and any other account its
        first row, whose date is then its true age."""
        codes, day = self._codes, self._day
        slots = self._accounts + 1  # the last for code -1, never live
        alive = np.zeros(slots, dtype=bool)
        alive[codes[live]] = True
        rows = counted & alive[codes]
        history = np.timedelta64(self._need.history_days, "D").astype("timedelta64[ns]")
        old = rows & (day <= newest[codes] - history.astype(np.int64))
        has_old, kept_old = np.zeros(slots, dtype=bool), np.zeros(slots, dtype=bool)
        has_old[codes[old]] = True
        kept_old[codes[old & keep]] = True
        latest_old = np.full(slots, np.iinfo(np.int64).min)
        np.maximum.at(latest_old, codes[old], day[old])
        first = np.full(slots, np.iinfo(np.int64).max)
        np.minimum.at(first, codes[rows], day[rows])
        lacking = (has_old & ~kept_old)[codes]
        return (old & lacking & (day == latest_old[codes])) | (
            rows & ~has_old[codes] & (day == first[codes])
        )


def _churned(keys: RowKeys, schema: AccountSchema) -> np.ndarray:
    """Rows that say their account has churned or is leaving (a churn date recorded, or a
    yes/no label's yes): as a newest row, such an account is not live
    (:func:`models.scoring.latest_rows`), so it is not scored."""
    if schema.label_is_date:
        return ~np.isnat(keys.labels)
    return keys.labels


def validate_table(
    raw: pd.DataFrame,
    schema: AccountSchema,
    *,
    source: str,
    sources: SourcesConfig,
    record_label: str,
    records: np.ndarray | None = None,
    unreadable: Sequence[Reject] = (),
    need: ScoringRows | None = None,
) -> LoadResult:
    """:func:`validate_frame` for a table read whole (CSV, HTTP, SQL): every row, or with
    ``need`` only the rows it picks. ``records`` numbers the rows (default 1, 2, ...)."""
    if records is None:
        records = np.arange(1, len(raw) + 1)
    if need is None:
        return validate_frame(
            raw,
            schema,
            source=source,
            sources=sources,
            records=records,
            record_label=record_label,
            unreadable=unreadable,
        )

    def read(positions: np.ndarray) -> pd.DataFrame:
        return raw if len(positions) == len(raw) else raw.iloc[positions]

    return validate_needed(
        raw,
        read,
        need,
        schema,
        source=source,
        sources=sources,
        records=records,
        record_label=record_label,
        unreadable=unreadable,
    )


def validate_needed(
    keys: pd.DataFrame,
    read: ReadRows,
    need: ScoringRows,
    schema: AccountSchema,
    *,
    source: str,
    sources: SourcesConfig,
    records: np.ndarray,
    record_label: str,
    unreadable: Sequence[Reject] = (),
) -> LoadResult:
    """Validate only the rows ``need`` picks, like :func:`validate_frame` on the whole table.

    ``keys`` holds at least the id and date columns of every row (as read, before the
    mapping); ``read(positions)`` returns the raw rows at 0-based ``positions``, in order;
    ``records`` numbers every row. Rows ``unreadable`` names are always read. Reject counts
    and the reject limit then apply to the rows read.
    """
    parsed = row_keys(keys, schema, sources)
    every = np.ones(len(records), dtype=bool)
    picker = None if parsed is None else _Picker(need, parsed, schema)
    # Without a key column every row is read, and validation says which column is missing.
    keep = every.copy() if picker is None else picker.pick(every)
    keep[np.isin(records, [reject.record for reject in unreadable])] = True
    # From every row's keys, once: the rows read would make an account whose newest row was
    # rejected look unlisted.
    listing = None if picker is None else picker.unlisted()
    rejected = np.zeros(len(records), dtype=bool)
    while True:
        positions = np.flatnonzero(keep)
        kept = set(records[positions].tolist()) if unreadable else set()
        result = validate_frame(
            # Numbered 0, 1, ... like a table read whole: cells are matched by position.
            read(positions).reset_index(drop=True),
            schema,
            source=source,
            sources=sources,
            records=records[positions],
            record_label=record_label,
            unreadable=[reject for reject in unreadable if reject.record in kept],
            unlisted=listing,
        )
        if picker is None:
            return result
        rejected[positions] = np.isin(records[positions], result.rejected_rows.index.to_numpy())
        more = picker.pick(~rejected) & ~keep if rejected.any() else rejected
        if not more.any():
            return replace(result, source_rows=len(records))
        keep |= more
