"""Per-account records built column by column: the writing side of :mod:`models.cards`.

A chunk's records are assembled from parts, each a column of byte strings for some of the
accounts (a header for all, a reason slot for those showing it, a value for those whose
wording reads it). Parts are laid out in the order they are added, so each record reads in
that order. Everything is numpy over the whole chunk: Python touches one object per account
only to hand out the final ``bytes``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

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
)

_WIDTH = 9  # a tag and at most 8 bytes of payload
_INT_TAGS = ((INT8, "<i1", 2**7), (INT16, "<i2", 2**15), (INT32, "<i4", 2**31))
_FLOAT_INT_TAGS = ((FLOAT_I8, "<i1", 2**7), (FLOAT_I16, "<i2", 2**15), (FLOAT_I32, "<i4", 2**31))


@dataclass
class Records:
    """Records of ``n`` accounts under construction (see the module docstring)."""

    n: int
    _parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add_fixed(self, rows: np.ndarray, matrix: np.ndarray) -> None:
        """The same number of bytes for each of ``rows``: ``matrix`` is rows x width."""
        lengths = np.full(len(rows), matrix.shape[1], dtype=np.int64)
        self._parts.append((rows, lengths, np.ascontiguousarray(matrix).ravel()))

    def add_values(self, rows: np.ndarray, values: pd.Series) -> None:
        """``values[i]`` as a tagged value for account ``rows[i]``."""
        cells, lengths = encode_values(values)
        used = np.arange(cells.shape[1]) < lengths[:, None]
        self._parts.append((rows, lengths, cells[used]))

    def to_list(self) -> list[bytes]:
        sizes = np.zeros(self.n, dtype=np.int64)
        for rows, lengths, _ in self._parts:
            sizes[rows] += lengths
        ends = np.cumsum(sizes)
        cursor = ends - sizes
        out = np.zeros(int(ends[-1]) if self.n else 0, dtype=np.uint8)
        for rows, lengths, flat in self._parts:
            out[_spread(cursor[rows], lengths)] = flat
            cursor[rows] += lengths
        blob = out.tobytes()
        bounds = np.concatenate([[0], ends]).tolist()
        return [blob[a:b] for a, b in itertools.pairwise(bounds)]


def _spread(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Positions ``starts[i] .. starts[i] + lengths[i]`` of every i, concatenated."""
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))


def encode_values(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each value as tag + payload: a row of cells per value and the cells it uses.

    Numbers, flags and dates are encoded as whole columns; other values (text, categories)
    once per distinct value.
    """
    dtype = values.dtype
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


def _cells(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, _WIDTH), dtype=np.uint8), np.ones(n, dtype=np.int64)


def _put(
    cells: np.ndarray, lengths: np.ndarray, where: np.ndarray, tag: int, data: np.ndarray
) -> None:
    """Tag ``tag`` and ``data``'s little-endian bytes into the rows ``where``."""
    width = data.dtype.itemsize
    cells[where, 0] = tag
    cells[where, 1 : 1 + width] = data.view(np.uint8).reshape(-1, width)
    lengths[where] = 1 + width


def _int_matrix(numbers: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cells, lengths = _cells(len(numbers))
    todo = ~missing
    for tag, dtype, bound in _INT_TAGS:
        fits = todo & (numbers >= -bound) & (numbers < bound)
        _put(cells, lengths, fits, tag, numbers[fits].astype(dtype))
        todo &= ~fits
    _put(cells, lengths, todo, INT64, numbers[todo].astype("<i8"))
    return cells, lengths


def _float_matrix(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cells, lengths = _cells(len(numbers))
    todo = ~np.isnan(numbers)
    with np.errstate(invalid="ignore", over="ignore"):
        # -0.0 keeps its sign ("-0%"), so it is no whole number here.
        whole = todo & (np.floor(numbers) == numbers) & ~((numbers == 0) & np.signbit(numbers))
        for tag, dtype, bound in _FLOAT_INT_TAGS:
            fits = whole & (numbers >= -bound) & (numbers < bound)
            _put(cells, lengths, fits, tag, numbers[fits].astype(dtype))
            todo &= ~fits
            whole &= ~fits
        single = numbers.astype(np.float32)
        exact = todo & (single.astype(np.float64) == numbers)
    _put(cells, lengths, exact, FLOAT32, single[exact].astype("<f4"))
    todo &= ~exact
    _put(cells, lengths, todo, FLOAT64, numbers[todo].astype("<f8"))
    return cells, lengths


def _date_matrix(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    if getattr(values.dtype, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    missing = values.isna().to_numpy()
    micros = values.to_numpy(dtype="datetime64[us]").astype(np.int64)
    days, rest = np.divmod(micros, 86_400_000_000)
    cells, lengths = _cells(len(values))
    midnight = ~missing & (rest == 0)
    _put(cells, lengths, midnight, DATE, days[midnight].astype("<i4"))
    other = ~missing & ~midnight
    _put(cells, lengths, other, DATETIME, micros[other].astype("<i8"))
    return cells, lengths


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
