"""config/channels.yaml: which digest goes to which channel, for whose accounts, and when.

Every digest is checked on its own and every problem is reported in one pass, each line naming
the file, the digest (number and name) and the key, e.g. ``config/channels.yaml: digest 2
(cs-west): timezone: unknown IANA time zone (got 'America/San_Fransisco')``. A schedule is
validated by building the very CronTrigger the worker will run, so what passes here runs there.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from models.config_files import format_validation_error, load_yaml_model
from models.errors import ConfigError

#: A digest name is part of Redis keys and job ids: short, lower-case, no separators.
DIGEST_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
SLACK_CHANNEL_ID = r"^[CG][A-Z0-9]{2,}$"
_CHANNEL_MENTION = re.compile(r"^<#([CG][A-Z0-9]{2,})(?:\|[^>]*)?>$")
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


#: The CronTrigger fields a schedule may set (``start_date``, ``jitter``... are not offered).
CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")


def _cron_trigger(schedule: str | Mapping[str, str | int], zone: ZoneInfo) -> CronTrigger:
    if isinstance(schedule, str):
        return CronTrigger.from_crontab(schedule, timezone=zone)
    unknown = sorted(set(schedule) - set(CRON_FIELDS))
    if unknown:
        raise ValueError(
            f"unknown cron field(s) {', '.join(unknown)}; expected some of {', '.join(CRON_FIELDS)}"
        )
    if not schedule:
        raise ValueError("give at least one cron field, e.g. {day_of_week: mon, hour: 9}")
    return CronTrigger(timezone=zone, **schedule)


def _check_schedule(cls: type, value: str | dict[str, str | int]) -> str | dict[str, str | int]:
    try:
        _cron_trigger(value, ZoneInfo("UTC"))
    except ValueError as exc:
        raise ValueError(f"not a valid cron schedule: {exc}") from None
    return value


def _check_zone(cls: type, value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(value, available_timezones(), n=1, cutoff=0.8)
        hint = f"did you mean {close[0]}?" if close else "expected e.g. America/New_York or UTC"
        raise ValueError(f"unknown IANA time zone {value!r}; {hint}") from None
    return value


class ScoringConfig(BaseModel):
    """When the worker scores the book (the ``scoring:`` section; default: daily)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    schedule: str | dict[str, str | int] = "0 5 * * *"
    timezone: str = "UTC"

    _valid_cron = field_validator("schedule")(_check_schedule)
    _known_zone = field_validator("timezone")(_check_zone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def trigger(self) -> CronTrigger:
        return _cron_trigger(self.schedule, self.zone)

    def describe(self) -> str:
        return f"{self.schedule} {self.timezone}"


class AlertsConfig(BaseModel):
    """When an account's owner gets a direct message between digests (the ``alerts:``
    section): after a scoring run, a risk rise of at least ``jump_points`` since the previous
    run, or an entry into the high band; once per account per week (bot/digest/alerts.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    jump_points: float = Field(default=20.0, gt=0, le=100)

    @property
    def jump(self) -> float:
        return self.jump_points / 100


class DigestConfig(BaseModel):
    """One scheduled digest: a channel, whose accounts, when, and how many."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=DIGEST_NAME)
    channel: str = Field(pattern=SLACK_CHANNEL_ID)
    title: str | None = Field(default=None, min_length=1, max_length=150)
    owners: tuple[NonEmpty, ...] = ()
    segments: tuple[NonEmpty, ...] = Field(default=(), validate_default=True)
    schedule: str | dict[str, str | int]
    timezone: str
    max_accounts: int = Field(default=10, ge=1, le=50)
    min_risk: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("segments")
    @classmethod
    def _whose(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not value and not info.data.get("owners"):
            raise ValueError("say whose accounts: give owners, segments or both")
        return value

    _valid_cron = field_validator("schedule")(_check_schedule)
    _known_zone = field_validator("timezone")(_check_zone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def heading(self) -> str:
        return self.title or f"Accounts at risk — {self.name}"

    def trigger(self) -> CronTrigger:
        """A fresh CronTrigger in the digest's own time zone (never the host's)."""
        return _cron_trigger(self.schedule, self.zone)


class ChannelsConfig(BaseModel):
    """Every digest, plus the rules they share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: How late a digest may still go out (after downtime); later, it is skipped and audited.
    grace_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    #: A change in risk of at least this many points since the channel's previous digest
    #: marks an account as "moved sharply".
    moved_sharply_points: float = Field(default=10.0, gt=0, le=100)
    #: When the worker scores the book, so scores stay within the freshness SLA.
    scoring: ScoringConfig = ScoringConfig()
    #: Direct messages to an account's owner when it jumps between digests.
    alerts: AlertsConfig = AlertsConfig()
    digests: tuple[DigestConfig, ...] = ()

    @property
    def grace_seconds(self) -> int:
        return self.grace_minutes * 60

    @property
    def moved_sharply(self) -> float:
        return self.moved_sharply_points / 100

    def by_name(self, name: str) -> DigestConfig | None:
        return next((d for d in self.digests if d.name == name), None)

    def find(self, reference: str) -> list[DigestConfig]:
        """Digests matching what an admin typed: a digest name, ``#name``, a channel id or a
        channel mention (``<#C0123|name>``). Several when one channel gets several digests."""
        ref = reference.strip()
        mention = _CHANNEL_MENTION.match(ref)
        if mention:
            ref = mention.group(1)
        named = self.by_name(ref.removeprefix("#"))
        if named is not None:
            return [named]
        return [d for d in self.digests if d.channel == ref]


class _File(BaseModel):
    """The top level of the file; each digest is validated apart, to name it in errors."""

    model_config = ConfigDict(extra="forbid")

    grace_minutes: Any = None
    moved_sharply_points: Any = None
    scoring: Any = None
    alerts: Any = None
    digests: list[Any] = Field(default_factory=list)


def load_channels(path: Path, *, segments: Collection[str] | None = None) -> ChannelsConfig:
    """Load config/channels.yaml; raise one ConfigError listing every problem.

    ``segments`` (from the account schema, when it loaded) makes an unknown segment an error
    instead of a digest that silently shows nobody.
    """
    top = load_yaml_model(path, _File)
    problems: list[str] = []
    digests: list[DigestConfig] = []
    for index, raw in enumerate(top.digests, start=1):
        name = raw.get("name", "unnamed") if isinstance(raw, dict) else "unnamed"
        where = f"{path}: digest {index} ({name})"
        try:
            digest = DigestConfig.model_validate(raw)
        except ValidationError as exc:
            problems.append(format_validation_error(where, exc, DigestConfig))
            continue
        unknown = sorted(set(digest.segments) - set(segments)) if segments is not None else []
        if unknown:
            problems.append(
                f"{where}: segments: unknown segment {', '.join(unknown)}; expected one of "
                f"{', '.join(sorted(segments or ()))}"
            )
        digests.append(digest)
    for name, count in sorted(Counter(d.name for d in digests).items()):
        if count > 1:
            problems.append(
                f"{path}: digests: the name {name!r} is used {count} times; names must be "
                "unique (they key the schedule and the exactly-once records)"
            )
    rules = {k: v for k, v in top.model_dump().items() if k != "digests" and v is not None}
    try:
        config = ChannelsConfig.model_validate({**rules, "digests": digests})
    except ValidationError as exc:
        problems.append(format_validation_error(str(path), exc, ChannelsConfig))
    if problems:
        raise ConfigError("\n".join(problems))
    return config
