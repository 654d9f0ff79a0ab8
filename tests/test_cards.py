"""Cards rendered on read are the cards scoring wrote before: every key, every text.

tests/data/cards-golden.json.gz holds the cards of four books of different shapes as the
per-account scoring path wrote them (tests/golden_cards.py made it). Here the same books are
scored as columns, each record is decoded through the codec rebuilt from its stored spec, as a
reader of a snapshot does, and every card must equal its golden twin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models.cards import CardCodec, ScoredChunk
from tests.golden_cards import MODEL, read_golden, scored_books

pytestmark = pytest.mark.slow


def _decoded(codec: CardCodec, chunk: ScoredChunk, i: int, previous: float | None) -> Any:
    return codec.decode(
        chunk.records[i],
        account_id=chunk.account_id[i],
        account_name=chunk.account_name[i],
        owner=chunk.owner[i],
        segment=chunk.segment[i],
        risk=float(chunk.risk[i]),
        previous_risk=previous,
    )


def test_decoded_cards_equal_the_golden_cards(tmp_path: Path) -> None:
    golden = read_golden()
    seen = set()
    for name, scorer, rows in scored_books(tmp_path):
        seen.add(name)
        codec = CardCodec.from_spec(scorer.codec().spec())
        cards = []
        # Chunks smaller than the book, so a book spans several (and the last is partial).
        for chunk in scorer.column_chunks(rows, chunk_size=700):
            assert len(chunk.records) == len(chunk) == len(chunk.risk)
            for i in range(len(chunk)):
                card = _decoded(codec, chunk, i, None)
                assert card.pop("previous_risk") is None
                assert card.pop("change") is None
                assert card["model_version"] == scorer.model.card.version
                cards.append({**card, "model_version": MODEL})
            # The change since the previous snapshot is the reader's: from the risk given.
            changed = _decoded(codec, chunk, 0, 0.25)
            assert changed["previous_risk"] == 0.25
            assert changed["change"] == round(float(chunk.risk[0]) - 0.25, 6)
        expected = golden[name]
        assert len(cards) == len(expected), name
        for card, want in zip(cards, expected, strict=True):
            assert card == want, name
    assert seen == set(golden)
