"""How one snapshot's accounts are packed into a few Redis values, and unpacked again.

Pure functions (no Redis): the store writes what these produce and its Lua scripts read the
same bytes, so every layout detail the scripts rely on is defined here once, next to the
Python that parses it.

* **Rows in blocks.** Accounts get a position (the order they were streamed). Positions
  ``[k*BLOCK, (k+1)*BLOCK)`` live in two strings: the *key block* (risk and account id, what
  trends, "change" and drift read in bulk) and the *data block* (previous risk, owner and
  segment as indexes into the snapshot's dictionary, name, and the codec's record). Each has an
  offsets table, so a script reads one account with a few ``GETRANGE`` calls.
* **Ids in small hashes.** ``account_id -> position`` in ``ceil(n / BUCKET_SIZE)`` hashes, each
  small enough to stay listpack-encoded under Redis' default ``hash-max-listpack-entries`` (128)
  and ``-value`` (64): about 15 bytes an account instead of a hashtable's ~80. The bucket of an
  id is a hash the Lua scripts compute the same way (:func:`bucket_of`).
* **Names by word.** Every suffix of a normalized name that starts a word (after a space or at
  a punctuation boundary), cut to ``SUFFIX_CHARS``, with the account's position; sorted and cut
  into blocks whose first entries form a small lexicographic index. A prefix of any word is one
  ``ZRANGEBYLEX`` and a block or two, whatever the size of the book.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from collections.abc import Sequence
from itertools import pairwise
from typing import TypeAlias

import numpy as np

from models.cards import Packed

#: Accounts per key/data block: a block is read whole only by bulk readers.
BLOCK = 1_024
#: Mean accounts per id hash; the largest of ~20,000 buckets stays well under 128 entries.
BUCKET_SIZE = 48
#: Name index entries per block (one GET of a few kilobytes per probe).
NAME_BLOCK = 128
#: Indexed characters of a name suffix; a longer query is matched on its first ones, then
#: checked against the whole name.
SUFFIX_CHARS = 24
#: Marks an index entry that starts at the name's first character (exact or prefix match).
WHOLE = "\x1e"
#: Marks an entry that starts at a later word of the name.
LATER = "\x1f"
#: Separates a name block's first entry from its number in the block index.
FENCE = "\x1d"
DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/"
HASH_MOD = 2_147_483_647  # fits the Lua scripts' doubles exactly: h * 31 + 255 < 2**53
_U32 = struct.Struct(">I")
_TOKEN = re.compile(r"[0-9a-z\u0080-\U0010ffff]+|[^0-9a-z\u0080-\U0010ffff ]+")
_ROW = struct.Struct(">dHHH")  # previous risk, owner, segment, name length
_ROW_NUMPY = np.dtype(
    [("previous", ">f8"), ("owner", ">u2"), ("segment", ">u2"), ("name_length", ">u2")]
)


def normalize_name(name: str) -> str:
    """Case-, accent- and spacing-insensitive form of an account name ("Société" -> "societe")."""
    if name.isascii() and name.isprintable():  # nothing to decompose or drop: the common case
        return " ".join(name.casefold().split())
    decomposed = unicodedata.normalize("NFKD", name)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Cc"))
    return " ".join(kept.casefold().split())


def buckets_for(n: int) -> int:
    return max(1, -(-n // BUCKET_SIZE))


def bucket_of(account_id: str, buckets: int) -> int:
    """The id hash an account lives in (the Lua scripts compute the same)."""
    h = 0
    for byte in account_id.encode():
        h = (h * 31 + byte) % HASH_MOD
    return h % buckets


def buckets_of(account_ids: Sequence[str], buckets: int) -> np.ndarray:
    """:func:`bucket_of` for many ids at once (numpy, one pass per character)."""
    raw = np.array([a.encode() for a in account_ids], dtype=bytes)
    width = raw.dtype.itemsize
    codes = raw.view(np.uint8).reshape(len(raw), width).astype(np.int64)
    lengths = np.char.str_len(raw)
    h = np.zeros(len(raw), dtype=np.int64)
    for i in range(width):
        live = i < lengths  # ids are NUL-padded; a NUL inside an id is refused upstream
        h = np.where(live, (h * 31 + codes[:, i]) % HASH_MOD, h)
    return h % buckets


def pos_width(n: int) -> int:
    """Characters a position takes in the name index (base 64)."""
    width = 1
    while 64**width < n:
        width += 1
    return width


def word_starts(name: str) -> list[int]:
    """Where the words of a normalized name start: each run of letters and digits, and each
    run of other characters, between spaces ("star*wars [fan]" -> star, *, wars, [, fan, ]).
    Any non-ASCII character counts as a letter, as in :func:`name_index`, which works on bytes.
    """
    return [match.start() for match in _TOKEN.finditer(name)]


def name_index(names: Sequence[str], width: int) -> tuple[list[bytes], dict[bytes, int]]:
    """The name index of a book (normalized names, by position): sorted entry blocks
    (newline-joined) and the block index (each block's first entry and its number, all with
    score 0 for ZRANGEBYLEX).

    An entry is a name's UTF-8 bytes from a word start, cut to ``SUFFIX_CHARS`` bytes, then
    ``WHOLE`` or ``LATER`` and the position in base 64. Built with numpy on a NUL-padded byte
    matrix, a million names in a second or two: the padding sorts before any character, as the
    separators do, so sorting padded rows orders the entries as Redis compares them.
    """
    if not names:
        return [], {}
    raw = np.array([name.encode() for name in names], dtype=bytes)
    length = raw.dtype.itemsize
    if length == 0:  # every name empty: nothing to index
        return [], {}
    text = raw.view(np.uint8).reshape(len(names), length)
    kind = np.zeros(text.shape, dtype=np.int8)  # 0 space or padding, 1 word, 2 punctuation
    kind[(text > 0x20)] = 2
    kind[(text >= 0x80) | ((text >= 0x61) & (text <= 0x7A)) | ((text >= 0x30) & (text <= 0x39))] = 1
    starts = kind != 0
    starts[:, 1:] &= kind[:, 1:] != kind[:, :-1]
    rows, cols = np.nonzero(starts)
    padded = np.zeros((len(names), length + SUFFIX_CHARS), dtype=np.uint8)
    padded[:, :length] = text
    windows = np.lib.stride_tricks.sliding_window_view(padded, SUFFIX_CHARS, axis=1)
    entries = np.empty((len(rows), SUFFIX_CHARS + width + 2), dtype=np.uint8)
    entries[:, :SUFFIX_CHARS] = windows[rows, cols]
    entries[:, SUFFIX_CHARS] = np.where(cols == 0, ord(WHOLE), ord(LATER))
    entries[:, SUFFIX_CHARS + 1 : -1] = _digits(len(names), width)[rows]
    entries[:, -1] = ord("\n")
    # "S" compares bytes like memcmp, NUL padding included (and ends with "\n": nothing
    # trailing is dropped), so this is the order Redis compares the stripped entries in.
    # Entries are distinct (the position is in each), so any sort gives the one order.
    entries = np.sort(entries.view(f"S{entries.shape[1]}").ravel()).view(np.uint8)
    entries = entries.reshape(len(rows), SUFFIX_CHARS + width + 2)
    blocks, fences = [], {}
    for k, start in enumerate(range(0, len(entries), NAME_BLOCK)):
        block = entries[start : start + NAME_BLOCK].tobytes().replace(b"\0", b"")[:-1]
        blocks.append(block)
        fences[block.split(b"\n", 1)[0] + FENCE.encode() + str(k).encode()] = 0
    return blocks, fences


def _digits(n: int, width: int) -> np.ndarray:
    """The base-64 digits of positions ``0 .. n-1`` as an (n, width) byte matrix."""
    positions = np.arange(n, dtype=np.int64)
    alphabet = np.frombuffer(DIGITS.encode(), dtype=np.uint8)
    digits = np.empty((n, width), dtype=np.uint8)
    for i in range(width):
        digits[:, width - 1 - i] = alphabet[(positions >> (6 * i)) & 63]
    return digits


def pack_keys(risk: np.ndarray, ids: Packed) -> bytes:
    """Key block: ``u32 count | f64 risk * c | u32 id offsets * (c+1) | ids``."""
    offsets = np.asarray(ids.offsets, dtype=np.int64)
    start, stop = int(offsets[0]), int(offsets[-1])
    return b"".join(
        (
            _U32.pack(len(ids)),
            np.asarray(risk, dtype=">f8").tobytes(),
            (offsets - start).astype(">u4").tobytes(),
            ids.data[start:stop],
        )
    )


def pack_data(
    previous: np.ndarray,
    owner: Sequence[int],
    segment: Sequence[int],
    names: Packed,
    records: Packed,
) -> bytes:
    """Data block: ``u32 count | u32 row offsets * (c+1) | rows``; a row is ``f64 previous
    risk (NaN: none) | u16 owner | u16 segment | u16 name length | name | record``.

    Built from the packed columns by array copies, no Python object per row.
    """
    from models.packing import Records  # the writing side only: readers never load pandas

    n = len(names)
    name_lengths = np.diff(np.asarray(names.offsets, dtype=np.int64))
    if n and int(name_lengths.max()) > 0xFFFF:
        raise ValueError("an account name is longer than 65,535 bytes; a row cannot hold it.")
    head = np.empty(n, dtype=_ROW_NUMPY)
    head["previous"], head["owner"], head["segment"] = previous, owner, segment
    head["name_length"] = name_lengths
    rows = Records(n)
    everyone = np.arange(n)
    rows.add_fixed(everyone, head.view(np.uint8).reshape(n, _ROW.size))
    rows.add_packed(everyone, names)
    rows.add_packed(everyone, records)
    packed = rows.to_packed()
    offsets = np.asarray(packed.offsets).astype(">u4")
    return b"".join((_U32.pack(n), offsets.tobytes(), packed.data))


def unpack_keys(block: bytes) -> tuple[np.ndarray, list[bytes]]:
    """Risks and account ids (UTF-8) of a whole key block."""
    (count,) = _U32.unpack_from(block)
    risk = np.frombuffer(block, dtype=">f8", count=count, offset=4).astype(float)
    start = 4 + 8 * count
    offsets = np.frombuffer(block, dtype=">u4", count=count + 1, offset=start).tolist()
    base = start + 4 * (count + 1)
    ids = [block[base + a : base + b] for a, b in pairwise(offsets)]
    return risk, ids


def unpack_rows(block: bytes) -> list[bytes]:
    """Every row of a whole data block."""
    (count,) = _U32.unpack_from(block)
    offsets = np.frombuffer(block, dtype=">u4", count=count + 1, offset=4).tolist()
    base = 4 + 4 * (count + 1)
    return [block[base + a : base + b] for a, b in pairwise(offsets)]


#: One data row unpacked: (previous risk, owner index, segment index, name, record).
DataRow: TypeAlias = tuple[float | None, int, int, str, bytes]


def unpack_row(row: bytes) -> DataRow:
    """(previous risk, owner index, segment index, name, record) of one data row."""
    previous, owner, segment, length = _ROW.unpack_from(row)
    start = _ROW.size
    name = row[start : start + length].decode()
    return (
        None if previous != previous else previous,  # NaN: no previous snapshot held it
        owner,
        segment,
        name,
        row[start + length :],
    )


def unpack_risk(raw: bytes) -> float:
    return float(struct.unpack(">d", raw)[0])


def top_positions(
    risk: np.ndarray, codes: np.ndarray, keep: int, eligible: np.ndarray | None = None
) -> dict[int, bytes]:
    """Per group code, the ``keep`` riskiest positions of the group, riskiest first (ties by
    position), packed as big-endian u32: one channel filter's top list each. Only
    ``eligible`` positions are listed (default: all); a group with none has no list."""
    positions = np.arange(len(risk)) if eligible is None else np.flatnonzero(eligible)
    order = positions[np.lexsort((positions, -risk[positions], codes[positions]))]
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return {
        int(codes[part[0]]): part[:keep].astype(">u4").tobytes()
        for part in np.split(order, bounds)
        if len(part)
    }
