"""Shadow mode: a candidate model scores next to the champion, seen only by admins.

`churnbot score --shadow VERSION` scores the live book with both models (nothing is
published, so no CSM ever sees the candidate), compares them with ``models.shadow``, and
stores both risk lists and the comparison. `/churn-admin shadow` reads the stored comparison
(a few keys, fast enough for a slash command whatever the book's size) and adds the
precision of each model's top-N on accounts whose outcome has become known since.
`/churn-admin promote VERSION` makes a model the champion, audited.

Key layout (``S`` = ``<prefix>:{<book>}:shadow``)::

    S:latest              string  the candidate version of the newest shadow run
    S:<version>:meta      string  ShadowRecord as JSON (comparison included)
    S:<version>:champion  zset    account_id -> the champion's risk in that run
    S:<version>:candidate zset    account_id -> the candidate's risk
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

import pandas as pd
import redis

from bot.deps import Deps
from bot.feedback.outcomes import churned_within
from bot.feedback.store import FeedbackStore
from bot.settings import Settings
from bot.state.replies import maybe_text, members
from bot.state.store import book_root, translate_errors
from models.errors import ModelError
from models.listing import Unlisted
from models.monitoring import known_outcome_rows
from models.registry import Registry
from models.scoring import live_rows, predict_risk
from models.shadow import OutcomeMetrics, ShadowComparison, compare
from models.validate import LoadResult

_CHUNK = 5_000
Side = Literal["champion", "candidate"]


@dataclass(frozen=True)
class ShadowRecord:
    candidate_version: str
    champion_version: str
    as_of: str
    created_at: str
    live: ShadowComparison
    backtest: ShadowComparison | None  # on the newest rows whose outcome is known
    backtest_as_of: str | None

    def to_json(self) -> str:
        return json.dumps(
            {
                **{k: v for k, v in vars(self).items() if k not in ("live", "backtest")},
                "live": self.live.to_dict(),
                "backtest": self.backtest.to_dict() if self.backtest else None,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ShadowRecord:
        data = json.loads(text)
        data["live"] = ShadowComparison.from_dict(data["live"])
        data["backtest"] = (
            ShadowComparison.from_dict(data["backtest"]) if data["backtest"] else None
        )
        return cls(**data)


class ShadowStore:
    def __init__(self, client: redis.Redis, *, prefix: str = "churnbot", book: str = "default"):
        self._r = client
        self._root = book_root(prefix, book, owner="ShadowStore") + "shadow:"

    def save(self, record: ShadowRecord, risks: dict[Side, pd.Series]) -> None:
        """Store a run's risks and record; readers see the previous run or this one whole."""
        base = self._root + record.candidate_version + ":"
        with translate_errors(self._r):
            for side, series in risks.items():
                staging = base + side + ":staging"
                self._r.delete(staging)
                items = iter(series.items())
                while chunk := list(islice(items, _CHUNK)):
                    self._r.zadd(staging, {str(k): float(v) for k, v in chunk})
            pipe = self._r.pipeline(transaction=True)
            for side in risks:
                pipe.rename(base + side + ":staging", base + side)
            pipe.set(base + "meta", record.to_json())
            pipe.set(self._root + "latest", record.candidate_version)
            pipe.execute()

    def latest(self) -> ShadowRecord | None:
        with translate_errors(self._r):
            version = maybe_text(self._r.get(self._root + "latest"))
            meta = maybe_text(self._r.get(self._root + version + ":meta")) if version else None
        return ShadowRecord.from_json(meta) if meta else None

    def top(self, version: str, side: Side, n: int) -> list[str]:
        with translate_errors(self._r):
            return list(members(self._r.zrevrange(self._root + f"{version}:{side}", 0, n - 1)))


def run_shadow(
    settings: Settings,
    registry: Registry,
    frame: pd.DataFrame,
    version: str,
    *,
    now: dt.datetime,
    top_n: int,
    unlisted: Unlisted | None = None,
) -> tuple[ShadowRecord, dict[Side, pd.Series]]:
    """Score the live accounts of ``frame`` with the champion and with ``version`` (those a
    scoring run scores: ``unlisted`` as :func:`models.scoring.live_rows` takes it)."""
    champion, candidate = registry.load(), registry.load(version)
    if champion.card.version == candidate.card.version:
        raise ModelError(f"model {version} is already the champion: shadow a different version")
    schema = settings.schema

    def both(rows: pd.DataFrame) -> dict[Side, pd.Series]:
        ids = rows[schema.id_column].astype(str).to_numpy()
        return {
            "champion": pd.Series(
                predict_risk(champion.estimator, champion.features, rows), index=ids
            ),
            "candidate": pd.Series(
                predict_risk(candidate.estimator, candidate.features, rows), index=ids
            ),
        }

    live = live_rows(frame, schema, unlisted).frame
    if live.empty:
        raise ModelError("no live accounts to score in shadow mode")
    risks = both(live)
    rows, labels = known_outcome_rows(frame, schema, settings.spec.horizon_days)
    backtest = None
    if len(rows) >= 2:
        past = both(rows)
        outcomes = pd.Series(labels, index=past["champion"].index)
        backtest = compare(past["champion"], past["candidate"], top_n=top_n, outcomes=outcomes)
    record = ShadowRecord(
        candidate_version=candidate.card.version,
        champion_version=champion.card.version,
        as_of=live[schema.date_column].max().date().isoformat(),
        created_at=now.isoformat(),
        live=compare(risks["champion"], risks["candidate"], top_n=top_n),
        backtest=backtest,
        backtest_as_of=rows[schema.date_column].max().date().isoformat() if backtest else None,
    )
    return record, risks


