"""The compiled copier behind record assembly (models/_records.c): what it copies, and that a
wrong length, account or source is refused instead of written out of bounds."""

from __future__ import annotations

import numpy as np
import pytest

from models._records import copy


def _ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _bytes(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint8)


def test_each_piece_goes_to_its_account_after_the_previous_parts() -> None:
    out = np.zeros(11, dtype=np.uint8)
    cursor = _ints(0, 4, 7)  # records of 4, 3 and 4 bytes
    # 2 bytes for every account, in order, from rows of 2.
    copy(out, cursor, None, None, 2, _bytes(1, 1, 2, 2, 3, 3).reshape(3, 2), 2)
    # Accounts 2 and 0 only: 1 and 2 bytes from the start of rows of 3 cells.
    copy(out, cursor, _ints(2, 0), _ints(1, 2), 0, _bytes(7, 8, 9, 4, 5, 6).reshape(2, 3), 3)
    # Accounts 1 and 2: 1 byte each, one piece after the other in the source.
    copy(out, cursor, _ints(1, 2), _ints(1, 1), 0, _bytes(1, 2), 0)
    assert out.tolist() == [1, 1, 4, 5, 2, 2, 1, 3, 3, 7, 2]
    assert cursor.tolist() == [4, 7, 11]


@pytest.mark.parametrize(
    ("rows", "lengths", "src", "stride"),
    [
        (_ints(0, 1), _ints(2, 9), _bytes(*range(20)), 10),  # past the end of the records
        (_ints(0, 5), _ints(1, 1), _bytes(1, 2), 0),  # no such account
        (_ints(0, -1), _ints(1, 1), _bytes(1, 2), 0),  # a negative account
        (_ints(0, 1), _ints(1, -1), _bytes(1, 2), 0),  # a negative length
        (_ints(0, 1), _ints(2, 2), _bytes(1, 2, 3), 0),  # the source ends first
        (_ints(0, 1), _ints(1, 1), _bytes(1, 2), 2),  # the source ends first, with a stride
    ],
)
def test_a_piece_that_does_not_fit_is_refused(
    rows: np.ndarray, lengths: np.ndarray, src: np.ndarray, stride: int
) -> None:
    out = np.zeros(6, dtype=np.uint8)
    guard = np.zeros(4, dtype=np.uint8)  # what lies after ``out`` must stay untouched
    buffer = np.concatenate([out, guard])
    with pytest.raises(ValueError, match="does not fit"):
        copy(buffer[:6], _ints(0, 3, 6), rows, lengths, 0, src, stride)
    assert buffer[6:].tolist() == [0, 0, 0, 0]


def test_indices_that_are_not_int64_are_refused() -> None:
    out = np.zeros(4, dtype=np.uint8)
    with pytest.raises(ValueError, match="rows is not a buffer of int64"):
        copy(out, _ints(0, 2), np.array([0, 1], dtype=np.int32), _ints(1, 1), 0, _bytes(1, 2), 0)
    with pytest.raises(ValueError, match="lengths is not a buffer of int64"):
        copy(out, _ints(0, 2), _ints(0, 1), np.array([1.0, 1.0]), 0, _bytes(1, 2), 0)
    with pytest.raises(ValueError, match="cursor is not a buffer of int64"):
        copy(out, np.array([0, 2], dtype=np.uint64), None, None, 1, _bytes(1, 2), 1)
