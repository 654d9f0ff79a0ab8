"""A scored chunk as columns, and the codec that turns one account's stored record into the
card a CSM sees.

Scoring produces columns (``ScoredChunk``); the snapshot store keeps the indexed fields (id,
name, owner, segment, risk) itself and each account's remaining card data as an opaque
``record``; text is rendered only when a card is read (``CardCodec.decode``). The codec's
``spec`` is stored once per snapshot, so a reader decodes a snapshot with exactly the wording
and playbook it was scored with.

A record holds numbers and a few values, never text the spec already has (little-endian):

* header ``<iHBB``: as-of date (days since 1970-01-01), playbook rule index, risk band index,
  and a count byte (low nibble: reasons shown; bit 7: a healthy reason follows);
* one ``(feature index, impact x 10,000)`` slot per reason shown, then the healthy one: the
  feature picks the wording and its reason code;
* the values those wordings read, each field once, in the spec's field order;
* one value per context item of the card (but the segment, which the store keeps already),
  then the CRM link's values;
* when the account is not scored for lack of data (count byte bit 6), its age and a bitmask
  of its empty inputs (:class:`AbstainReader`): the card then carries ``abstain``.

A value is one tag byte and its payload (:data:`TAG_FORMATS`), so a figure costs what it
needs: 2 bytes for a small count, 5 for a date, 9 for a float that needs all its digits.

This module and :mod:`models.wording` are all a card reader imports: no numpy, pandas or
scikit-learn, so the web process starts fast (the writing side is :mod:`models.packing`).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

from models.wording import BLANK, Wording, context_text, wording_from_spec

if TYPE_CHECKING:
    import numpy as np

#: The card fields the store keeps as columns of its own (and hands back to ``decode``).
INDEXED = ("account_id", "account_name", "owner", "segment", "risk")

CODEC = "columns-v1"
BANDS = ("low", "medium", "high")
#: Impacts are stored as whole ten-thousandths: the card shows them rounded to 4 places.
IMPACT_SCALE = 10_000
EPOCH = dt.datetime(1970, 1, 1)

HEADER = struct.Struct("<iHBB")
HEALTHY_FLAG = 0x80
#: Count byte bit 6: the account is not scored for lack of data; the record ends with what is
#: missing (:class:`AbstainReader`).
ABSTAIN_FLAG = 0x40
SHOWN_MASK = 0x0F
#: A context item marked so in the spec is the account's segment, which the store keeps as a
#: column of its own: the record does not carry it a second time.
FROM_SEGMENT = "segment"
ABSTAIN_AGE = struct.Struct("<i")

# Value tags. Integral floats keep their type (a template formats 3.0 and 3 differently).
# Numbered by kind (no payload, ints, floats, dates, texts): read_value tests ranges.
MISSING, FALSE, TRUE = 0, 1, 2
INT8, INT16, INT32, INT64 = 3, 4, 5, 6
FLOAT_I8, FLOAT_I16, FLOAT_I32, FLOAT32, FLOAT64 = 7, 8, 9, 10, 11
DATE, DATETIME = 12, 13  # days; microseconds since 1970-01-01
STR8, STR32 = 14, 15  # utf-8 with a 1- or 4-byte length
TAG_FORMATS: dict[int, struct.Struct] = {
    INT8: struct.Struct("<b"),
    INT16: struct.Struct("<h"),
    INT32: struct.Struct("<i"),
    INT64: struct.Struct("<q"),
    FLOAT_I8: struct.Struct("<b"),
    FLOAT_I16: struct.Struct("<h"),
    FLOAT_I32: struct.Struct("<i"),
    FLOAT32: struct.Struct("<f"),
    FLOAT64: struct.Struct("<d"),
    DATE: struct.Struct("<i"),
    DATETIME: struct.Struct("<q"),
    STR8: struct.Struct("<B"),
    STR32: struct.Struct("<I"),
}


@dataclass(frozen=True)
class Packed:
    """The byte strings of ``len(self)`` accounts in one buffer: value i is
    ``data[offsets[i]:offsets[i + 1]]``.

    A scoring run hands the store a chunk's records (and texts) this way, not as one Python
    object per account: the store copies whole runs of them into its blocks, and only a card
    that is read is cut out. ``offsets`` is any sequence of ints (numpy on the writing side),
    ascending, one more than the values; it may start past 0 (a slice shares the buffer).
    """

    data: bytes
    offsets: Sequence[int] | np.ndarray

    @classmethod
    def of(cls, values: Sequence[bytes]) -> Packed:
        """Values given one by one (hand-written cards, tests)."""
        return cls(b"".join(values), [0, *itertools.accumulate(map(len, values))])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return self.data[int(self.offsets[i]) : int(self.offsets[i + 1])]

    def __iter__(self) -> Iterator[bytes]:
        return self.raw()

    def raw(self) -> Iterator[bytes]:
        """Each value as bytes (a text undecoded)."""
        data = self.data
        return (data[a:b] for a, b in itertools.pairwise(list(self.offsets)))

    def cut(self, start: int, stop: int) -> Self:
        """Values ``start .. stop`` (within bounds), sharing the buffer."""
        return type(self)(self.data, self.offsets[start : stop + 1])

    @property
    def nbytes(self) -> int:
        """Bytes of the values together."""
        return int(self.offsets[-1]) - int(self.offsets[0]) if len(self) else 0


class Texts(Packed):
    """Packed UTF-8 texts, read back as ``str``."""

    @classmethod
    def of(cls, values: Sequence[str]) -> Texts:  # type: ignore[override]
        return cls.from_packed(Packed.of([v.encode() for v in values]))

    @classmethod
    def from_packed(cls, packed: Packed) -> Texts:
        return cls(packed.data, packed.offsets)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return super().__getitem__(i).decode()

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return (value.decode() for value in self.raw())

    def tolist(self) -> list[str]:
        """Every text at once: Arrow makes the strings from the buffer in C (a scoring run
        lists a million ids, owners and names this way; the web process never does)."""
        import numpy as np
        import pyarrow as pa

        offsets = np.asarray(self.offsets, dtype=np.int64)
        if not len(self):
            return []
        first, last = int(offsets[0]), int(offsets[-1])
        texts = pa.LargeStringArray.from_buffers(
            len(self), pa.py_buffer(offsets - first), pa.py_buffer(self.data[first:last])
        )
        return texts.to_pylist()


@dataclass(frozen=True)
class ScoredChunk:
    """One chunk of a scoring run: ``n`` accounts as columns; ``records[i]`` is account i's
    card data beyond the indexed columns, for ``CardCodec.decode``. Texts and records are
    packed (one buffer per column), never one Python object per account."""

    account_id: Texts
    account_name: Texts
    owner: Texts
    segment: Texts  # "" where the export has no segment
    risk: np.ndarray  # float64, shape (n,)
    records: Packed
    #: bool per account: not scored for lack of data (kept out of top lists); None: none is.
    abstained: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.account_id)


def read_value(record: bytes, at: int) -> tuple[object, int]:
    """The tagged value at ``at`` and where the next one starts (a missing value reads as
    :data:`BLANK`)."""
    tag = record[at]
    at += 1
    if tag <= TRUE:  # numbered by kind: a number takes two or three tests, not a set lookup each
        return (BLANK, False, True)[tag], at
    form = TAG_FORMATS[tag]
    (number,) = form.unpack_from(record, at)
    at += form.size
    if tag <= INT64:
        return number, at
    if tag <= FLOAT64:
        return float(number), at
    if tag == DATE:
        return EPOCH + dt.timedelta(days=number), at
    if tag == DATETIME:
        return EPOCH + dt.timedelta(microseconds=number), at
    return record[at : at + number].decode(), at + number


def slot_format(n_features: int) -> struct.Struct:
    """A reason slot: the feature whose wording it uses, and its impact x 10,000."""
    return struct.Struct("<Bi" if n_features < 256 else "<Hi")


class ReasonReader:
    """Reads the reason slots and their values of a record and words them."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.codes: tuple[str, ...] = tuple(spec["codes"])
        self.fields: tuple[str, ...] = tuple(spec["fields"])
        self.slot = slot_format(len(self.codes))
        #: All the slots of a record in one unpack, by their number (at most 15 shown and a
        #: healthy one): flat (feature, impact, feature, impact, ...).
        self._slots = tuple(
            struct.Struct("<" + self.slot.format.lstrip("<") * n) for n in range(SHOWN_MASK + 2)
        )
        self.risk = tuple(_wording(w) for w in spec["risk"])
        self.healthy = tuple(_wording(w) for w in spec["healthy"])
        #: The wordings of each slot, by the count byte's reasons and healthy flag.
        self._kinds = {
            shown | healthy: (self.risk,) * shown + (self.healthy,) * bool(healthy)
            for shown in range(SHOWN_MASK + 1)
            for healthy in (0, HEALTHY_FLAG)
        }
        position = {name: i for i, name in enumerate(self.fields)}
        self._positions = {
            kind: tuple(
                frozenset(position[f] for f in w.fields) if w else frozenset() for w in wordings
            )
            for kind, wordings in (("risk", self.risk), ("healthy", self.healthy))
        }
        # Per reader (each snapshot's spec has its own fields); a digest's cards share a few
        # combinations of reasons, so merging their fields is mostly a lookup.
        self._needed = functools.lru_cache(maxsize=1024)(self._fields_of)

    def _fields_of(self, features: tuple[int, ...], shown: int) -> tuple[str, ...]:
        """The fields the reasons of ``features`` read (the first ``shown`` risk reasons, the
        rest healthy), each once, in the order the record stores their values."""
        risk, healthy = self._positions["risk"], self._positions["healthy"]
        needed = set().union(
            *(risk[f] if i < shown else healthy[f] for i, f in enumerate(features))
        )
        return tuple(self.fields[index] for index in sorted(needed))

    def read(
        self, record: bytes, at: int, count: int, *, healthy: bool = True
    ) -> tuple[list[dict[str, object]], dict[str, object] | None, int]:
        """The reasons (``count & SHOWN_MASK`` of them, then a healthy one if flagged and
        ``healthy``) as the card shows them, and where the record goes on. Without
        ``healthy``, the healthy reason's values are stepped over but not worded."""
        shown = count & SHOWN_MASK
        slots = self._slots[shown + bool(count & HEALTHY_FLAG)]
        flat = slots.unpack_from(record, at)
        at += slots.size
        features = flat[::2]
        values: dict[str, object] = {}
        for name in self._needed(features, shown):
            values[name], at = read_value(record, at)
        codes = self.codes
        worded = [
            {
                "code": codes[feature],
                "text": wordings[feature].render(values),
                "impact": impact / IMPACT_SCALE,
            }
            # One of each per slot, by construction. No keyword: zip called with one (strict,
            # even False) takes its slow path, ~1.2K instructions a card.
            for wordings, feature, impact in zip(  # noqa: B905
                self._kinds[count & (SHOWN_MASK | HEALTHY_FLAG) if healthy else shown],
                features,
                flat[1::2],
            )
        ]
        return worded, worded.pop() if healthy and count & HEALTHY_FLAG else None, at


