"""A scored chunk as columns, and the codec that turns one account's stored record into the
card a CSM sees.

Scoring produces columns (``ScoredChunk``); the snapshot store keeps the indexed fields (id,
name, owner, segment, risk) itself and each account's remaining card data as an opaque
``record``; text is rendered only when a card is read (``CardCodec.decode``). The codec's
``spec`` is stored once per snapshot, so a reader decodes a snapshot with exactly the wording
and playbook it was scored with.

Interim version: the record is the card's JSON minus the indexed fields. The columnar,
render-on-read record replaces it behind the same interface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The card fields the store keeps as columns of its own (and hands back to ``decode``).
INDEXED = ("account_id", "account_name", "owner", "segment", "risk")


@dataclass(frozen=True)
class ScoredChunk:
    """One chunk of a scoring run: ``n`` accounts as columns; ``records[i]`` is account i's
    card data beyond the indexed columns, for ``CardCodec.decode``."""

    account_id: list[str]
    account_name: list[str]
    owner: list[str]
    segment: list[str]  # "" where the export has no segment
    risk: np.ndarray  # float64, shape (n,)
    records: list[bytes]

    def __len__(self) -> int:
        return len(self.account_id)


class CardCodec:
    """Turns a stored record back into the card dict the Slack side renders."""

    VERSION = "json-v0"

    def spec(self) -> str:
        """Everything ``decode`` needs, as text stored once per snapshot."""
        return json.dumps({"codec": self.VERSION})

    @classmethod
    def from_spec(cls, spec: str) -> CardCodec:
        return cls()

    @staticmethod
    def encode(card: dict[str, Any]) -> bytes:
        rest = {k: v for k, v in card.items() if k not in INDEXED}
        return json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode()

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
        card: dict[str, Any] = {
            "account_id": account_id,
            "account_name": account_name,
            "owner": owner,
            "segment": segment,
            "risk": round(risk, 6),
        }
        card.update(json.loads(record))
        card["previous_risk"] = previous_risk
        card["change"] = None if previous_risk is None else round(risk - previous_risk, 6)
        return card
