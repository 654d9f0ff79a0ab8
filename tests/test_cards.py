"""Cards rendered on read are the cards scoring wrote before: every key, every text.

tests/data/cards-golden.json.gz holds the cards of four books of different shapes as the
per-account scoring path wrote them (tests/golden_cards.py made it). Here the same books are
scored as columns, each record is decoded through the codec rebuilt from its stored spec, as a
reader of a snapshot does, and every card must equal its golden twin.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.cards import (
    BANDS,
    CODEC,
    FROM_SEGMENT,
    HEADER,
    CardCodec,
    Packed,
    codec_spec,
    read_value,
    slot_format,
)
from models.packing import HEADER_ROW, Records, encode_value, slot_row, texts
from models.wording import BLANK
from tests.golden_cards import MODEL, decoded_cards, read_golden, scored_books


@pytest.mark.slow
def test_decoded_cards_equal_the_golden_cards(tmp_path: Path) -> None:
    golden = read_golden()
    seen = set()
    for name, scorer, rows in scored_books(tmp_path):
        seen.add(name)
        # Chunks smaller than the book, so a book spans several (and the last is partial).
        cards = decoded_cards(scorer, rows, chunk_size=700)
        brief = decoded_cards(scorer, rows, chunk_size=700, for_digest=True)
        # a digest's: no context items, no healthy reason
        assert brief == [{**card, "context": [], "healthy": None} for card in cards], name
        expected = golden[name]
        assert len(cards) == len(expected), name
        for card, want in zip(cards, expected, strict=True):
            assert card.pop("previous_risk") is None
            assert card.pop("change") is None
            assert card["model_version"] == scorer.model.card.version
            assert {**card, "model_version": MODEL} == want, name
    assert seen == set(golden)


def test_change_is_the_readers_from_the_previous_risk() -> None:
    codec = CardCodec(
        codec_spec(
            reasons={"codes": [], "fields": [], "risk": [], "healthy": []},
            actions=[("default", "Call them", "why not", "CSM")],
            context=[],
            link={"column": None, "template": None, "fields": []},
            model_version="v1",
        )
    )
    record = HEADER.pack(20_000, 0, 1, 0)
    card = codec.decode(
        record,
        account_id="A1",
        account_name="Acme",
        owner="jo@example.com",
        segment="",
        risk=0.4000004,
        previous_risk=0.25,
    )
    assert card["previous_risk"] == 0.25
    assert card["change"] == round(0.4000004 - 0.25, 6)
    assert card["risk"] == 0.4
    assert card["band"] == "medium"
    assert card["as_of"] == "2024-10-04"
    assert card["reasons"] == []
    assert card["healthy"] is None


def _context_codec(*context: tuple[str, str | None] | tuple[str, str | None, str]) -> CardCodec:
    return CardCodec(
        codec_spec(
            reasons={"codes": [], "fields": [], "risk": [], "healthy": []},
            actions=[("default", "Call them", "why not", "CSM")],
            context=context,
            link={"column": None, "template": None, "fields": []},
            model_version="v1",
        )
    )


@pytest.mark.parametrize("segment", ["enterprise", ""])
def test_the_segment_is_shown_from_the_store_and_not_stored_twice(segment: str) -> None:
    """A record written since the segment left it, and one written before (a snapshot
    published by the previous release), read as the same card."""
    header = HEADER.pack(20_000, 0, 1, 0)
    arr = encode_value(1200.0)
    new = _context_codec(("Segment", None, FROM_SEGMENT), ("ARR", "${value:,.0f}"))
    old = _context_codec(("Segment", None), ("ARR", "${value:,.0f}"))
    old_value = encode_value(segment or None)
    fields = {"account_id": "A1", "account_name": "Acme", "owner": "jo@example.com"}
    read = {
        codec: codec.decode(record, **fields, segment=segment, risk=0.4, previous_risk=None)
        for codec, record in ((new, header + arr), (old, header + old_value + arr))
    }
    shown = [["Segment", segment]] if segment else []
    assert read[new]["context"] == read[old]["context"] == [*shown, ["ARR", "$1,200"]]


def test_a_codec_for_digest_reads_the_same_card_with_no_context_items() -> None:
    """A digest's codec steps over the context values it does not word: the CRM link and
    what an abstained account lacks, which the record keeps after them, read as before."""
    spec = codec_spec(
        reasons={"codes": [], "fields": [], "risk": [], "healthy": []},
        actions=[("default", "Call them", "why not", "CSM")],
        context=[("Segment", None, FROM_SEGMENT), ("ARR", "${value:,.0f}"), ("Renewal", None)],
        link={
            "column": None,
            "template": "https://crm/{id}/{region}",
            "fields": [["id", True], ["region", False]],
        },
        model_version="v1",
        abstain={"labels": ["ARR", "Plan"], "history": [], "min_history_days": 0},
    )
    record = (
        HEADER.pack(20_000, 0, 1, 0x40)
        + encode_value(1200.0)
        + encode_value(dt.datetime(2027, 7, 11))
        + encode_value("eu")
        + (-1).to_bytes(4, "little", signed=True)
        + bytes([0b10])
    )
    fields = {"account_id": "A 1", "account_name": "Acme", "owner": "jo@example.com"}
    full = CardCodec(spec)
    whole = full.decode(record, **fields, segment="smb", risk=0.4, previous_risk=0.3)
    brief = full.for_digest().decode(record, **fields, segment="smb", risk=0.4, previous_risk=0.3)
    assert whole["context"] == [["Segment", "smb"], ["ARR", "$1,200"], ["Renewal", "Jul 11, 2027"]]
    assert whole["url"] == "https://crm/A%201/eu"
    assert whole["abstain"] == {"missing": ["Plan"]}
    assert brief == {**whole, "context": []}


@pytest.mark.parametrize("url_template", [None, "https://crm/{id}"])
def test_a_codec_for_digest_need_not_step_over_its_values(url_template: str | None) -> None:
    """Nothing after the context values is read (a link from the id alone, no abstain):
    the card reads the same without stepping over them."""
    codec = CardCodec(
        codec_spec(
            reasons={"codes": [], "fields": [], "risk": [], "healthy": []},
            actions=[("default", "Call them", "why not", "CSM")],
            context=[("ARR", "${value:,.0f}"), ("Renewal", None)],
            link={"column": None, "template": url_template, "fields": [["id", True]]},
            model_version="v1",
        )
    )
    record = (
        HEADER.pack(20_000, 0, 2, 0) + encode_value(9.5) + encode_value(dt.datetime(2027, 1, 2))
    )
    fields = {"account_id": "A1", "account_name": "Acme", "owner": "jo@example.com"}
    whole = codec.decode(record, **fields, segment="", risk=0.8, previous_risk=None)
    brief = codec.for_digest().decode(record, **fields, segment="", risk=0.8, previous_risk=None)
    assert whole["context"] == [["ARR", "$10"], ["Renewal", "Jan 02, 2027"]]
    assert whole["url"] == (None if url_template is None else "https://crm/A1")
    assert whole["as_of"] == "2024-10-04"
    assert brief == {**whole, "context": []}


COLUMNS = {
    "small ints": pd.Series([0, -128, 127, 5], dtype="int64"),
    "wide ints": pd.Series([128, -40_000, 2**31, -(2**40)], dtype="int64"),
    "nullable ints": pd.Series([1, None, 300, 70_000], dtype="Int64"),
    "whole floats": pd.Series([3.0, -0.0, 1e6, 2.0**40]),
    "floats": pd.Series([0.25, 0.1, math.nan, -1234.5678]),
    "flags": pd.Series([True, False, True, False]),
    "nullable flags": pd.Series([True, None, False, True], dtype="boolean"),
    "dates": pd.Series(
        pd.to_datetime(
            pd.Series(["2026-01-05", None, "1969-12-31", "2026-01-05 10:30"]), format="ISO8601"
        )
    ),
    "text": pd.Series(["smb", None, "é" * 300, ""], dtype="str"),
    "categories": pd.Series(["a", "b", None, "a"], dtype="category"),
    "objects": pd.Series([7, 2.5, "x", None], dtype=object),
}


def _plain(value: object) -> object:
    """What a template saw of a cell: None, NaN, NA and NaT all read as BLANK."""
    if value is None or value is pd.NA or value is pd.NaT:
        return BLANK
    if isinstance(value, float) and math.isnan(value):
        return BLANK
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


@pytest.mark.parametrize("name", list(COLUMNS))
def test_every_kind_of_value_reads_back_as_it_was(name: str) -> None:
    column = COLUMNS[name]
    records = Records(len(column))
    everyone = np.arange(len(column))
    records.add_values(everyone, column)
    records.add_values(everyone[::-1], column)  # a second part, in another row order
    for i, record in enumerate(records.to_list()):
        first, at = read_value(record, 0)
        second, end = read_value(record, at)
        assert end == len(record)
        for got, want in ((first, column.iloc[i]), (second, column.iloc[len(column) - 1 - i])):
            want = _plain(want.item() if isinstance(want, np.generic) else want)
            assert got == want or got is want, (name, i, got, want)
            assert type(got) is type(want), (name, i, got, want)
            if isinstance(want, float):
                assert math.copysign(1, got) == math.copysign(1, want)  # type: ignore[arg-type]


def test_one_value_encodes_as_its_column_does() -> None:
    for name, column in COLUMNS.items():
        records = Records(len(column))
        records.add_values(np.arange(len(column)), column)
        singles = [encode_value(value) for value in column.tolist()]
        assert records.to_list() == singles, name


def test_a_plain_numpy_column_encodes_as_its_series_does() -> None:
    """Template values of plain numeric columns are handed to the records as numpy arrays."""
    plain = [name for name, column in COLUMNS.items() if isinstance(column.dtype, np.dtype)]
    plain = [name for name in plain if COLUMNS[name].dtype.kind in "biuf"]
    assert {"small ints", "wide ints", "whole floats", "floats", "flags"} <= set(plain)
    for name in plain:
        as_series, as_array = Records(len(COLUMNS[name])), Records(len(COLUMNS[name]))
        as_series.add_values(np.arange(len(COLUMNS[name])), COLUMNS[name])
        as_array.add_values(np.arange(len(COLUMNS[name])), COLUMNS[name].to_numpy())
        assert as_array.to_list() == as_series.to_list(), name


def test_a_small_value_takes_few_bytes() -> None:
    assert len(encode_value(3)) == 2
    assert len(encode_value(3.0)) == 2
    assert len(encode_value(0.25)) == 5  # exact in single precision
    assert len(encode_value(0.1)) == 9
    assert len(encode_value(dt.datetime(2026, 1, 5))) == 5
    assert len(encode_value(None)) == 1


def test_the_numpy_layouts_are_the_struct_layouts() -> None:
    header = np.array([(-3, 513, 2, 0x83)], dtype=HEADER_ROW)
    assert header.tobytes() == HEADER.pack(-3, 513, 2, 0x83)
    for n_features in (3, 300):
        slot = np.array([(254, -12_345)], dtype=slot_row(n_features))
        assert slot.tobytes() == slot_format(n_features).pack(254, -12_345)


def test_a_spec_of_another_codec_is_refused() -> None:
    with pytest.raises(ValueError, match="json-v0"):
        CardCodec.from_spec('{"codec": "json-v0"}')
    assert CODEC != "json-v0"
    assert BANDS == ("low", "medium", "high")


def test_a_text_column_packs_as_the_texts_it_holds() -> None:
    """Arrow-backed text is taken from Arrow's buffers (a slice of a column included), any
    other column value by value; both read back as the same strings, "" where empty."""
    column = pd.Series(["Société", None, "", "Acme", "東京"] * 3, dtype="str")
    for part in (column, column.iloc[4:11]):
        expected = ["" if pd.isna(v) else v for v in part.tolist()]
        packed = texts(part)
        assert packed.tolist() == expected
        assert [packed[i] for i in range(len(packed))] == expected
        assert texts(part.astype(object)).tolist() == expected
    assert texts(pd.Series([3, 4])).tolist() == ["3", "4"]
    cut = packed.cut(2, 7)  # offsets that start past 0, listed at once or one by one
    assert cut.tolist() == list(cut) == expected[2:7]
    assert packed.cut(3, 3).tolist() == []
    records = Packed.of([b"ab", b"", b"cde"])
    assert list(records.cut(1, 3)) == [b"", b"cde"]
    assert records.nbytes == 5
