"""config/channels.yaml and schedules: errors that name file, digest and key; time zones and
daylight saving computed with a controllable "now" (pure functions, no clock, no sleep)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.digest.channels import DigestConfig, load_channels
from bot.digest.slots import (
    describe,
    due_fire_time,
    fire_times,
    manual_slot,
    next_fire_time,
    period_key,
    scheduled_slot,
)
from bot.settings import check_config_folder, load_settings
from models.errors import ConfigError

pytestmark = pytest.mark.clock

CONFIG = Path(__file__).resolve().parent.parent / "config"
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def digest(**overrides: object) -> DigestConfig:
    fields: dict[str, object] = {
        "name": "cs-east",
        "channel": "C0CSEAST01",
        "owners": ["maria.lopez@example.com"],
        "schedule": "0 9 * * mon",
        "timezone": "America/New_York",
    }
    return DigestConfig.model_validate({**fields, **overrides})


@pytest.fixture
def channels_file(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    return target / "channels.yaml"


def write_digests(path: Path, digests: list[dict[str, object]], **top: object) -> None:
    path.write_text(yaml.safe_dump({**top, "digests": digests}, allow_unicode=True))


# --- config ---------------------------------------------------------------------------------


def test_bundled_channels_are_valid_and_loaded_with_the_settings() -> None:
    settings = load_settings({"CHURNBOT_CONFIG": str(CONFIG)})
    names = [d.name for d in settings.channels.digests]
    assert names == ["cs-east", "cs-west", "enterprise"]
    assert settings.channels.grace_seconds == 7200
    east = settings.channels.by_name("cs-east")
    assert east is not None
    assert str(east.trigger().timezone) == "America/New_York"
    west = settings.channels.by_name("cs-west")
    assert west is not None
    assert str(west.trigger()) == "cron[day_of_week='mon', hour='9', minute='0']"


def test_every_problem_names_file_digest_and_key_in_one_pass(channels_file: Path) -> None:
    write_digests(
        channels_file,
        [
            {**digest().model_dump(), "timezone": "America/New_Yrok"},
            {**digest().model_dump(), "name": "cs-west", "schedule": "61 9 * * mon"},
            {**digest().model_dump(), "name": "bad-channel", "channel": "#cs-east"},
            {**digest().model_dump(exclude={"segments"}), "name": "nobody", "owners": []},
            {**digest().model_dump(), "name": "seg", "owners": [], "segments": ["startups"]},
            {**digest().model_dump(), "name": "fields", "schedule": {"hour": 9, "dow": "mon"}},
            {**digest().model_dump(), "name": "dup"},
            {**digest().model_dump(), "name": "dup"},
        ],
    )
    problems, _ = check_config_folder(channels_file.parent)
    assert len(problems) == 1, "channels.yaml reports as one block"
    lines = problems[0].splitlines()
    path = str(channels_file)
    expected = [
        f"{path}: digest 1 (cs-east): timezone: unknown IANA time zone 'America/New_Yrok'; "
        "did you mean America/New_York?",
        f"{path}: digest 2 (cs-west): schedule: not a valid cron schedule",
        f"{path}: digest 3 (bad-channel): channel: String should match pattern",
        f"{path}: digest 4 (nobody): segments: say whose accounts",
        f"{path}: digest 5 (seg): segments: unknown segment startups; expected one of",
        f"{path}: digest 6 (fields): schedule: not a valid cron schedule: "
        "unknown cron field(s) dow",
        f"{path}: digests: the name 'dup' is used 2 times",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), (start, lines)
    assert "(61)" in problems[0], "the bad cron value is shown"


def test_load_settings_refuses_a_bad_channels_file(channels_file: Path) -> None:
    write_digests(channels_file, [{**digest().model_dump(), "timezone": "Mars/Olympus"}])
    with pytest.raises(ConfigError, match=r"digest 1 \(cs-east\): timezone: .*Mars/Olympus"):
        load_settings({"CHURNBOT_CONFIG": str(channels_file.parent)})


def test_unknown_top_level_key_and_bad_grace(channels_file: Path) -> None:
    write_digests(channels_file, [digest().model_dump()], grace_minutes=0, graze=1)
    with pytest.raises(ConfigError) as caught:
        load_channels(channels_file)
    assert "channels.yaml: graze: unknown key" in str(caught.value)


def test_find_by_name_hash_id_and_mention() -> None:
    settings = load_settings({"CHURNBOT_CONFIG": str(CONFIG)})
    channels = settings.channels
    for reference in (
        "cs-east",
        "#cs-east",
        "C0CSEAST01",
        "<#C0CSEAST01|cs-east>",
        "<#C0CSEAST01>",
    ):
        assert [d.name for d in channels.find(reference)] == ["cs-east"], reference
    assert channels.find("nope") == []


# --- schedules, time zones and daylight saving ---------------------------------------------


def test_same_local_time_in_three_zones_fires_at_three_instants() -> None:
    after, until = utc(2026, 11, 22), utc(2026, 11, 24)
    firsts = {
        zone: fire_times(digest(timezone=zone).trigger(), after, until)[0]
        for zone in ("America/New_York", "Europe/Paris", "Asia/Tokyo")
    }
    assert firsts == {
        "America/New_York": utc(2026, 11, 23, 14),
        "Europe/Paris": utc(2026, 11, 23, 8),
        "Asia/Tokyo": utc(2026, 11, 23, 0),
    }


def test_weekly_new_york_digest_keeps_local_time_across_spring_forward() -> None:
    trigger = digest().trigger()  # Mondays 09:00 America/New_York
    times = fire_times(trigger, utc(2026, 3, 1), utc(2026, 3, 17))
    assert times == [utc(2026, 3, 2, 14), utc(2026, 3, 9, 13), utc(2026, 3, 16, 13)]
    assert {period_key(t, NEW_YORK)[-5:] for t in times} == {"09:00"}


def test_spring_forward_skipped_time_runs_an_hour_later_once() -> None:
    trigger = digest(schedule="30 2 * * *").trigger()
    times = fire_times(trigger, utc(2026, 3, 7), utc(2026, 3, 10))
    assert [period_key(t, NEW_YORK) for t in times] == [
        "2026-03-07T02:30",
        "2026-03-08T03:30",  # 02:30 does not exist that day: APScheduler runs it at 03:30
        "2026-03-09T02:30",
    ]
    # Asked from inside the skipped hour, the run still belongs to that day.
    assert due_fire_time(trigger, utc(2026, 3, 8, 8), dt.timedelta(hours=1)) == utc(
        2026, 3, 8, 7, 30
    )
    assert next_fire_time(trigger, utc(2026, 3, 8, 7)) == utc(2026, 3, 8, 7, 30)


def test_fall_back_repeated_time_fires_twice_into_one_period() -> None:
    trigger = digest(schedule="30 1 * * *").trigger()
    times = fire_times(trigger, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))
    assert times == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 6, 30)]
    keys = [period_key(t, NEW_YORK) for t in times]
    assert keys == ["2026-11-01T01:30", "2026-11-01T01:30", "2026-11-02T01:30"]
    assert describe(times[0], NEW_YORK) == "Sun 01 Nov 01:30 EDT"
    assert describe(times[1], NEW_YORK) == "Sun 01 Nov 01:30 EST"
    # The walk does not get stuck at the boundary (APScheduler 3.11.0 looped forever there).
    assert next_fire_time(trigger, times[1]) == times[2]


def test_due_fire_time_within_and_beyond_the_grace_window() -> None:
    trigger = digest().trigger()
    due = utc(2026, 11, 23, 14)
    grace = dt.timedelta(hours=2)
    assert due_fire_time(trigger, due, grace) == due
    assert due_fire_time(trigger, due + dt.timedelta(minutes=119), grace) == due
    assert due_fire_time(trigger, due + dt.timedelta(minutes=121), grace) is None
    assert due_fire_time(trigger, due - dt.timedelta(seconds=1), grace) is None


def test_slots_key_channel_and_period() -> None:
    slot = scheduled_slot("cs-east", "C0CSEAST01", NEW_YORK, utc(2026, 11, 23, 14))
    assert slot.id == "C0CSEAST01:2026-11-23T09:00"
    now = manual_slot("cs-east", "C0CSEAST01", NEW_YORK, utc(2026, 11, 23, 15, 7, 42))
    assert now.id == "C0CSEAST01:now-2026-11-23T10:07"
    assert now.manual
    with pytest.raises(ValueError, match="aware datetime"):
        period_key(dt.datetime(2026, 11, 23, 14), NEW_YORK)
