"""Alerts that reach the owner: a direct message when an account jumps between digests.

After each scoring run publishes, every card is compared with the previous run (the card's
``previous_risk``): a rise of at least ``alerts.jump_points`` (config/channels.yaml), or an
entry into the high band, earns the account's owner one direct message. The rules:

* **for every snapshot, whoever published it**: the worker's scheduled scoring, or
  ``churnbot score`` run by hand or by a team's own scheduler. Each worker looks for a new
  snapshot every minute (:meth:`OwnerAlerts.run_new`), and the first to see one claims it in
  ``<prefix>:{alerts}:snapshot:<snapshot_id>``, so its cards are read by one worker, not by
  every worker every minute. Only the newest snapshot, if healthy and no older than the
  freshness SLA (a worker started long after a snapshot must not send its old news);

* **at most once per account per week** (Monday to Sunday, UTC, from the injected clock) and
  **exactly once across workers and restarts**: each send is fenced by ``SET NX`` on
  ``<prefix>:{alerts}:sent:<monday>:<account_id>``; the winner opens the DM
  (``conversations.open``), posts with the account and week in the message's metadata, and
  records the message's ``ts`` in the same key. A post Slack refused releases the claim
  (nothing was posted). A claim left without a ``ts`` for :data:`LEASE` (the sender died, or
  the post's answer was lost) is taken over by one later run (compare-and-set), which looks
  for the alert in the DM's history first and posts only if it is not there;
* **retried, not dropped, when Slack or the network fails for now**: a 429 (Slack rate-limits
  ``conversations.open``, so a morning with many jumps meets it), a server error or no answer
  ends the run, or marks the alert to retry, and the snapshot's claim is given back, so the
  next minute's run sends what is left (each alert still fenced on its own: nobody hears
  twice). Only an alert Slack refused for good (``cannot_dm_bot``, ``user_not_found``...) is
  not tried again for the snapshot;
* **never while the kill switch is on**: the scores may be wrong, and an alert is the one
  message nobody asked for;
* **muted on request**: ``/churn alerts off`` puts the Slack user in
  ``<prefix>:{alerts}:muted``; ``/churn alerts on`` takes them out;
* owners are emails in the data; the Slack user comes from config/slack.yaml's ``owners``,
  as for the digest's mentions. An owner with no Slack user gets no alert (counted, logged).

The card reading (``SnapshotStore.iter_cards``) is the store's public bulk read, so the store's
internals may change under it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.digest.channels import AlertsConfig
from bot.digest.sender import TRANSIENT_ERRORS
from bot.feedback.metrics import week_start
from bot.render.text import escape_mrkdwn
from bot.state.killswitch import KillSwitch
from bot.state.replies import text_set
from bot.state.store import translate_errors
from models.errors import ChurnbotError

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.state.snapshots import SnapshotStore  # numpy: loaded when alerts first read cards

log = logging.getLogger(__name__)

ALERT_EVENT = "churnbot_alert"
HIGH = "high"
#: How long a week's "sent" record is kept: past the week, so a late run cannot resend.
KEEP = dt.timedelta(days=14)
#: A claim older than this without a recorded send is taken over by the next run.
LEASE = dt.timedelta(minutes=10)
#: How long a worker holds a snapshot's alerts before another may take them over (it died).
RUN_LEASE = dt.timedelta(hours=1)
#: What a snapshot's claim says once its alerts ran (kept as long as a week's "sent" records).
DONE = "done"
#: How many recent messages of a DM are searched for an alert whose answer was lost.
HISTORY_LOOKBACK = 200
#: Outcomes of an alert Slack or the network failed for now; ``rate_limited`` also ends the
#: run (Slack asked to wait), and either gives the snapshot's claim back for the next run.
RETRY_LATER = "retry_later"
RATE_LIMITED = "rate_limited"
#: The state of an alert's claim whose send failed without saying whether Slack posted it.
IN_DOUBT = "in_doubt"
#: The outcomes of :meth:`OwnerAlerts.run` after which a snapshot's alerts are run again.
UNFINISHED = frozenset({"switch_on", "stopped", RETRY_LATER, RATE_LIMITED})
# Replaces a stale claim only if it is still the one read (two workers cannot both take over).
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""

MUTED = (
    "Alerts are off: churnbot will not send you direct messages when one of your accounts "
    "jumps. Your digests are unchanged. `/churn alerts on` turns them back on."
)
UNMUTED = (
    "Alerts are on: when one of your accounts jumps sharply or enters the high band between "
    "digests, churnbot sends you one direct message (at most once per account and week). "
    "`/churn alerts off` stops them."
)


@dataclass(frozen=True)
class Alert:
    """One account that moved enough to tell its owner."""

    account_id: str
    account_name: str
    owner: str
    risk: float
    previous_risk: float
    entered_high: bool
    reason: str | None
    action: str | None


def alerts_in(
    cards: Iterable[Mapping[str, Any]], *, jump: float, band_of: Callable[[float], str]
) -> Iterator[Alert]:
    """The cards that rose by at least ``jump`` since the previous run or entered the high
    band. A card without a previous risk (new account) or without a risk (not scored) is
    not a jump."""
    for card in cards:
        risk, previous = card.get("risk"), card.get("previous_risk")
        if risk is None or previous is None:
            continue
        entered_high = card.get("band") == HIGH and band_of(previous) != HIGH
        if risk - previous < jump and not entered_high:
            continue
        reasons = card.get("reasons") or []
        action = card.get("action") or {}
        yield Alert(
            account_id=str(card["account_id"]),
            account_name=str(card.get("account_name") or card["account_id"]),
            owner=str(card.get("owner") or ""),
            risk=float(risk),
            previous_risk=float(previous),
            entered_high=entered_high,
            reason=reasons[0].get("text") if reasons else None,
            action=action.get("action"),
        )


def alert_text(alert: Alert) -> str:
    """The direct message: what moved, why, what to do, and how to stop these messages."""
    name = escape_mrkdwn(alert.account_name)
    moved = (
        f"entered the high band: churn risk {alert.previous_risk:.0%} → {alert.risk:.0%}"
        if alert.entered_high
        else f"jumped from {alert.previous_risk:.0%} to {alert.risk:.0%} churn risk"
    )
    lines = [f"⚡ *{name}* {moved} since the previous scoring run."]
    if alert.reason:
        lines.append(f"Main reason: {escape_mrkdwn(alert.reason)}")
    if alert.action:
        lines.append(f"Suggested next step: {escape_mrkdwn(alert.action)}")
    lines.append(
        f"`/churn {escape_mrkdwn(alert.account_id)}` shows the card · "
        "`/churn alerts off` stops these messages."
    )
    return "\n".join(lines)


class AlertMutes:
    """Who turned alerts off (``/churn alerts off``): a Redis set of Slack user ids."""

    def __init__(self, r: redis.Redis, *, prefix: str) -> None:
        self._r = r
        self._key = f"{prefix}:{{alerts}}:muted"

    def choose(self, user: str, *, muted: bool) -> str:
        """Record the choice and say what it means."""
        with translate_errors(self._r):
            if muted:
                self._r.sadd(self._key, user)
            else:
                self._r.srem(self._key, user)
        return MUTED if muted else UNMUTED

    def muted(self) -> set[str]:
        with translate_errors(self._r):
            return text_set(self._r.smembers(self._key))


class OwnerAlerts:
    """Finds the accounts that jumped in a published snapshot and tells each owner once."""

    def __init__(
        self,
        *,
        redis: redis.Redis,
        prefix: str,
        store: SnapshotStore,
        switch: KillSwitch,
        config: AlertsConfig,
        band_of: Callable[[float], str],
        owner_users: Mapping[str, str],
        client: WebClient,
        clock: Callable[[], dt.datetime],
        fresh_for: dt.timedelta,
    ) -> None:
        self.config = config
        self._fresh_for = fresh_for
        self._r = redis
        self._root = f"{prefix}:{{alerts}}:"
        self._store = store
        self._switch = switch
        self._band_of = band_of
        self._owner_users = owner_users
        self._client = client
        self._clock = clock
        self._mutes = AlertMutes(redis, prefix=prefix)
        self._take_over = redis.register_script(_TAKE_OVER)

    def run(self, snapshot_id: str | None = None) -> Counter[str]:
        """Alert the owners of the accounts that jumped in ``snapshot_id`` (default: the
        latest). Returns how many alerts ended how (``sent``, ``reconciled``, ``already_sent``,
        ``muted``, ``no_slack_user``, ``failed`` (Slack refused it for good), ``retry_later``
        (a server error, no answer, or a send still in doubt within its lease);
        ``rate_limited``, ``switch_on`` or ``stopped`` once when a 429, the kill switch or Redis
        stopped the run, ``disabled`` when alerts are off). For the scheduler: errors are
        logged, never raised."""
        outcomes: Counter[str] = Counter()
        if not self.config.enabled:
            outcomes["disabled"] += 1
            return outcomes
        try:
            muted = self._mutes.muted()
            week = week_start(self._clock().astimezone(dt.UTC).date())  # Monday, UTC
            cards = self._store.iter_cards(snapshot_id=snapshot_id)
            for alert in alerts_in(cards, jump=self.config.jump, band_of=self._band_of):
                user = self._owner_users.get(alert.owner)
                if user is None:
                    log.info(
                        "no alert for %s: owner %r has no Slack user", alert.account_id, alert.owner
                    )
                    outcomes["no_slack_user"] += 1
                elif user in muted:
                    outcomes["muted"] += 1
                elif self._switch.state().on:  # read before every send, as for digest parts
                    log.info("owner alerts stopped: the kill switch is on")
                    outcomes["switch_on"] += 1
                    break
                else:
                    outcome = self._send_once(alert, user, week)
                    outcomes[outcome] += 1
                    if outcome == RATE_LIMITED:
                        log.info("owner alerts paused: Slack asked to wait (429)")
                        break
        except ChurnbotError as exc:
            log.error("owner alerts stopped: %s", exc)
            outcomes["stopped"] += 1
        if outcomes:
            log.info("owner alerts: %s", dict(outcomes))
        return outcomes

    def run_new(self) -> Counter[str] | None:
        """:meth:`run` on the newest snapshot, once across workers, whoever published it;
        None when there is nothing new to alert on: alerts off, no snapshot, an unhealthy one,
        one older than the freshness SLA, or one another run claimed. A run the kill switch,
        Redis or a 429 stopped, or with alerts to retry, gives its claim back, so a later call
        sends what is left (each alert is fenced on its own: nobody hears twice); a run that
        ended, even with alerts Slack refused for good, keeps it. What the worker calls every
        minute and after its own scoring run. Errors are logged, never raised."""
        if not self.config.enabled:  # nothing to read every minute
            return None
        try:
            meta = self._store.latest()
            if meta is None or not meta.healthy or not self._fresh(meta.created_at):
                return None
            key = f"{self._root}snapshot:{meta.snapshot_id}"
            with translate_errors(self._r):
                if not self._r.set(key, "running", nx=True, ex=int(RUN_LEASE.total_seconds())):
                    return None
            outcomes = self.run(meta.snapshot_id)
            with translate_errors(self._r):
                if UNFINISHED.intersection(outcomes):
                    self._r.delete(key)
                else:
                    self._r.set(key, DONE, ex=int(KEEP.total_seconds()))
        except ChurnbotError as exc:
            log.error("owner alerts not run: %s", exc)
            return Counter(stopped=1)
        return outcomes

    def _fresh(self, created_at: str) -> bool:
        """Whether a snapshot made at ``created_at`` is still news (within the SLA)."""
        created = dt.datetime.fromisoformat(created_at)
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        return self._clock() - created <= self._fresh_for

    def _send_once(self, alert: Alert, user: str, week: dt.date) -> str:
        """Claim, post, record; or take over a claim whose sender died (see the module)."""
        key = f"{self._root}sent:{week}:{alert.account_id}"
        now = self._clock()
        claim = json.dumps({"state": "claimed", "user": user, "at": now.isoformat()})
        keep = int(KEEP.total_seconds())
        with translate_errors(self._r):
            claimed = bool(self._r.set(key, claim, nx=True, ex=keep))
            held = None if claimed else self._r.get(key)
        if held is not None:
            if not _stale(held, now):  # sent, being sent, or in doubt until its lease ends
                return RETRY_LATER if json.loads(held).get("state") == IN_DOUBT else "already_sent"
            with translate_errors(self._r):
                if not self._take_over(keys=[key], args=[held, claim, keep]):
                    return "already_sent"  # another worker took it over first
        try:
            channel = str(self._client.conversations_open(users=user)["channel"]["id"])
            ts = None if held is None else self._posted_ts(channel, alert, week)
            outcome = "sent" if ts is None else "reconciled"
            if ts is None:
                ts = self._client.chat_postMessage(
                    channel=channel,
                    text=alert_text(alert),
                    metadata={"event_type": ALERT_EVENT, "event_payload": _payload(alert, week)},
                ).get("ts")
        except SlackApiError as exc:
            return self._refused(key, claim, alert, user, exc)
        except OSError as exc:  # no answer: it may have been posted
            log.error("alert for %s to %s may not have arrived: %s", alert.account_id, user, exc)
            self._in_doubt(key, claim)
            return RETRY_LATER
        sent = {**json.loads(claim), "state": "sent", "channel": channel, "ts": ts}
        with translate_errors(self._r):
            self._r.set(key, json.dumps(sent), ex=keep)
        return outcome

    def _refused(self, key: str, claim: str, alert: Alert, user: str, exc: SlackApiError) -> str:
        """What an error answer means for the alert's claim: a 429 or a refusal for good
        posted nothing (the claim is released); after a server error the alert may have been
        posted (:meth:`_in_doubt`)."""
        error = str(exc.response.get("error") or "")
        status = exc.response.status_code
        in_doubt = status >= 500 or error in TRANSIENT_ERRORS
        log.error("alert for %s to %s refused: %s (HTTP %s)", alert.account_id, user, error, status)
        if in_doubt:
            self._in_doubt(key, claim)
        else:
            with translate_errors(self._r):
                self._r.delete(key)
        if status == 429 or error == "ratelimited":
            return RATE_LIMITED
        return RETRY_LATER if in_doubt else "failed"

    def _in_doubt(self, key: str, claim: str) -> None:
        """Mark the alert's claim as one whose send may or may not have reached Slack: it
        stays until its lease ends (from the claim's time), then a later run looks in the DM
        before it posts; meanwhile every run says to retry, so the snapshot is looked at
        again."""
        doubt = json.dumps({**json.loads(claim), "state": IN_DOUBT})
        with translate_errors(self._r):
            self._r.set(key, doubt, ex=int(KEEP.total_seconds()))

    def _posted_ts(self, channel: str, alert: Alert, week: dt.date) -> str | None:
        """The ts of this week's alert for ``alert``'s account if an earlier attempt posted it
        (its answer lost), read from the DM's recent history by the message's metadata."""
        history = self._client.conversations_history(
            channel=channel, include_all_metadata=True, limit=HISTORY_LOOKBACK
        )
        wanted = _payload(alert, week)
        for message in history.get("messages") or []:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == ALERT_EVENT and (
                metadata.get("event_payload") == wanted
            ):
                return str(message["ts"])
        return None


def _payload(alert: Alert, week: dt.date) -> dict[str, str]:
    """What an alert message carries in its metadata: which account, which week."""
    return {"account_id": alert.account_id, "week": str(week)}


def _stale(held: bytes | str, now: dt.datetime) -> bool:
    """A claim never turned into "sent" within :data:`LEASE`: its sender died, or its post's
    answer was lost."""
    record = json.loads(held)
    claimed_at = dt.datetime.fromisoformat(record["at"])
    return record.get("state") in ("claimed", IN_DOUBT) and now - claimed_at >= LEASE


def build_alerts(deps: Deps, client: WebClient) -> OwnerAlerts:
    """The owner alerts of ``deps``' settings, store, switch and clock."""
    settings = deps.settings
    return OwnerAlerts(
        redis=deps.redis,
        prefix=deps.prefix,
        store=deps.store,
        switch=deps.switch,
        config=settings.channels.alerts,
        band_of=settings.spec.risk_bands.band,
        owner_users=settings.slack.owner_users,
        client=client,
        clock=deps.clock,
        fresh_for=dt.timedelta(hours=settings.spec.freshness_sla_hours),
    )
