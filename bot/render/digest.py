"""A channel's churn digest as one or more Slack messages.

Why messages are packed here rather than by the sender: Slack rejects a message with more
than 50 blocks or about 13k characters of blocks (``msg_blocks_too_long``), and a digest of
many accounts exceeds that. Splitting at account boundaries, with "(continued, 2 of N)" at the
top of each follow-up, keeps every account whole and every part accepted; nothing is dropped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from types import MappingProxyType
from typing import Any, NamedTuple

from bot.render.feedback import feedback_actions
from bot.render.parts import (
    MAX_REASONS,
    account_summary,
    banner_block,
    context,
    divider,
    header,
    owner_slot,
    section,
)
from bot.render.text import fit_mrkdwn, header_text, plural
from bot.render.track_record import TRACK_MARK, track_record_line
from models.track_record import TrackRecord

#: Slack's block limit for a message.
MAX_MESSAGE_BLOCKS = 50
#: Where Slack starts answering ``msg_blocks_too_long`` (compact JSON of the blocks).
MAX_BLOCKS_JSON = 13_000
#: Longest notification text this module writes (Slack allows far more; phones show less).
MAX_FALLBACK_TEXT = 500
NEW_MARK = "🆕 "
MOVED_MARK = "⚡ "


class DigestContent(NamedTuple):
    """Everything a digest shows; ``cards`` come ordered by risk, highest first.

    Whose accounts the digest covers is said in words from ``owners`` and ``segments`` (a
    scheduled digest names at least one); ``channel_label`` describes a hand-built digest
    that names neither. ``owner_users`` maps an owner, as written in the data, to their Slack
    user id, so the digest mentions them (``<@U…>``) instead of showing an email.
    ``track_record`` is what happened to the accounts flagged one horizon ago: the line that
    tells a CSM how far to trust the red dots.

    A named tuple, immutable as the frozen dataclass it was, because every digest makes one:
    a frozen dataclass sets each of the twelve fields through ``object.__setattr__``, ~25K
    instructions a digest more. Nothing hashes it (its cards are dicts).
    """

    title: str
    channel_label: str
    freshness: str
    banner: str | None
    cards: Sequence[Mapping[str, Any]]
    snapshot_id: str
    new_ids: Set[str] = frozenset()
    moved_ids: Set[str] = frozenset()
    owners: Sequence[str] = ()
    segments: Sequence[str] = ()
    owner_users: Mapping[str, str] = MappingProxyType({})
    track_record: TrackRecord | None = None


@dataclass(frozen=True)
class Message:
    """One ``chat.postMessage``: notification ``text`` (mrkdwn, escaped) and its ``blocks``."""

    text: str
    blocks: list[dict[str, Any]]
    #: ``blocks`` as compact JSON, kept when the renderer had it anyway (it measures every
    #: block against Slack's limit) so that storing the plan does not encode them again.
    blocks_json: str | None = field(default=None, compare=False, repr=False)

    @property
    def blocks_arg(self) -> str | list[dict[str, Any]]:
        """``blocks`` as the Web API call is given them: the kept JSON text when there is one.

        slack-sdk walks a list of blocks before encoding it, asking of every block whether it
        is one of six model classes (ABC checks, about 10% of a digest's CPU in a profile),
        then encodes the blocks a second time inside the request body. Given the text, it
        does neither, and Slack reads the same blocks: a JSON string is a supported form of
        ``blocks`` in every ``chat.*`` call (slackapi/python-slack-sdk#1261), and the
        emulator decodes it as Slack does.
        """
        return self.blocks if self.blocks_json is None else self.blocks_json


def digest_messages(
    content: DigestContent,
    *,
    max_blocks: int = MAX_MESSAGE_BLOCKS,
    max_chars: int = 12_000,
) -> list[Message]:
    """The digest as ordered messages, each within ``max_blocks`` blocks and ``max_chars``
    characters of compact block JSON, every account exactly once and never split.

    No cards gives one message that says so and shows the freshness: a silent week would look
    like a dead bot.
    """
    _check_limit("max_blocks", max_blocks, MAX_MESSAGE_BLOCKS)
    _check_limit("max_chars", max_chars, MAX_BLOCKS_JSON)
    # Whose accounts: said by the opening and by every part's notification text.
    scope = _scope(content)
    first = _opening(content, scope)
    if not content.cards:
        empty = section(
            fit_mrkdwn(
                "✅ No account is above the risk threshold this week, so nothing needs chasing.\n"
                "_The bot is alive — {}._",
                content.freshness,
            )
        )
        return [Message(text=_fallback(content, scope, 1, 1), blocks=[*first.blocks, empty])]

    groups = [_account_group(content, card) for card in content.cards]
    widest = len(groups) + 1  # the opening may end up alone in the first message
    parts = _pack(
        first,
        groups,
        widest_continued=lambda: _continued(content, widest, widest),
        max_blocks=max_blocks,
        max_chars=max_chars,
    )
    messages = []
    for number, part in enumerate(parts, start=1):
        head = first if number == 1 else _Group([_continued(content, number, len(parts))])
        blocks = head.blocks + [block for group in part for block in group.blocks]
        # One join copies each group's JSON once: a digest's text holds emoji, so every
        # character takes four bytes, and each further concatenation copied all of them again.
        pieces = ["["]
        for group in (head, *part):
            pieces += (group.items, ",")
        pieces[-1] = "]"
        text = _fallback(content, scope, number, len(parts))
        messages.append(Message(text=text, blocks=blocks, blocks_json="".join(pieces)))
    return messages


class _Group:
    """Blocks that travel together, and their compact JSON without the array's brackets
    (``items``, made once: it gives the size the packing needs, and the message's
    ``blocks_json`` is joined from it); ``items``: that JSON, when the caller spliced it
    (:class:`_Spliced`), else the blocks are encoded here."""

    def __init__(self, blocks: list[dict[str, Any]], items: str | None = None) -> None:
        self.blocks = blocks
        self.items = compact_json(blocks)[1:-1] if items is None else items

    @property
    def size(self) -> int:
        """Characters of the group's compact JSON as an array of its own."""
        return len(self.items) + 2


#: Compact JSON as Slack measures it, and as a message's ``blocks_json`` is kept (a stored
#: plan splices that text in, so it encodes the rest of the plan with this too); one encoder
#: for every call (``json.dumps`` with options builds a new one per call).
compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class _Spliced:
    """The compact JSON of ``build(text)`` for any ``text``, spliced instead of encoded:
    ``build`` is encoded once with a marker for ``text``, and each text is escaped into the
    marker's place. JSON escapes a string character by character, so the splice is exactly
    what encoding the block would give, wherever in a string the text stands.

    Every account of a digest has blocks of the same shape (a summary section; four feedback
    buttons that differ only in their block_id), and the JSON encoder spends most of its time
    on the shape (a dict's items, one by one), not on the texts: encoding them anew was a
    fifth of planning a digest. ``build`` must place ``text`` once, unchanged."""

    _MARK = "\x00text\x00"
    _ESCAPED = encode_basestring(_MARK)[1:-1]

    def __init__(self, build: Callable[[str], object]) -> None:
        encoded = compact_json(build(self._MARK))
        if encoded.count(self._ESCAPED) != 1:
            raise ValueError(f"{build!r} must place its text once, unchanged: got {encoded!r}")
        self._head, _, self._tail = encoded.partition(self._ESCAPED)

    def __call__(self, text: str) -> str:
        return "".join(self.pieces(text))

    def pieces(self, text: str) -> tuple[str, str, str]:
        """The same JSON in three pieces (before ``text``, ``text`` escaped, after), for a
        caller that joins several blocks' JSON in one join: each concatenation copies all
        that came before again, four bytes a character once an emoji is in it."""
        return self._head, encode_basestring(text)[1:-1], self._tail


_SECTION_JSON = _Spliced(section)
_DIVIDER_JSON = compact_json(divider())
_HEADER_JSON = _Spliced(header)
_CONTEXT_JSON = _Spliced(context)
_BANNER_JSON = _Spliced(banner_block)


@functools.lru_cache(maxsize=8)
def _actions_json(snapshot_id: str) -> _Spliced:
    """A digest's feedback buttons as JSON, by account id (the snapshot's digests share it)."""
    return _Spliced(
        lambda account_id: feedback_actions(
            {"account_id": account_id}, snapshot_id=snapshot_id, surface="digest"
        )
    )


def _check_limit(name: str, value: int, limit: int) -> None:
    if not 0 < value <= limit:
        raise ValueError(
            f"The '{name}' parameter of digest_messages must be between 1 and {limit} "
            f"(Slack rejects more). Got {value!r} instead."
        )


def _opening(content: DigestContent, scope: _Scope) -> _Group:
    """Header, then whose accounts (``scope``) and how fresh, the banner, and a legend;
    their JSON spliced from each block's shape (:class:`_Spliced`), as an account's is:
    encoding the opening's blocks cost ~60K instructions a digest.

    No model version: it means nothing to a CSM (admins see it in the App Home status).
    """
    template, scope_pieces = scope
    template += " · {}"
    pieces = [*scope_pieces, content.freshness]
    if content.new_ids or content.moved_ids:
        template += "\n" + NEW_MARK + "new on the list · " + MOVED_MARK + "moved sharply"
    # header() cuts a long title; the cut title is what is spliced (cutting it again keeps it)
    title = header_text(content.title)
    line = fit_mrkdwn(template, *pieces)
    blocks = [header(title), context(line)]
    items = [_HEADER_JSON(title), _CONTEXT_JSON(line)]
    if content.banner:
        blocks.append(banner_block(content.banner))
        items.append(_BANNER_JSON(content.banner))
    if content.track_record is not None:
        line = fit_mrkdwn(TRACK_MARK + "{}", track_record_line(content.track_record))
        blocks.append(context(line))
        items.append(_CONTEXT_JSON(line))
    return _Group(blocks, ",".join(items))


#: A ``fit_mrkdwn`` template and its pieces (:func:`_scope`).
_Scope = tuple[str, tuple[object, ...]]


def _scope(content: DigestContent) -> _Scope:
    """Whose accounts, in words a CSM reads ("SMB and mid-market accounts of <@U…>"): a
    ``fit_mrkdwn`` template and its pieces, made once a digest (~16K instructions)."""
    if not content.owners and not content.segments:
        return "{}", (content.channel_label,)
    template, pieces = "", list[object]()
    if content.segments:
        template += _and_list(["{}"] * len(content.segments)) + " "
        pieces += [segment_words(segment) for segment in content.segments]
        pieces[0] = str(pieces[0])[:1].upper() + str(pieces[0])[1:]
    template += "accounts"
    if content.owners:
        slots = [owner_slot(owner, content.owner_users) for owner in content.owners]
        template += " of " + _and_list([slot for slot, _ in slots])
        pieces += [piece for _, owner_pieces in slots for piece in owner_pieces]
    return template[0].upper() + template[1:], tuple(pieces)


def _and_list(slots: Sequence[str]) -> str:
    """Template fragments joined as words are: "a", "a and b", "a, b and c"."""
    return slots[0] if len(slots) == 1 else ", ".join(slots[:-1]) + " and " + slots[-1]


def segment_words(segment: str) -> str:
    """A segment value as a CSM writes it: "mid_market" -> "mid-market", and a value without
    vowels read as an acronym: "smb" -> "SMB"."""
    words = segment.replace("_", "-")
    if words.isalpha() and not set(words.lower()) & set("aeiouy"):
        return words.upper()
    return words


def _account_group(content: DigestContent, card: Mapping[str, Any]) -> _Group:
    """One account's blocks, which always travel together: summary, feedback, divider; their
    JSON spliced from each block's shape (:class:`_Spliced`).

    The owner is named on each account unless the digest covers one owner's accounts only
    (then the context line names them once).
    """
    account_id = card["account_id"]
    marks = (NEW_MARK if account_id in content.new_ids else "") + (
        MOVED_MARK if account_id in content.moved_ids else ""
    )
    owner = None
    if len(content.owners) != 1:
        owner = owner_slot(str(card["owner"]), content.owner_users)
    summary = account_summary(card, marks=marks, reasons=MAX_REASONS, why=True, owner=owner)
    actions = feedback_actions(card, snapshot_id=content.snapshot_id, surface="digest")
    # one join of all three blocks' pieces (~3K instructions an account less than three
    # splices joined)
    spliced = (
        *_SECTION_JSON.pieces(summary),
        ",",
        *_actions_json(content.snapshot_id).pieces(account_id),
        ",",
        _DIVIDER_JSON,
    )
    return _Group([section(summary), actions, divider()], "".join(spliced))


def _continued(content: DigestContent, number: int, total: int) -> dict[str, Any]:
    return context(fit_mrkdwn("(continued, {} of {}) · {}", number, total, content.title))


def _fallback(content: DigestContent, scope: _Scope, number: int, total: int) -> str:
    """The notification text, which alone says which part of the digest this is, and carries
    the banner: a notification must not pass old scores off as today's; ``scope``: whose
    accounts (:func:`_scope`)."""
    scope_template, scope_pieces = scope
    if content.cards:
        template = "{}: {} at risk (" + scope_template + ")"
        pieces: list[object] = [content.title, plural(len(content.cards), "account")]
    else:
        template = "{}: no account above the risk threshold this week (" + scope_template + ")"
        pieces = [content.title]
    pieces += scope_pieces
    if total > 1:
        template += " — part {} of {}"
        pieces += [number, total]
    if content.banner:
        template += " — ⚠️ {}"
        pieces.append(content.banner)
    return fit_mrkdwn(template, *pieces, limit=MAX_FALLBACK_TEXT)


def _pack(
    opening: _Group,
    groups: list[_Group],
    *,
    widest_continued: Callable[[], dict[str, Any]],
    max_blocks: int,
    max_chars: int,
) -> list[list[_Group]]:
    """Account groups per message, in order, filling each message as far as the limits allow.

    Follow-ups are measured with the widest "(continued, N of N)" line they could get, so
    numbering them afterwards cannot push one over the limit (made only when a digest needs
    a follow-up: most fit one message).
    """
    # Characters of compact JSON, as Slack (and the emulator) measure a message's blocks.
    follow_up: tuple[int, int] | None = None
    parts: list[list[_Group]] = [[]]
    blocks, size = len(opening.blocks), opening.size
    for group in groups:
        # Appended to a non-empty array, each block adds its JSON and one comma.
        more_blocks, more_size = len(group.blocks), group.size - 1
        if blocks + more_blocks > max_blocks or size + more_size > max_chars:
            follow_up = follow_up or (1, _Group([widest_continued()]).size)
            blocks, size = follow_up
            if blocks + more_blocks > max_blocks or size + more_size > max_chars:
                raise ValueError(
                    f"One account's blocks ({more_blocks} blocks, {more_size} characters) do "
                    f"not fit one message within max_blocks={max_blocks} and "
                    f"max_chars={max_chars}; raise the limits."
                )
            parts.append([])
        parts[-1].append(group)
        blocks += more_blocks
        size += more_size
    return parts
