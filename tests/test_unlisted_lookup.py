"""`/churn` on an account that the served snapshot's export no longer lists says so.

Such an account is not scored (``models.listing``; ``tests/test_listing.py``). Before, a CSM who
typed its name or id got "No account matches", as if it had never existed. Now the snapshot
keeps those accounts (id, name, the date each was last listed, and the export's newest date),
published by the same flip and read in the same Lua call as the lookup, only when no scored
account matches: a hit costs nothing more, a miss no more round trips.

Tried on the store (the real server and the embedded one), then end to end: a CRM report in
its own columns through ``init`` and ``train``, the real scoring run into the real Redis, and
signed ``/churn`` requests into the HTTP app; then a later run held back by its health checks,
with the kill switch serving the last good snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
import yaml

from bot.app import build_app
from bot.cli.data_source import load_accounts
from bot.cli.score import scoring_rows
from bot.deps import build_deps
from bot.emulator import SlackEmulator
from bot.emulator.sender import SlackSender
from bot.feedback.track_record import flag_log
from bot.lookup import resolve
from bot.loopback import LoopbackServer
from bot.publish import RunResult, run_scoring
from bot.settings import Settings, load_settings
from bot.state import KillSwitch, SnapshotMeta, SnapshotStore, card_json
from bot.state.snapshots import UnlistedAccounts, cards_as_chunks
from bot.web import build_wsgi
from models.registry import Registry
from tests.cli_run import run
from tests.exports import crm_report
from tests.slack_harness import CSM, SECRET, make_card
from tests.test_web_lookup_bounds import CountingConnection

BOOK = [
    make_card("ACC-1", "Acme Corp", 0.81),
    make_card("ACC-2", "Northwind Traders", 0.42),
]
GONE = UnlistedAccounts(
    newest="2026-11-23",
    ids=["ACC-9", "ACC-8", "ACC-7"],
    names=["Globex Ltd", "Northwind Traders", "Globex Partners"],
    last_listed=["2026-11-16", "2026-11-09", "2026-11-02"],
)


def meta(sid: str, n: int, *, healthy: bool = True) -> SnapshotMeta:
    return SnapshotMeta(
        snapshot_id=sid,
        as_of="2026-11-23",
        model_version="20261123-abcdef0123",
        created_at="2026-11-23T09:00:00+00:00",
        healthy=healthy,
        n_accounts=n,
    )


def publish(store: SnapshotStore, sid: str, unlisted: UnlistedAccounts | None) -> None:
    store.publish(
        meta(sid, len(BOOK)), card_json.SPEC, cards_as_chunks(BOOK, 100), unlisted=unlisted
    )


def test_the_store_keeps_the_unlisted_accounts_with_their_snapshot(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, prefix=key_prefix, retention=1)
    publish(store, "s1", GONE)

    by_id = store.lookup("acc-9", limit=10)
    assert by_id.by_id is None
    assert by_id.matches == []
    assert [row.account_name for row in by_id.unlisted] == ["Globex Ltd"]
    assert by_id.unlisted[0].last_listed == "2026-11-16"
    assert by_id.unlisted_by_id
    assert by_id.export_newest == "2026-11-23"
    assert by_id.close == [], "no 'did you mean' is read when an unlisted account matches"
    assert [row.account_id for row in store.lookup("globex", limit=10).unlisted] == [
        "ACC-9",
        "ACC-7",
    ]
    # A scored account of that name wins: the unlisted ones are not even read.
    live = store.lookup("northwind traders", limit=10)
    assert [row.account_id for row in live.matches] == ["ACC-2"]
    assert live.unlisted == []
    assert live.export_newest is None
    nothing = store.lookup("Initech", limit=10, probes=["initech"])
    assert nothing.unlisted == []
    assert not nothing.unlisted_by_id

    # The next snapshot lists everyone: nothing unlisted, and the first one's keys are gone
    # with it (retention 1), the unlisted accounts' included.
    publish(store, "s2", None)
    assert store.lookup("acc-9", limit=10).unlisted == []
    assert list(redis_client.scan_iter(match=f"{key_prefix}:*snap:s1:*", count=1000)) == []
    assert list(redis_client.scan_iter(match=f"{key_prefix}:*snap:s2:u:*", count=1000)) == []


def test_a_miss_that_finds_an_unlisted_account_costs_one_round_trip(
    real_redis: redis.Redis, real_prefix: str
) -> None:
    kwargs = real_redis.connection_pool.connection_kwargs
    pool = redis.ConnectionPool(
        connection_class=CountingConnection,
        **{k: kwargs[k] for k in ("host", "port", "db", "decode_responses", "protocol")},
    )
    client = redis.Redis(connection_pool=pool)
    try:
        store = SnapshotStore(client, prefix=real_prefix)
        switch = KillSwitch(client, prefix=real_prefix)
        many = UnlistedAccounts(
            "2026-11-23",
            [f"OLD-{i}" for i in range(3_000)],
            [f"Former {i} Group" for i in range(3_000)],
            ["2026-11-16"] * 3_000,
        )
        publish(store, "s1", many)
        store.latest()  # the layout is read once per process
        for text, kind in (
            ("old-2999", "unlisted"),
            ("former 42 group", "unlisted"),
            ("acme corp", "card"),
            ("initech", "none"),
        ):
            sent = CountingConnection.sent
            found = resolve(store, text, switch_key=switch.key)
            assert (found.kind, CountingConnection.sent - sent) == (kind, 1), text
        found = resolve(store, "former", switch_key=switch.key)
        assert found.kind == "unlisted"
        assert found.at_least
    finally:
        client.close()


# --- end to end ------------------------------------------------------------------------------


def on(day: dt.date) -> str:
    return f"{day:%m/%d/%Y}"


def run_at(settings: Settings, deps: Any, export: Path, now: dt.datetime) -> RunResult:
    """The scoring run `churnbot score` and the worker run, at a time of the test's."""
    return run_scoring(
        settings,
        store=deps.store,
        switch=deps.switch,
        registry=Registry(settings.paths.registry),
        flags=flag_log(deps),
        load=lambda: load_accounts(settings, export, "file", rows=scoring_rows(settings))[0],
        now=now,
    )


