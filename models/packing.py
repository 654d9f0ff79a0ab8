"""Per-account records built column by column: the writing side of :mod:`models.cards`.

A chunk's records are assembled from parts, each a column of byte strings for some of the
accounts (a header for all, a reason slot for those showing it, a value for those whose
wording reads it). Parts are laid out in the order they are added, so each record reads in
that order. Encoding is numpy over the whole chunk; the bytes go into the one buffer the
records are handed out in (:class:`models.cards.Packed`) through a small compiled copier,
:mod:`models._records` (one ``memcpy`` per account and part where numpy needs a position per
byte).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models._records import copy
from models.cards import (
    DATE,
    DATETIME,
    FALSE,
    FLOAT32,
    FLOAT64,
    FLOAT_I8,
    FLOAT_I16,
    FLOAT_I32,
    INT8,
    INT16,
    INT32,
    INT64,
    MISSING,
    STR8,
    STR32,
    TAG_FORMATS,
    TRUE,
    Packed,
    Texts,
)

_WIDTH = 9  # a tag and at most 8 bytes of payload
#: Integer tags by width, each with the bound of its range (-bound <= value < bound).
_INT_TAGS = ((INT8, 2**7), (INT16, 2**15), (INT32, 2**31))
_FLOAT_INT_TAGS = ((FLOAT_I8, 2**7), (FLOAT_I16, 2**15), (FLOAT_I32, 2**31))
#: The record header (:data:`models.cards.HEADER`) as a numpy record, for a whole chunk at once.
HEADER_ROW = np.dtype([("as_of", "<i4"), ("rule", "<u2"), ("band", "u1"), ("count", "u1")])


def slot_row(n_features: int) -> np.dtype:
    """A reason slot (:func:`models.cards.slot_format`) as a numpy record."""
    return np.dtype([("feature", "u1" if n_features < 256 else "<u2"), ("impact", "<i4")])


#: Payload bytes per tag (none for a missing value or a flag).
_PAYLOAD = np.array([TAG_FORMATS[t].size if t in TAG_FORMATS else 0 for t in range(256)])


class _Part(NamedTuple):
    """One part of some accounts' records, as :func:`models._records.copy` reads it: account
    ``rows[i]`` (``i`` when None) gets ``lengths[i]`` bytes (``width`` when None) from
    ``source[i * stride]`` (stride 0: right after the previous piece)."""

    rows: np.ndarray | None
    lengths: np.ndarray | None
    width: int
    source: np.ndarray
    stride: int


@dataclass
class Records:
    """Records of ``n`` accounts under construction (see the module docstring)."""

    n: int
    _parts: list[_Part] = field(default_factory=list)

    def _rows(self, rows: np.ndarray) -> np.ndarray | None:
        """``rows`` as the copier reads them; None for every account in order (the usual
        header or context value: no index to read)."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if len(rows) == self.n and np.array_equal(rows, np.arange(self.n)):
            return None
        return rows

    def add_fixed(self, rows: np.ndarray, matrix: np.ndarray) -> None:
        """The same number of bytes for each of ``rows``: ``matrix`` is rows x width."""
        matrix = np.ascontiguousarray(matrix, dtype=np.uint8)
        width = matrix.shape[1]
        self._parts.append(_Part(self._rows(rows), None, width, matrix, width))

    def add_values(self, rows: np.ndarray, values: pd.Series | np.ndarray) -> None:
        """``values[i]`` as a tagged value for account ``rows[i]``."""
        cells, lengths = encode_values(values)
        cells = np.ascontiguousarray(cells)
        # Each value's used cells are copied straight from its row of ``cells``.
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        self._parts.append(_Part(self._rows(rows), lengths, 0, cells, cells.shape[1]))

    def add_packed(self, rows: np.ndarray, packed: Packed) -> None:
        """``packed[i]`` as it is for account ``rows[i]`` (one copy of the whole run)."""
        offsets = np.asarray(packed.offsets, dtype=np.int64)
        data = np.frombuffer(packed.data, dtype=np.uint8)[offsets[0] : offsets[-1]]
        self._parts.append(_Part(self._rows(rows), np.diff(offsets), 0, data, 0))

    def to_packed(self) -> Packed:
        """Every record in one buffer with its offsets: no Python object per account.

        The sizes and offsets are numpy; the bytes are copied a piece per account and part
        by :mod:`models._records` (a scatter through a position per byte, numpy's only way,
        took most of a scoring run's record assembly)."""
        sizes = np.zeros(self.n, dtype=np.int64)
        for part in self._parts:
            grows = part.lengths if part.lengths is not None else part.width
            if part.rows is None:
                sizes += grows
            else:
                sizes[part.rows] += grows
        ends = np.cumsum(sizes)
        cursor = ends - sizes
        out = np.empty(int(ends[-1]) if self.n else 0, dtype=np.uint8)
        for part in self._parts:
            copy(out, cursor, part.rows, part.lengths, part.width, part.source, part.stride)
        offsets = np.zeros(self.n + 1, dtype=np.int64)
        offsets[1:] = ends
        return Packed(out.tobytes(), offsets)

    def to_list(self) -> list[bytes]:
        """Each record on its own (tests, small books)."""
        return list(self.to_packed())


