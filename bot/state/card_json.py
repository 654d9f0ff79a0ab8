"""Cards written by hand (fixtures, demos, benchmarks) stored as JSON records.

Scoring stores compact records its own codec (``models.cards.CardCodec``) renders on read;
a book written as card dicts has no such codec, so its records are the card's JSON minus the
fields the store keeps itself. A snapshot's stored spec says which codec reads it
(:func:`codec_for`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeAlias

from models.cards import INDEXED, CardCodec, risk_change

SPEC = json.dumps({"codec": "json-v0"})
#: Fields a hand-written card may carry that the store computes itself.
COMPUTED = ("previous_risk", "change")


def encode(card: Mapping[str, Any]) -> bytes:
    rest = {k: v for k, v in card.items() if k not in INDEXED and k not in COMPUTED}
    return json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode()


class JsonCards:
    """Reads records written by :func:`encode`: the card as it was written, with the change
    since the previous snapshot."""

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
        card: dict[str, Any] = {
            "account_id": account_id,
            "account_name": account_name,
            "owner": owner,
            "segment": segment,
            "risk": risk,
            **json.loads(record),
            "previous_risk": previous_risk,
            "change": risk_change(risk, previous_risk),
        }
        return card

    def for_digest(self) -> JsonCards:
        """Itself: a hand-written card shows what it was written with (the decoder of a
        digest's cards, as :meth:`CardCodec.for_digest` is)."""
        return self


#: What reads a snapshot's records back into cards: this module's or scoring's codec.
Decoder: TypeAlias = JsonCards | CardCodec


def codec_for(spec: str) -> Decoder:
    """The decoder of a snapshot's stored spec: hand-written JSON cards, or scoring's codec."""
    if json.loads(spec).get("codec") == "json-v0":
        return JsonCards()
    return CardCodec.from_spec(spec)