def _num(value: float | None, fmt: str = "{:.3f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _metrics_line(name: str, m: OutcomeMetrics | None) -> str:
    if m is None:
        return f"  {name}: too few known outcomes"
    return (
        f"  {name}: ROC AUC {_num(m.roc_auc)} · PR AUC {_num(m.pr_auc)} · top-decile precision "
        f"{_num(m.top_decile_precision, '{:.0%}')} · precision of the top list "
        f"{_num(m.precision_at_n, '{:.0%}')}"
    )


def shadow_report(deps: Deps, feedback: FeedbackStore) -> str:
    """The `/churn-admin shadow` text for the newest shadow run."""
    shadow = ShadowStore(deps.redis, prefix=deps.prefix)
    record = shadow.latest()
    if record is None:
        return (
            "No shadow run yet: score a candidate next to the champion with "
            "`churnbot score --shadow VERSION`."
        )
    live = record.live
    lines = [
        f"*Shadow: candidate `{record.candidate_version}` vs champion "
        f"`{record.champion_version}`* (run {record.created_at[:16]}, data as of "
        f"{record.as_of}, {live.n_accounts:,} accounts; never shown to CSMs)",
        f"Top {live.top_n}: {live.overlap} in common ({live.overlap_share:.0%}) · rank "
        f"correlation {_num(live.spearman)} · mean risk change "
        f"{live.mean_abs_change * 100:.1f} pts",
    ]
    if live.entered:
        lines.append(f"Would enter the top {live.top_n}: {', '.join(live.entered)}")
        lines.append(f"Would leave it: {', '.join(live.left)}")
    if record.backtest is not None:
        lines.append(
            f"Where outcomes are known (accounts as of {record.backtest_as_of}, "
            f"{record.backtest.champion.n if record.backtest.champion else 0:,} accounts):"
        )
        lines.append(_metrics_line("champion", record.backtest.champion))
        lines.append(_metrics_line("candidate", record.backtest.candidate))
    lines.append(_live_outcomes(shadow, feedback, record, deps.settings.spec.horizon_days))
    lines.append(f"Promote it with `/churn-admin promote {record.candidate_version}`.")
    return "\n".join(lines)


def _live_outcomes(
    shadow: ShadowStore, feedback: FeedbackStore, record: ShadowRecord, horizon_days: int
) -> str:
    """Precision of each side's live top-N among accounts whose outcome is known by now."""
    parts = []
    as_of, horizon = dt.date.fromisoformat(record.as_of), dt.timedelta(days=horizon_days)
    for side in ("champion", "candidate"):
        top = shadow.top(record.candidate_version, side, record.live.top_n)
        known = feedback.outcomes(top)
        labels = [churned_within(o, as_of, horizon) for o in known.values()]
        decided = [label for label in labels if label is not None]
        parts.append(f"{side} {sum(decided)}/{len(decided)} churned")
    return f"Live top {record.live.top_n}, outcomes known so far: " + ", ".join(parts)


def promote(deps: Deps, user_id: str, version: str) -> str:
    """Make ``version`` the champion after checking it loads; audited either way."""
    registry = Registry(deps.settings.paths.registry)
    previous: Any = None
    try:
        previous = registry.champion_version()
        registry.load(version)  # refuse a model that would not load at the next scoring run
        registry.promote(version)
    except ModelError as exc:
        deps.audit.record(who=user_id, what="promote", why=version, outcome="failed")
        return f"Not promoted: {exc}"
    deps.audit.record(who=user_id, what="promote", why=version, detail={"previous": previous})
    return (
        f"Champion is now `{version}` (was `{previous}`). CSMs see its scores after the next "
        "scoring run (`churnbot score`)."
    )


def score_shadow(settings: Settings, client: redis.Redis, loaded: LoadResult, version: str) -> str:
    """`churnbot score --shadow VERSION`: run, store, and say what was stored."""
    config = settings.feedback
    record, risks = run_shadow(
        settings,
        Registry(settings.paths.registry),
        loaded.frame,
        version,
        now=dt.datetime.now(dt.UTC),
        top_n=config.shadow_top_n,
        unlisted=loaded.unlisted,
    )
    ShadowStore(client).save(record, risks)
    live = record.live
    return (
        f"Shadow run stored: {record.candidate_version} next to champion "
        f"{record.champion_version} on {live.n_accounts:,} accounts; top {live.top_n} overlap "
        f"{live.overlap_share:.0%}, rank correlation {_num(live.spearman)}. Nothing was "
        "published; see `/churn-admin shadow`."
    )