def texts(column: pd.Series) -> Texts:
    """A column as packed UTF-8 text per row, "" where empty: Arrow-backed text is taken as
    Arrow holds it (one buffer and its offsets), anything else is converted value by value."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        array = pa.array(column.array)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        array = array.cast(pa.large_string())
        array = pc.fill_null(array, "") if array.null_count else array
        _, offsets_buffer, data = array.buffers()
        at = array.offset
        offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[at : at + len(array) + 1]
        start, stop = int(offsets[0]), int(offsets[-1])
        text = b"" if data is None else data.slice(start, stop - start).to_pybytes()
        return Texts(text, offsets - start)
    values: list[object] = column.to_numpy(dtype=object, na_value="").tolist()
    return Texts.of(list(map(str, values)))


def encode_values(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value as tag + payload: a row of cells per value and the cells it uses.

    Numbers, flags and dates are encoded as whole columns; other values (text, categories)
    once per distinct value. A numpy array is taken as the Series of its values.
    """
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":  # plain numpy: nothing missing
        plain = np.asarray(values)  # but a float's NaN, which _float_matrix handles
        if dtype.kind == "b":
            return np.where(plain, TRUE, FALSE).astype(np.uint8)[:, None], np.ones(
                len(plain), dtype=np.int64
            )
        if dtype.kind == "f":
            return _float_matrix(plain.astype(np.float64, copy=False))
        return _int_matrix(plain.astype(np.int64), np.zeros(len(plain), dtype=bool))
    if isinstance(values, np.ndarray):
        values = pd.Series(values)
    if pd.api.types.is_bool_dtype(dtype):
        missing = values.isna().to_numpy()
        tags = np.where(values.fillna(False).to_numpy(dtype=bool), TRUE, FALSE)
        tags = np.where(missing, MISSING, tags).astype(np.uint8)
        return tags[:, None], np.ones(len(tags), dtype=np.int64)
    if pd.api.types.is_integer_dtype(dtype):
        missing = values.isna().to_numpy()
        return _int_matrix(values.fillna(0).to_numpy(dtype=np.int64), missing)
    if pd.api.types.is_float_dtype(dtype):
        return _float_matrix(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if pd.api.types.is_datetime64_dtype(dtype):
        return _date_matrix(values)
    codes, uniques = pd.factorize(values)
    coded = [encode_value(value) for value in uniques] + [bytes([MISSING])]
    sizes = np.array([len(c) for c in coded], dtype=np.int64)
    table = np.zeros((len(coded), int(sizes.max())), dtype=np.uint8)
    for i, code in enumerate(coded):
        table[i, : len(code)] = np.frombuffer(code, dtype=np.uint8)
    codes = np.where(codes < 0, len(coded) - 1, codes)
    return table[codes], sizes[codes]


def _cells(tags: np.ndarray, payload: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of tag + payload and the cells each uses. ``payload`` holds each value's bits in
    64 bits: a narrower integer is the low bytes of its 64-bit form (little-endian), a
    float32 its 32 bits, so every row is one copy whatever its width."""
    cells = np.empty((len(tags), _WIDTH), dtype=np.uint8)
    cells[:, 0] = tags
    cells[:, 1:] = payload.astype("<i8").view(np.uint8).reshape(-1, _WIDTH - 1)
    return cells, 1 + _PAYLOAD[tags]


def _int_matrix(numbers: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fits = [(numbers >= -bound) & (numbers < bound) for _, bound in _INT_TAGS]
    tags = np.select([missing, *fits], [MISSING, *(tag for tag, _ in _INT_TAGS)], INT64)
    return _cells(tags.astype(np.uint8), numbers)


def _float_matrix(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    missing = np.isnan(numbers)
    with np.errstate(invalid="ignore", over="ignore"):
        # -0.0 keeps its sign ("-0%"), so it is no whole number here.
        whole = (np.floor(numbers) == numbers) & ~((numbers == 0) & np.signbit(numbers))
        fits = [whole & (numbers >= -bound) & (numbers < bound) for _, bound in _FLOAT_INT_TAGS]
        single = numbers.astype(np.float32)
        exact = single.astype(np.float64) == numbers
        tags = np.select(
            [missing, *fits, exact],
            [MISSING, *(tag for tag, _ in _FLOAT_INT_TAGS), FLOAT32],
            FLOAT64,
        ).astype(np.uint8)
        counts = np.where(fits[-1], numbers, 0).astype(np.int64)
    bits = np.where(tags == FLOAT32, single.view(np.uint32), numbers.view(np.int64))
    return _cells(tags, np.where(fits[-1], counts, bits))


def _date_matrix(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    if getattr(values.dtype, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    missing = values.isna().to_numpy()
    micros = values.to_numpy(dtype="datetime64[us]").astype(np.int64)
    days, rest = np.divmod(micros, 86_400_000_000)
    midnight = rest == 0
    tags = np.select([missing, midnight], [MISSING, DATE], DATETIME).astype(np.uint8)
    return _cells(tags, np.where(midnight, days, micros))


def encode_value(value: object) -> bytes:
    """One value as tag + payload (the per-value path of :func:`encode_values`)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return bytes([MISSING])
    if isinstance(value, bool | np.bool_):
        return bytes([TRUE if value else FALSE])
    if isinstance(value, int | np.integer):
        return _one(_int_matrix(np.array([int(value)]), np.zeros(1, dtype=bool)))
    if isinstance(value, float | np.floating):
        return _one(_float_matrix(np.array([float(value)])))
    if isinstance(value, dt.datetime):
        return _one(_date_matrix(pd.Series([pd.Timestamp(value)])))
    text = str(value).encode()
    tag = STR8 if len(text) < 256 else STR32
    return bytes([tag]) + TAG_FORMATS[tag].pack(len(text)) + text


def _one(matrix: tuple[np.ndarray, np.ndarray]) -> bytes:
    cells, lengths = matrix
    return cells[0, : lengths[0]].tobytes()