def _wording(spec: Mapping[str, Any] | None) -> Wording | None:
    return None if spec is None else wording_from_spec(spec)


class LinkReader:
    """The CRM link of a card: the url column's value, else the card's URL template filled
    with the row's values (none where one is empty).

    The spec names the url ``column`` (or None), the ``template`` and its ``fields``, each
    as ``[name, from_id]``: a field that is the account id is not stored again.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.column: str | None = spec["column"]
        self.template: str | None = spec["template"]
        self.fields: tuple[tuple[str, bool], ...] = tuple(
            (name, from_id) for name, from_id in spec["fields"]
        )
        #: Whether the link reads values of the record (else it is made from the id alone).
        self.reads = self.column is not None or (
            self.template is not None and not all(from_id for _, from_id in self.fields)
        )

    def read(self, record: bytes, at: int, account_id: str) -> tuple[str | None, int]:
        """The link and where the record goes on."""
        if self.column is not None:
            value, at = read_value(record, at)
            return (None if value is BLANK else str(value)), at
        if self.template is None:
            return None, at
        values: dict[str, str] = {}
        empty = False
        for name, from_id in self.fields:
            if from_id:
                values[name] = quote(account_id, safe="")
                continue
            value, at = read_value(record, at)
            empty = empty or value is BLANK
            values[name] = quote(str(value), safe="")
        return (None if empty else self.template.format_map(values)), at


def missing_words(
    empty: Sequence[str], age: int | None, *, needed_days: int, history: Sequence[str]
) -> list[str]:
    """What an account too thin to score lacks, as a CSM reads it: each empty input once (by
    its feature's label), then its age if it is too new for the features that need history."""
    missing = list(dict.fromkeys(empty))
    if age is not None:
        needs = history[0] if len(history) == 1 else ", ".join(history[:-1]) + " and " + history[-1]
        missing.append(
            f"history: first seen {age} days ago ({needed_days} days needed for {needs})"
        )
    return missing


class AbstainReader:
    """What an abstained account lacks, from the end of its record: its age in days (-1: not
    too new) and a bitmask of its empty inputs (least significant bit first; all clear when
    not too empty). The spec names the inputs' ``labels``, the ``history`` features and the
    ``min_history_days`` setting."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.labels: tuple[str, ...] = tuple(spec["labels"])
        self.history: tuple[str, ...] = tuple(spec["history"])
        self.needed_days: int = spec["min_history_days"]
        self.mask_bytes = mask_bytes(len(self.labels))

    def read(self, record: bytes, at: int) -> list[str]:
        (age,) = ABSTAIN_AGE.unpack_from(record, at)
        mask = int.from_bytes(
            record[at + ABSTAIN_AGE.size : at + ABSTAIN_AGE.size + self.mask_bytes], "little"
        )
        empty = [label for i, label in enumerate(self.labels) if mask >> i & 1]
        return missing_words(
            empty, None if age < 0 else age, needed_days=self.needed_days, history=self.history
        )


def mask_bytes(n_inputs: int) -> int:
    """Bytes of the empty-inputs bitmask of an abstained record."""
    return (n_inputs + 7) // 8


def risk_change(risk: float, previous_risk: float | None) -> float | None:
    """A card's change since the previous snapshot, the same for every codec: None for an
    account that snapshot did not have, else rounded to 6 places as the risk is."""
    return None if previous_risk is None else round(risk - previous_risk, 6)


class CardCodec:
    """Turns a stored record back into the card dict the Slack side renders.

    ``spec`` holds: each feature's reason code and risk/healthy wordings, the value fields,
    the playbook's actions by rule index, the context items' labels and formats, the CRM link
    and the model version. ``for_digest=True`` decodes every card as a digest shows it: an
    empty ``context`` and no ``healthy`` reason (:meth:`for_digest`).
    """

    def __init__(self, spec: Mapping[str, Any], *, for_digest: bool = False) -> None:
        self._spec = dict(spec)
        #: Whether a card is decoded whole, context items and healthy reason worded (not for a
        #: digest, which shows neither).
        self.whole = not for_digest
        self.reasons = ReasonReader(spec["reasons"])
        self.actions = tuple(
            {"rule": rule, "action": action, "why": why, "owner": owner}
            for rule, action, why, owner in spec["actions"]
        )
        # (label, format, shown from the indexed segment rather than read from the record)
        self.context: tuple[tuple[str, str | None, bool], ...] = tuple(
            (item[0], item[1], item[2:] == [FROM_SEGMENT]) for item in spec["context"]
        )
        self.link = LinkReader(spec["url"])
        self.abstain = AbstainReader(spec["abstain"])
        self.model_version: str = spec["model_version"]

    def spec(self) -> str:
        """Everything ``decode`` needs, as text stored once per snapshot."""
        return json.dumps(self._spec, ensure_ascii=False, separators=(",", ":"))

    def for_digest(self) -> CardCodec:
        """This codec for a digest's cards, which never show their context items nor their
        healthy reason: wording the items (a date through strftime among others) cost
        6% of planning a digest, and the healthy reason, which a third of cards have, ~23K
        instructions a digest. Context values are stepped over only when the link or what an
        abstained card lacks follows; the healthy reason's values are read, not worded."""
        return CardCodec(self._spec, for_digest=True)

    @classmethod
    def from_spec(cls, spec: str) -> CardCodec:
        data = json.loads(spec)
        if data.get("codec") != CODEC:
            raise ValueError(f"cards coded as {data.get('codec')!r}; this reader knows {CODEC}")
        return cls(data)

    def decode(
        self,
        record: bytes,
        *,
        account_id: str,
        account_name: str,
        owner: str,
        segment: str,
        risk: float,
        previous_risk: float | None,
    ) -> dict[str, Any]:
        """The card exactly as the Slack side reads it, change since the previous snapshot
        included."""
        days, rule, band, count = HEADER.unpack_from(record)
        reasons, healthy, at = self.reasons.read(record, HEADER.size, count, healthy=self.whole)
        context = []
        # For a digest, context values are stepped over only if something after them is read.
        stepped = self.whole or self.link.reads or count & ABSTAIN_FLAG
        for label, form, indexed in self.context if stepped else ():
            value: object
            if indexed:
                value = segment or BLANK
            else:
                value, at = read_value(record, at)
            if self.whole and value is not BLANK:
                context.append([label, context_text(value, form)])
        url, at = self.link.read(record, at, account_id)
        card: dict[str, Any] = {
            "account_id": account_id,
            "account_name": account_name,
            "owner": owner,
            "segment": segment,
            "url": url,
            "context": context,
            "as_of": _iso_day(days),
            "risk": round(risk, 6),
            "band": BANDS[band],
            "reasons": reasons,
            "healthy": healthy,
            "action": dict(self.actions[rule]),
            "model_version": self.model_version,
            "previous_risk": previous_risk,
            "change": risk_change(risk, previous_risk),
        }
        if count & ABSTAIN_FLAG:
            card["abstain"] = {"missing": self.abstain.read(record, at)}
        return card


@functools.lru_cache(maxsize=64)
def _iso_day(days: int) -> str:
    """A day as days since 1970-01-01, in ISO: a snapshot's cards share a few as-of dates."""
    return (EPOCH + dt.timedelta(days=days)).date().isoformat()


def codec_spec(
    *,
    reasons: Mapping[str, Any],
    actions: Sequence[Sequence[str]],
    context: Sequence[Sequence[str | None]],
    link: Mapping[str, Any],
    model_version: str,
    abstain: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The spec a scorer writes (see :class:`CardCodec`; ``context``: label and format of
    each item, and :data:`FROM_SEGMENT` third for an item the store already keeps as the
    account's segment; ``link``: :class:`LinkReader`; ``abstain``: :class:`AbstainReader`,
    none by default: no record abstains)."""
    return {
        "codec": CODEC,
        "reasons": dict(reasons),
        "actions": [list(a) for a in actions],
        "context": [list(c) for c in context],
        "url": dict(link),
        "abstain": dict(abstain or {"labels": [], "history": [], "min_history_days": 0}),
        "model_version": model_version,
    }