def answer(sender: SlackSender, text: str) -> tuple[str, str]:
    """The notification text and every text of the blocks of a signed `/churn` answer."""
    response = sender.command("/churn", text, user_id=CSM)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["response_type"] == "ephemeral"
    return body["text"], json.dumps(body["blocks"], ensure_ascii=False)


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    with SlackEmulator() as running:
        yield running


@pytest.mark.usefixtures("empty_embedded_store")
def test_churn_says_an_account_the_export_no_longer_lists_has_no_score(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    real_redis: redis.Redis,
    emulator: SlackEmulator,
) -> None:
    report = crm_report(accounts=400, weeks=40, seed=5)
    newest = max(dt.datetime.strptime(d, "%m/%d/%Y").date() for d in report["Report Date"])
    listed = report.loc[report["Report Date"] == on(newest), "Account ID"].drop_duplicates()
    gone, twin, live_twin = listed.iloc[0], listed.iloc[1], listed.iloc[2]
    # Both no longer in the last report, no "Y" recorded; the twin shares a scored account's
    # name (a duplicate record the CRM deleted).
    shared = report.loc[report["Account ID"] == live_twin, "Account Name"].iloc[0]
    report.loc[report["Account ID"] == twin, "Account Name"] = shared
    report = report[
        ~(report["Account ID"].isin([gone, twin]) & (report["Report Date"] == on(newest)))
    ]
    gone_name = report.loc[report["Account ID"] == gone, "Account Name"].iloc[0]
    last_listed = newest - dt.timedelta(weeks=2)
    export = tmp_path / "crm.csv"
    report.to_csv(export, index=False)

    config, var = tmp_path / "config", tmp_path / "var"
    monkeypatch.setenv("CHURNBOT_VAR", str(var))
    monkeypatch.delenv("REDIS_URL", raising=False)
    code, out, err = run("init", "--data", str(export), "--config", str(config))
    assert code == 0, out + err
    # Fresh for 30 days, whatever day the test runs (init counts from today).
    product = yaml.safe_load((config / "product.yaml").read_text())
    product["health"]["max_data_age_days"] = 30
    (config / "product.yaml").write_text(yaml.safe_dump(product, sort_keys=False))
    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))
    code, out, err = run("train", "--data", str(export))
    assert code == 0, out + err

    settings = load_settings(
        {
            "CHURNBOT_CONFIG": str(config),
            "CHURNBOT_VAR": str(var),
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": emulator.token,
            "SLACK_API_URL": emulator.base_url,
        }
    )
    now = dt.datetime.combine(newest + dt.timedelta(days=1), dt.time(9), tzinfo=dt.UTC)
    prefix = f"test-{uuid.uuid4().hex}"
    deps = build_deps(settings, client=real_redis, prefix=prefix, clock=lambda: now)
    try:
        result = run_at(settings, deps, export, now)
        assert result.healthy, result.failures
        assert result.unlisted_note is not None
        assert gone in result.unlisted_note

        with LoopbackServer(build_wsgi(build_app(deps), deps)) as server:
            sender = SlackSender(server.url, SECRET)
            expected = (
                f"*{gone_name}* ({gone}) is not in the newest export (dated {newest}; last "
                f"listed {last_listed}), so it has no score. If it is still a customer, check "
                "the export; if it left, nothing to do."
            )
            for typed in (gone_name, gone_name.upper(), gone.upper()):
                text, blocks = answer(sender, typed)
                assert text == f"{gone_name} is not in the newest export", typed
                assert expected in blocks, typed
                assert "No account matches" not in blocks

            # Unknown entirely: the usual "no match".
            text, blocks = answer(sender, "Initech Holdings")
            assert text == "No account matches"
            assert "No account matches 'Initech Holdings'" in blocks
            assert "export" not in blocks

            # A name both a scored account and an unlisted one bear: the scored one's card.
            text, blocks = answer(sender, shared)
            assert text.startswith(f"{shared}: "), text
            assert "churn risk" in text, text
            assert live_twin in blocks
            assert twin not in blocks
            assert "not in the newest export" not in blocks
            # The twin by its id: it is the unlisted one.
            text, blocks = answer(sender, twin)
            assert f"({twin}) is not in the newest export" in blocks

            # A later report lists both again, but its run is held back (its data is stale by
            # the time it runs): the kill switch serves the last good snapshot, whose export
            # did not list them, and the answer says so of that export.
            later = newest + dt.timedelta(weeks=2)
            last_rows = report.drop_duplicates("Account ID", keep="last")
            again = last_rows[last_rows["Churned?"] == "N"].assign(**{"Report Date": on(later)})
            pd.concat([report, again]).to_csv(export, index=False)
            stale = now + dt.timedelta(days=60)
            held = run_at(settings, deps, export, stale)
            assert held.tripped
            assert held.unlisted_note is None
            latest = deps.store.latest()
            assert latest is not None
            assert latest.as_of == later.isoformat()
            assert deps.store.card(gone) is not None, "the held-back snapshot scored it"
            text, blocks = answer(sender, gone)
            assert text.startswith(f"{gone_name} is not in the export these scores come from")
            assert (
                f"*{gone_name}* ({gone}) is not in the export these scores come from (dated "
                f"{newest}; last listed {last_listed})"
            ) in blocks
            assert "live scores are paused" in blocks
            sender.close()
    finally:
        deps.background.shutdown(wait=True)
        stored = list(real_redis.scan_iter(match=f"{prefix}:*", count=1000))
        if stored:
            real_redis.unlink(*stored)
