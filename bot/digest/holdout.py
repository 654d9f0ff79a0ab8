"""The optional holdout: a share of flagged accounts kept out of the digests, as a control.

Why: the save rate of an action (``models.save_rate``) compares accounts where a CSM did it
with comparable ones where nobody did, and CSMs choose; accounts that no digest showed, chosen
by a hash rather than by anyone, are a true control group. Off by default: holding accounts
back means nobody is told they are at risk, so an admin turns it on deliberately
(`/churn-admin holdout 0.1`), audited, and it stays off until then.

* **Deterministic by account id**: ``sha256(salt, account id)`` read as a number in [0, 1)
  below the share. The same account is held out every week, by every worker, whatever else
  changes; raising the share only adds accounts (the held-out set at 5% is inside the one at
  10%). A new ``salt`` in config/holdout.yaml draws a new group.
* **Where**: :func:`bot.digest.compose.select_cards` ranks the digest's accounts, keeps the
  held-out ones out and fills the digest from the next ones; the held-out accounts that would
  have been shown are recorded with what was shown (``bot.digest.exposures``).
* **Who set it**: the share an admin set is stored in Redis with who and when, and every
  change goes to the audit log; without one, config/holdout.yaml's ``share`` (0: off) holds.

Key layout: ``<prefix>:{<book>}:holdout`` hash {share, who, when}.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.state.audit import AuditLog
from bot.state.replies import text_hash
from bot.state.store import book_root, translate_errors
from models.config_files import load_yaml_model

if TYPE_CHECKING:  # bot.deps needs the settings, which this package's config is part of
    from bot.deps import Deps

FILENAME = "holdout.yaml"
DEFAULT_SALT = "churnbot-holdout-v1"


class HoldoutConfig(BaseModel):
    """config/holdout.yaml. ``share`` applies until an admin sets one; ``max_share`` bounds
    what `/churn-admin holdout` accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share: float = Field(default=0.0, ge=0.0, le=0.5)
    max_share: float = Field(default=0.2, gt=0.0, le=0.5)
    salt: str = Field(default=DEFAULT_SALT, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _share_within_max(self) -> HoldoutConfig:
        if self.share > self.max_share:
            raise ValueError(f"share ({self.share}) must not exceed max_share ({self.max_share})")
        return self


def load_holdout_config(config_dir: Path) -> HoldoutConfig:
    """The validated config/holdout.yaml of ``config_dir``; the defaults (off) without one."""
    path = config_dir / FILENAME
    return load_yaml_model(path, HoldoutConfig) if path.is_file() else HoldoutConfig()


def is_held_out(account_id: str, share: float, salt: str = DEFAULT_SALT) -> bool:
    """Is ``account_id`` in the held-out ``share``? Stable across weeks and processes."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{salt}\x1f{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclass(frozen=True)
class Holdout:
    """The holdout in force: ``share`` 0 holds nothing back."""

    share: float = 0.0
    salt: str = DEFAULT_SALT
    who: str = ""
    when: str = ""

    def holds(self, account_id: str) -> bool:
        return is_held_out(account_id, self.share, self.salt)


NO_HOLDOUT = Holdout()


class HoldoutStore:
    """The share an admin set (if any), read by every digest run."""

    def __init__(self, client: redis.Redis, *, prefix: str = "churnbot", book: str = "default"):
        self._r = client
        self._key = book_root(prefix, book, owner="HoldoutStore") + "holdout"

    def current(self, config: HoldoutConfig) -> Holdout:
        """The admin's setting, else the config's share."""
        with translate_errors(self._r):
            stored = text_hash(self._r.hgetall(self._key))
        if not stored:
            return Holdout(share=config.share, salt=config.salt, who="config/holdout.yaml")
        return Holdout(
            share=float(stored["share"]), salt=config.salt, who=stored["who"], when=stored["when"]
        )

    def set(self, share: float, *, who: str, at: dt.datetime) -> None:
        with translate_errors(self._r):
            self._r.hset(
                self._key, mapping={"share": repr(share), "who": who, "when": at.isoformat()}
            )


def current_holdout(deps: Deps) -> Holdout:
    """The holdout every digest run applies now."""
    return HoldoutStore(deps.redis, prefix=deps.prefix).current(deps.settings.holdout)


def parse_share(word: str, config: HoldoutConfig) -> float | str:
    """The share ``word`` asks for (``off`` is 0; ``10%`` or ``0.1``), or why it is refused."""
    text = word.strip().lower()
    if text == "off":
        return 0.0
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return f"{word!r} is not a share: give a number such as `0.1` or `10%`, or `off`."
    if not 0 < share <= config.max_share:
        return (
            f"The share must be above 0 and at most {config.max_share:.0%} "
            f"(max_share in config/holdout.yaml); got {word}."
        )
    return share


def set_holdout(
    store: HoldoutStore,
    audit: AuditLog,
    config: HoldoutConfig,
    *,
    user_id: str,
    word: str,
    now: dt.datetime,
) -> str:
    """`/churn-admin holdout SHARE|off`: store the new share, audit it, and say what it means."""
    share = parse_share(word, config)
    if isinstance(share, str):
        audit.record(who=user_id, what="holdout", why=word, outcome="refused")
        return share
    previous = store.current(config).share
    store.set(share, who=user_id, at=now)
    audit.record(
        who=user_id,
        what="holdout",
        why=word,
        detail={"share": share, "previous": previous, "salt": config.salt},
    )
    if share == 0:
        return (
            f"Holdout OFF (was {previous:.0%}): every flagged account can appear in the "
            "digests again from their next run."
        )
    return (
        f"Holdout ON at {share:.0%} (was {previous:.0%}): from the next digests, about "
        f"{share:.0%} of flagged accounts (chosen by a hash of the account id, the same every "
        "week) are left out and kept as the control group of the save rates in "
        "`/churn-admin stats`. Their owners are not told they are at risk: turn it off with "
        "`/churn-admin holdout off`."
    )
