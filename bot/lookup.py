"""Resolve `/churn ACCOUNT` text to one account, a pick list, or the closest names.

Kept apart from the listener so the matching rules are tested without Slack: an id (in any
case) or an exact (case- and accent-insensitive) name wins; several partial matches give a
pick list, riskiest first, that says how many it leaves out; none gives the names closest to
what was typed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.state import SnapshotStore
from bot.state.snapshots import normalize_name

MAX_QUERY = 200
#: Bounded work per `/churn`, whatever the text: a query longer than any name is refused before
#: any lookup, and at most MAX_PROBES probes look for suggestions (each may scan the whole name
#: index, about 0.1 s per 100,000 names); 50 short words used to cost 150 scans.
MAX_WORDS = 12
MAX_PROBES = 2
PICK_LIMIT = 10
#: Most partial matches read to rank a pick list by risk and count what it leaves out: a
#: query matching more shows the riskiest of the best-matching names and says "at least".
PICK_CANDIDATES = 200
SUGGESTIONS = 5


@dataclass(frozen=True)
class Lookup:
    kind: Literal["card", "pick", "none", "too_long"]
    query: str
    card: dict[str, Any] | None = None
    matches: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    more: int = 0  # partial matches left out of ``matches``
    at_least: bool = False  # ``more`` is a lower bound: the candidates were capped


def resolve(store: SnapshotStore, query: str, *, snapshot_id: str) -> Lookup:
    query = " ".join(query.split())
    if len(query) > MAX_QUERY or query.count(" ") >= MAX_WORDS:
        return Lookup("too_long", query[:MAX_QUERY])
    wanted = normalize_name(query)
    # Most queries are an id or a whole name: the cheap prefix lookup settles those.
    quick = store.find(query, limit=PICK_LIMIT + 1, snapshot_id=snapshot_id, substring=False)
    exact = [card for card in quick if _is_exact(card, query, wanted)]
    if len(exact) == 1:
        return Lookup("card", query, card=exact[0])
    by_id = _other_case_id(store, query, snapshot_id=snapshot_id)
    if by_id is not None:
        return Lookup("card", query, card=by_id)
    matches = store.find(query, limit=PICK_CANDIDATES + 1, snapshot_id=snapshot_id)
    if len(matches) == 1:
        return Lookup("card", query, card=matches[0])
    if matches:
        candidates = matches[:PICK_CANDIDATES]
        ranked = sorted(candidates, key=lambda card: (-card["risk"], card["account_name"]))
        return Lookup(
            "pick",
            query,
            matches=ranked[:PICK_LIMIT],
            more=max(0, len(candidates) - PICK_LIMIT),
            at_least=len(matches) > PICK_CANDIDATES,
        )
    return Lookup("none", query, suggestions=suggest(store, wanted, snapshot_id=snapshot_id))


def _is_exact(card: dict[str, Any], query: str, wanted: str) -> bool:
    return (
        card["account_id"].casefold() == query.casefold()
        or normalize_name(card["account_name"]) == wanted
    )


def _other_case_id(store: SnapshotStore, query: str, *, snapshot_id: str) -> dict[str, Any] | None:
    """The account whose id is ``query`` in upper or lower case ("acc-000443" finds
    ACC-000443): ids are stored as the data writes them, and people type them either way.
    At most two direct reads; mixed-case ids must be typed as written."""
    for variant in dict.fromkeys((query.upper(), query.lower())):
        if variant != query:
            card = store.card(variant, snapshot_id=snapshot_id)
            if card is not None:
                return card
    return None


def suggest(store: SnapshotStore, wanted: str, *, snapshot_id: str) -> list[str]:
    """Names sharing a word, or a word's first letters, with the query, closest first."""
    candidates: dict[str, None] = {}
    words = [word for word in wanted.split() if len(word) >= 3]
    probes = dict.fromkeys([*words, *(word[:4] for word in words), *(word[:3] for word in words)])
    for probe in list(probes)[:MAX_PROBES]:
        for card in store.find(probe, limit=SUGGESTIONS * 2, snapshot_id=snapshot_id):
            candidates.setdefault(card["account_name"], None)
        if len(candidates) >= SUGGESTIONS * 2:
            break
    names = list(candidates)
    by_normal = {normalize_name(name): name for name in names}
    close = difflib.get_close_matches(wanted, list(by_normal), n=SUGGESTIONS, cutoff=0.0)
    return [by_normal[name] for name in close]
