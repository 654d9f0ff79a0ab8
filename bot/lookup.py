"""Resolve `/churn ACCOUNT` text to one account, a pick list, or the closest names.

Kept apart from the listener so the matching rules are tested without Slack: an id (in any
case) or an exact (case- and accent-insensitive) name wins; several names with a word starting
with the text give a pick list, riskiest first, that says how many it leaves out; none gives
the names closest to what was typed, unless the text names an account that the served
snapshot's export no longer lists (so it has no score): then the answer says so. A scored
account always wins over such an account.

Everything comes from one ``SnapshotStore.lookup`` call (one Redis round trip, kill switch and
trend included), and its work is bounded whatever the size of the book: one lexicographic
lookup per probe in the name index and a few small blocks after it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the snapshot store needs numpy, loaded with the first lookup
    from bot.state.snapshots import Row, SnapshotMeta, SnapshotStore, UnlistedRow

MAX_QUERY = 200
#: A query with more words than any name is refused before any lookup.
MAX_WORDS = 12
#: Word prefixes probed for "did you mean" when nothing matches (each one bounded read).
MAX_PROBES = 6
PICK_LIMIT = 10
#: Most partial matches read to rank a pick list by risk and count what it leaves out: a
#: query matching more shows the riskiest of the best-matching names and says "at least".
PICK_CANDIDATES = 200
SUGGESTIONS = 5


@dataclass(frozen=True)
class Lookup:
    kind: Literal["card", "pick", "unlisted", "none", "too_long"]
    query: str
    card: dict[str, Any] | None = None
    matches: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    more: int = 0  # partial matches left out of ``matches``
    at_least: bool = False  # ``more`` is a lower bound: the candidates were capped
    #: The snapshot looked in (None: nothing to show) and the kill switch record that chose it.
    meta: SnapshotMeta | None = None
    switch: dict[str, str] = field(default_factory=dict)
    #: The card's trend points when they came with the lookup (None: read them separately).
    history: list[tuple[SnapshotMeta, float]] | None = None
    #: kind "unlisted": the accounts matched that the snapshot's export no longer lists (the
    #: one named exactly, else every match read), and that export's newest date (ISO).
    unlisted: list[UnlistedRow] = field(default_factory=list)
    export_newest: str | None = None


def resolve(store: SnapshotStore, query: str, *, switch_key: str) -> Lookup:
    """Look ``query`` up in the snapshot the kill switch at ``switch_key`` points readers to
    (``meta`` and ``switch`` say which it was)."""
    query = " ".join(query.split())
    if len(query) > MAX_QUERY or query.count(" ") >= MAX_WORDS:
        return Lookup("too_long", query[:MAX_QUERY])
    from bot.state.snapshots import normalize_name

    wanted = normalize_name(query)
    found = store.lookup(
        query,
        limit=PICK_CANDIDATES + 1,
        switch_key=switch_key,
        probes=probes(wanted),
        probe_limit=SUGGESTIONS * 2,
    )
    rows = ([found.by_id] if found.by_id else []) + found.matches
    exact = [row for row in rows if _is_exact(row, query, wanted)]
    chosen = exact[0] if len(exact) == 1 else found.by_id or (rows[0] if len(rows) == 1 else None)
    if chosen is not None:
        history = found.history if found.history_of == chosen.account_id else None
        return Lookup(
            "card",
            query,
            card=chosen.card(),
            history=history,
            meta=found.meta,
            switch=found.switch,
        )
    if rows:
        candidates = rows[:PICK_CANDIDATES]
        ranked = sorted(candidates, key=lambda row: (-row.risk, row.account_name))
        return Lookup(
            "pick",
            query,
            matches=[row.card() for row in ranked[:PICK_LIMIT]],
            more=max(0, len(candidates) - PICK_LIMIT),
            at_least=len(rows) > PICK_CANDIDATES or found.more,
            meta=found.meta,
            switch=found.switch,
        )
    if found.unlisted:
        gone = found.unlisted
        named = [row for row in gone if _is_exact_unlisted(row, query, wanted)]
        return Lookup(
            "unlisted",
            query,
            unlisted=gone if found.unlisted_by_id else named or gone,
            at_least=not found.unlisted_by_id and not named and found.unlisted_more,
            export_newest=found.export_newest,
            meta=found.meta,
            switch=found.switch,
        )
    return Lookup(
        "none",
        query,
        suggestions=_closest(wanted, found.close),
        meta=found.meta,
        switch=found.switch,
    )


def _is_exact(row: Row, query: str, wanted: str) -> bool:
    from bot.state.snapshots import normalize_name

    return (
        row.account_id.casefold() == query.casefold() or normalize_name(row.account_name) == wanted
    )


def _is_exact_unlisted(row: UnlistedRow, query: str, wanted: str) -> bool:
    from bot.state.snapshots import normalize_name

    return (
        row.account_id.casefold() == query.casefold() or normalize_name(row.account_name) == wanted
    )


def probes(wanted: str) -> list[str]:
    """Word prefixes to suggest names from: each word of three letters or more, then its
    first four and three letters ("Gama Logistic" -> gama, logistic, logi, gam, log)."""
    words = [word for word in wanted.split() if len(word) >= 3]
    found = dict.fromkeys([*words, *(word[:4] for word in words), *(word[:3] for word in words)])
    return list(found)[:MAX_PROBES]


def _closest(wanted: str, rows: list[Row]) -> list[str]:
    """The names closest to what was typed, closest first."""
    from bot.state.snapshots import normalize_name

    by_normal = {normalize_name(row.account_name): row.account_name for row in rows}
    close = difflib.get_close_matches(wanted, list(by_normal), n=SUGGESTIONS, cutoff=0.0)
    return [by_normal[name] for name in close]
