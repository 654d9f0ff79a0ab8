"""A scoring run: score the book, run the health checks, publish a snapshot, guard the switch.

Health is decided before anything is published, with a cheap first pass of bare predictions:
the snapshot then carries its verdict, an unhealthy one never becomes the last known good, and
a failed check trips the kill switch so the Slack side falls back to last week's data.
A healthy snapshot also leaves its flags in the flag log (the track record CSMs see), gathered
from the scored chunks while they stream into the store.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from bot.render.text import minute_utc
from bot.settings import Settings
from bot.state.flag_log import FlagLog, FlagTally
from bot.state.killswitch import KillSwitch, KillSwitchState
from bot.state.snapshots import SnapshotMeta, SnapshotStore, UnlistedAccounts
from models.abstain import first_seen
from models.errors import ChurnbotError
from models.health import (
    CheckResult,
    check_accuracy_floor,
    check_completeness,
    check_freshness,
    check_input_validity,
)
from models.health import check_model_integrity as integrity
from models.monitoring import drift_checks, known_outcome_rows, sla_metric
from models.reasons import ReasonWriter
from models.registry import LoadedModel, Registry
from models.scoring import LiveRows, Scorer, live_rows
from models.validate import LoadResult

log = logging.getLogger(__name__)
HEALTH_CHECK_USER = "health-check"


@dataclass(frozen=True)
class RunResult:
    """What a scoring run did, for the CLI and for telling admins."""

    checks: tuple[CheckResult, ...]
    snapshot: SnapshotMeta | None
    tripped: bool
    #: The kill switch, when a healthy run left it on (an admin's, or an earlier run's trip):
    #: the new scores are published but nobody sees them live until someone turns it off.
    paused: KillSwitchState | None = None
    #: Accounts the export no longer lists and that were not scored (models.listing), said
    #: with the published snapshot: the digests are that many accounts shorter.
    unlisted_note: str | None = None
    #: When the run tripped the switch: the last good snapshot readers are shown instead
    #: (None: there is none, so they see no scores at all).
    fallback: SnapshotMeta | None = None

    @property
    def shown_instead(self) -> str:
        """What readers see while the switch is on, for the messages of a tripped run."""
        if self.fallback is None:
            return "no scores at all, as no earlier run passed its checks"
        return f"the last good data (as of {self.fallback.as_of})"

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[str]:
        return [check.message for check in self.checks if not check.ok]

    @property
    def paused_note(self) -> str | None:
        """What a healthy run that left the switch on must say: a passing run does not turn
        it off by itself (a person decides the scores can be trusted again), so without a
        word the operator would take "published" to mean CSMs see the new scores."""
        if self.paused is None:
            return None
        state = self.paused
        return (
            f"the kill switch is still on (since {minute_utc(state.when)}, by "
            f"{state.who}: {state.reason}), so Slack keeps showing the last good scores with "
            "the paused banner; an admin turns it off with `/churn-admin killswitch off`"
        )


def _trip(
    store: SnapshotStore,
    switch: KillSwitch,
    checks: list[CheckResult],
    snapshot: SnapshotMeta | None,
    unlisted_note: str | None = None,
) -> RunResult:
    reason = "; ".join(check.message for check in checks if not check.ok)
    switch.trip(reason, who=HEALTH_CHECK_USER, source="health_check")
    log.warning("kill switch tripped by the health checks: %s", reason)
    return RunResult(
        tuple(checks),
        snapshot,
        tripped=True,
        unlisted_note=unlisted_note,
        fallback=store.last_good(),
    )


def build_scorer(settings: Settings, model: LoadedModel) -> Scorer:
    notes = model.card.notes
    writer = ReasonWriter(
        settings.reasons,
        model.features,
        notes["reason_reference"],
        evidence=notes.get("reason_evidence"),  # None on a card trained before it was kept
    )
    return Scorer(
        model,
        settings.schema,
        writer,
        settings.playbook,
        settings.spec.risk_bands,
        abstain=settings.spec.abstain,
    )


def run_scoring(
    settings: Settings,
    *,
    store: SnapshotStore,
    switch: KillSwitch,
    registry: Registry,
    flags: FlagLog,
    load: Callable[[], LoadResult],
    now: dt.datetime,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Score the newest snapshot of every live account and publish it with its health; a
    healthy one's flags go to ``flags`` (the track record's log)."""
    spec = settings.spec
    checks: list[CheckResult] = []
    try:
        loaded = load()
    except ChurnbotError as exc:
        checks.append(CheckResult("input_validity", False, f"Input data unusable: {exc}"))
        return _trip(store, switch, checks, None)
    checks.append(
        check_input_validity(
            len(loaded.rejected_rows), loaded.total_rows, spec.health.max_reject_share
        )
    )
    try:  # one integrity check: the model loads, verified, and fits this configuration
        model = registry.load()
        scorer = build_scorer(settings, model)
    except ChurnbotError as exc:
        checks.append(integrity(str(exc)))
        return _trip(store, switch, checks, None)
    checks.append(integrity(None))
    schema = settings.schema
    rows = live_rows(loaded.frame, schema, loaded.unlisted)
    live = rows.frame
    if loaded.unlisted.turnover is not None:  # shared snapshots: the newest is complete
        checks.append(check_completeness(loaded.unlisted.turnover, spec.health.max_dropped_share))
    seen = first_seen(
        live, loaded.frame, id_column=schema.id_column, date_column=schema.date_column
    )
    scorer = scorer.with_first_seen(seen)
    if live.empty:
        checks.append(CheckResult("input_validity", False, "Input data has no live accounts"))
        return _trip(store, switch, checks, None)
    as_of = live[settings.schema.date_column].max().date()
    checks.append(check_freshness(as_of, now.date(), spec.health.max_data_age_days))

    previous = store.latest()
    # The previous book's risks, read once: for the drift check and each account's "change".
    before = store.risk_table(previous.snapshot_id) if previous else None
    # The features are built once for the bare predictions and the drift check together.
    features = scorer.features.build(live)
    risk = model.estimator.predict_proba(features)[:, 1]
    checks += drift_checks(
        model.card.notes["drift_reference"],
        features,
        risk,
        before.risks if before is not None and len(before.risks) else None,
        names=spec.health.drift_features,
        threshold=spec.health.psi_threshold,
    )
    checks.append(_accuracy(settings, scorer, loaded.frame))

    healthy = all(check.ok for check in checks)
    meta = SnapshotMeta(
        # To the millisecond: two runs of one model in one second (a scheduled run and one
        # by hand) are two snapshots, not a refused publish.
        snapshot_id=f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}-{model.card.version}",
        as_of=as_of.isoformat(),
        model_version=model.card.version,
        created_at=now.isoformat(),
        healthy=healthy,
        n_accounts=len(live),
        health=[check.to_dict() for check in checks],
    )
    # The store adds each account's previous risk ("change") from the previous snapshot.
    # The flags are tallied on the way (an unhealthy snapshot is never served: no flags).
    chunks = scorer.column_chunks(live, progress=progress)
    tally = FlagTally(meta, sample_size=spec.track_record.sample_size)
    store.publish(
        meta,
        scorer.codec().spec(),
        tally.watch(chunks) if healthy else chunks,
        previous=before,
        unlisted=_unlisted(rows),
    )
    if not healthy:
        return _trip(store, switch, checks, meta, rows.unlisted.message())
    _record_flags(flags, tally, settings, model)
    switch_now = switch.state()
    return RunResult(
        tuple(checks),
        meta,
        tripped=False,
        paused=switch_now if switch_now.on else None,
        unlisted_note=rows.unlisted.message(),
    )


