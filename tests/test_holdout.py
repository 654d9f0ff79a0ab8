"""The optional holdout: deterministic by account id, off by default, set by an admin through
a signed `/churn-admin holdout` (audited), applied to a real digest, and recorded as the
control group with what the digest showed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.digest.claims import SlotClaims
from bot.digest.compose import DigestPlan
from bot.digest.exposures import Exposure, ExposureLog
from bot.digest.holdout import (
    DEFAULT_SALT,
    HoldoutConfig,
    HoldoutStore,
    is_held_out,
    load_holdout_config,
)
from bot.digest.slots import scheduled_slot
from bot.settings import load_settings
from models.errors import ConfigError
from tests.slack_harness import ADMIN, CONFIG, CSM, NOW, Harness, make_card, publish

pytestmark = pytest.mark.clock

EAST = "C0CSEAST01"
IDS = [f"ACC-{n:06d}" for n in range(10_000)]


def admin_command(h: Harness, text: str, user: str = ADMIN) -> str:
    response = h.sender.command(
        "/churn-admin", text, user_id=user, response_url=h.emulator.response_url("admin")
    )
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def test_held_out_is_a_stable_hash_of_the_account_id() -> None:
    held = {account for account in IDS if is_held_out(account, 0.1)}
    assert 0.09 < len(held) / len(IDS) < 0.11
    assert held == {account for account in IDS if is_held_out(account, 0.1)}  # every week
    smaller = {account for account in IDS if is_held_out(account, 0.05)}
    assert smaller < held  # raising the share only adds accounts
    assert not any(is_held_out(account, 0.0) for account in IDS)
    other = {account for account in IDS if is_held_out(account, 0.1, salt="another draw")}
    assert len(other & held) < len(held) / 2
    # Pinned: a change of the hash would silently swap the control group between releases.
    assert [a for a in IDS[:60] if is_held_out(a, 0.1, DEFAULT_SALT)] == PINNED


PINNED = [
    "ACC-000006",
    "ACC-000008",
    "ACC-000014",
    "ACC-000015",
    "ACC-000018",
    "ACC-000031",
    "ACC-000057",
]


def test_the_shipped_config_has_it_off_and_wrong_keys_are_named(tmp_path: Path) -> None:
    assert load_holdout_config(CONFIG) == HoldoutConfig()
    assert HoldoutConfig().share == 0
    assert load_holdout_config(tmp_path) == HoldoutConfig()  # no file: off
    (tmp_path / "holdout.yaml").write_text("shar: 0.1\n")
    with pytest.raises(ConfigError, match=r"holdout\.yaml: shar: unknown key"):
        load_holdout_config(tmp_path)
    (tmp_path / "holdout.yaml").write_text("share: 0.3\nmax_share: 0.2\n")
    with pytest.raises(ConfigError, match=r"share \(0\.3\) must not exceed max_share \(0\.2\)"):
        load_holdout_config(tmp_path)


def test_an_admin_sets_it_audited_and_others_cannot(harness: Harness) -> None:
    assert "Holdout OFF" in admin_command(harness, "holdout")
    refused = admin_command(harness, "holdout 0.1", user=CSM)
    assert "admins only" in refused
    assert "Holdout ON at 10% (was 0%)" in admin_command(harness, "holdout 10%")
    entry = harness.deps.audit.recent(1)[0]
    assert (entry.who, entry.what, entry.why, entry.outcome) == (ADMIN, "holdout", "10%", "done")
    assert entry.detail == {"share": 0.1, "previous": 0.0, "salt": DEFAULT_SALT}
    assert entry.when == NOW.isoformat()
    shown = admin_command(harness, "holdout")
    assert f"ON at 10% (set by <@{ADMIN}> on 2026-11-23 09:00 UTC)" in shown
    assert "at most 20%" in admin_command(harness, "holdout 0.5")
    assert harness.deps.audit.recent(1)[0].outcome == "refused"
    assert "Holdout OFF (was 10%)" in admin_command(harness, "holdout off")
    config = load_holdout_config(CONFIG)
    assert HoldoutStore(harness.deps.redis, prefix=harness.deps.prefix).current(config).share == 0


def test_a_digest_leaves_the_held_out_accounts_out_and_records_them(harness: Harness) -> None:
    cards = [
        make_card(f"ACC-{n:06d}", f"Account {n:04d}", 0.9 - n / 100, segment="smb")
        for n in range(30)
    ]
    publish(harness.deps, cards)
    admin_command(harness, "holdout 0.2")
    top10 = [card["account_id"] for card in cards[:10]]
    held = [account for account in top10 if is_held_out(account, 0.2)]
    assert held, "the test book must hold some of its top 10 out"
    admin_command(harness, "digest now cs-east")
    [post] = harness.emulator.wait_for(
        lambda c: c.method == "chat.postMessage" and c.body.get("channel") == EAST
    )
    [_report] = harness.emulator.wait_for("response_url")
    posted = json.dumps(post.body["blocks"])
    for account in held:
        assert f"Account {int(account[4:]):04d}" not in posted
    expected = [c["account_id"] for c in cards if not is_held_out(c["account_id"], 0.2)][:10]
    for account in expected:
        assert f"Account {int(account[4:]):04d}" in posted
    recorded = list(ExposureLog(harness.deps.redis, prefix=harness.deps.prefix).read())
    assert {e.account_id for _, _, e in recorded if e.held_out} == set(held)
    assert {e.account_id for _, _, e in recorded if not e.held_out} == set(expected)
    week, digest, first = recorded[0]
    assert (week.isoformat(), digest) == ("2026-11-23", "cs-east")
    assert (first.action, first.band, first.segment) == ("usage-drop", "high", "smb")


def test_without_a_holdout_a_digest_records_what_it_showed(harness: Harness) -> None:
    cards = [make_card(f"ACC-{n:06d}", f"Account {n:04d}", 0.5) for n in range(3)]
    publish(harness.deps, cards)
    admin_command(harness, "digest now cs-east")
    harness.emulator.wait_for("response_url")
    recorded = list(ExposureLog(harness.deps.redis, prefix=harness.deps.prefix).read())
    assert sorted(e.account_id for _, _, e in recorded) == [c["account_id"] for c in cards]
    assert not any(e.held_out for _, _, e in recorded)


def test_a_preview_leaves_the_held_out_accounts_out_too(harness: Harness) -> None:
    cards = [make_card(f"ACC-{n:06d}", f"Account {n:04d}", 0.9 - n / 100) for n in range(12)]
    publish(harness.deps, cards)
    admin_command(harness, "holdout 0.2")
    response = harness.sender.command(
        "/churn-admin",
        "digest now cs-east preview",
        user_id=ADMIN,
        response_url=harness.emulator.response_url("admin"),
    )
    previewed = json.dumps(response.json()["blocks"])
    assert "Account 0006" not in previewed  # ACC-000006 is held out at 20%
    assert "Account 0005" in previewed
    assert list(ExposureLog(harness.deps.redis, prefix=harness.deps.prefix).read()) == []


def test_start_up_names_a_wrong_key_in_either_file(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    (config / "holdout.yaml").write_text("share: 0.05\nsalt_: x\n")
    (config / "save_rate.yaml").write_text("min_unit: 5\n")
    with pytest.raises(ConfigError) as error:
        load_settings({"CHURNBOT_CONFIG": str(config)})
    assert "holdout.yaml: salt_: unknown key" in str(error.value)
    assert "save_rate.yaml: min_unit: unknown key" in str(error.value)
    (config / "holdout.yaml").write_text("share: 0.05\n")
    (config / "save_rate.yaml").write_text("min_units: 5\n")
    settings = load_settings({"CHURNBOT_CONFIG": str(config)})
    assert (settings.holdout.share, settings.save_rate.min_units) == (0.05, 5)


def test_a_resumed_digest_still_has_its_exposures(harness: Harness) -> None:
    """The stored plan keeps them, so a run that takes up a half-posted slot records them."""
    claims = SlotClaims(harness.deps.redis, prefix=harness.deps.prefix)
    slot = scheduled_slot("cs-east", EAST, ZoneInfo("UTC"), NOW)
    shown = Exposure.from_card(make_card("ACC-000001", "A", 0.8), snapshot_id="s1")
    held = Exposure.from_card(make_card("ACC-000006", "B", 0.7), snapshot_id="s1", held_out=True)
    plan = DigestPlan((), "s1", {"ACC-000001": 0.8}, None, exposures=(shown, held))
    claims.claim(slot, "token")
    claims.save_plan(slot, "token", plan, at=NOW, who="scheduler")
    stored = claims.record(slot)
    assert stored is not None
    assert stored.plan is not None
    assert stored.plan.exposures == (shown, held)
