"""The books whose cards are pinned in tests/data/cards-golden.json.gz, and the script that
writes that file.

Four books of different shapes: the sample book with the bundled configuration, and the three
exports of tests/test_byo_data.py, each with the configuration ``churnbot init`` proposes for
it (with a fixed "today", so the proposal does not depend on the calendar). Each is trained in
a registry of its own and its live accounts are scored. The golden file holds every card the
scoring code of the day produced for them; tests/test_cards.py scores the same books with the
current code and compares card by card, so what a CSM reads cannot change by accident.

The committed file was written by the per-account scoring path (``AccountScore.to_card`` at
commit d3146ed) before cards were rendered on read. Regenerate it (only when a change of
wording or scoring is intended) with ``.venv/bin/python -m tests.golden_cards``, which now
decodes the columnar records.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bot.cli.init import starter_files
from bot.publish import build_scorer
from bot.settings import load_settings
from models.cards import CardCodec, ScoredChunk
from models.generator import generate_accounts
from models.loaders import load_table, read_raw
from models.pipeline import train_and_register
from models.profile import propose
from models.registry import Registry
from models.scoring import Scorer, latest_rows
from tests.exports import subscriber_snapshot, usage_observations

REPO = Path(__file__).resolve().parent.parent
#: The model version holds the training date and the artifact's hash, so the golden file names
#: it by this placeholder and the test puts each scorer's own version in its place.
MODEL = "<model version>"
GOLDEN = REPO / "tests" / "data" / "cards-golden.json.gz"
END = dt.date(2026, 11, 16)
TODAY = dt.date(2026, 11, 20)


@dataclass(frozen=True)
class Book:
    name: str
    build: Callable[[], pd.DataFrame]
    #: Configured by ``init`` (True) or the bundled config/ folder (False).
    proposed: bool


BOOKS = (
    Book("sample-book", lambda: generate_accounts(1_500, 52, seed=13, end=END).accounts, False),
    Book("weekly-book", lambda: generate_accounts(600, 52, seed=5, end=END).accounts, True),
    Book("subscriber-snapshot", lambda: subscriber_snapshot(2_000), True),
    Book("usage-observations", lambda: usage_observations(800), True),
)


def scored_books(tmp: Path) -> Iterator[tuple[str, Scorer, pd.DataFrame]]:
    """Each book's name, a scorer with its freshly trained model, and its live accounts."""
    for book in BOOKS:
        folder = tmp / book.name
        folder.mkdir(parents=True)
        export = folder / "export.csv"
        book.build().to_csv(export, index=False)
        # Written "today": the date of a one-snapshot export (constants: export_date).
        written = dt.datetime.combine(TODAY, dt.time(12), dt.UTC).timestamp()
        os.utime(export, (written, written))
        config = REPO / "config"
        if book.proposed:
            config = folder / "config"
            config.mkdir()
            proposal = propose(read_raw(export).frame, TODAY)
            for name, content in starter_files(proposal, TODAY).items():
                (config / name).write_text(content, encoding="utf-8")
        settings = load_settings(
            {"CHURNBOT_CONFIG": str(config), "CHURNBOT_VAR": str(folder / "var")}
        )
        frame = load_table(export, settings.schema, settings.sources).frame
        registry = Registry(folder / "registry")
        train_and_register(
            frame,
            settings.schema,
            settings.features,
            settings.spec,
            registry,
            data_source=book.name,
            promote=True,
        )
        scorer = build_scorer(settings, registry.load())
        yield book.name, scorer, latest_rows(frame, settings.schema)


def decoded_card(codec: CardCodec, chunk: ScoredChunk, i: int) -> dict[str, Any]:
    """Account ``i`` of a scored chunk's card as a reader gets it (no previous snapshot)."""
    return codec.decode(
        chunk.records[i],
        account_id=chunk.account_id[i],
        account_name=chunk.account_name[i],
        owner=chunk.owner[i],
        segment=chunk.segment[i],
        risk=float(chunk.risk[i]),
        previous_risk=None,
    )


def decoded_cards(
    scorer: Scorer, rows: pd.DataFrame, chunk_size: int, *, for_digest: bool = False
) -> list[dict[str, Any]]:
    """Every card of the book as a reader gets it (no previous snapshot); ``for_digest=True``
    as a digest reads it (:meth:`CardCodec.for_digest`)."""
    codec = CardCodec.from_spec(scorer.codec().spec())
    if for_digest:
        codec = codec.for_digest()
    return [
        decoded_card(codec, chunk, i)
        for chunk in scorer.column_chunks(rows, chunk_size=chunk_size)
        for i in range(len(chunk))
    ]


def write_golden(cards: dict[str, list[dict[str, Any]]]) -> None:
    text = json.dumps(cards, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    GOLDEN.write_bytes(gzip.compress(text.encode(), mtime=0))


def read_golden() -> dict[str, list[dict[str, Any]]]:
    return json.loads(gzip.decompress(GOLDEN.read_bytes()))


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        golden = {
            name: [
                {**card, "model_version": MODEL}
                for card in decoded_cards(scorer, rows, 50_000)
                if card.pop("previous_risk") is None and card.pop("change") is None
            ]
            for name, scorer, rows in scored_books(Path(tmp))
        }
    write_golden(golden)
    print({name: len(cards) for name, cards in golden.items()}, GOLDEN.stat().st_size)