def _unlisted(rows: LiveRows) -> UnlistedAccounts | None:
    """The accounts left out because the export no longer lists them, as the snapshot keeps
    them: `/churn` then says why such an account has no score instead of "no match"."""
    left_out = rows.unlisted
    if not len(left_out) or left_out.turnover is None:
        return None
    return UnlistedAccounts(
        newest=left_out.turnover.newest.isoformat(),
        ids=[str(account) for account in left_out.ids],
        names=rows.unlisted_names,
        last_listed=[str(day) for day in left_out.last_listed.tolist()],
    )


def _record_flags(flags: FlagLog, tally: FlagTally, settings: Settings, model: LoadedModel) -> None:
    """The snapshot is served by now: if Redis fails here, the track record misses one week
    rather than the run failing after its publish."""
    try:
        flags.record_tally(
            tally, spec=settings.spec, calibration=model.card.metrics.get("calibration", [])
        )
    except ChurnbotError as exc:
        log.warning(
            "snapshot %s left no flags for the track record: %s", tally.meta.snapshot_id, exc
        )


def _accuracy(settings: Settings, scorer: Scorer, frame: pd.DataFrame) -> CheckResult:
    sla = settings.spec.accuracy_sla
    rows, labels = known_outcome_rows(frame, settings.schema, settings.spec.horizon_days)
    value = sla_metric(sla.metric, labels, scorer.predict(rows)) if len(rows) else None
    churned = int(labels.sum())
    return check_accuracy_floor(sla.metric, value, sla.floor, len(rows), churned, sla.min_churned)
