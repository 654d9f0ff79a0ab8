"""Accounts an export of shared snapshots stops listing are not scored, and the run says so.

Before, an account dropped from a CRM's weekly report without a churn date kept its last row
as its newest and was scored on it for ever, a lost customer in the digests with a risk from
weeks before. The rule (``models.listing``) is tried on its own on tables of each shape, then
end to end on a CRM report in its own columns: ``init``, ``train`` and ``churnbot score``
through the CLI, and the scoring run into the real Redis.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis

from bot.cli.score import score_book
from bot.deps import build_deps
from bot.feedback.track_record import flag_log
from bot.settings import load_settings
from models.health import check_completeness
from models.listing import NAMED, Turnover, unlisted
from tests.cli_run import run
from tests.exports import crm_report

START = np.datetime64("2026-01-05", "D")


def keys(rows: list[tuple[str, np.datetime64]]) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    codes, ids = pd.factorize(pd.Series([account for account, _ in rows]))
    dates = np.array([day for _, day in rows], dtype="datetime64[ns]")
    return codes, dates, pd.Index(ids)


def weekly(accounts: int, weeks: int, *, stop: dict[str, int] | None = None) -> list:
    """Every account on every weekly snapshot, except those in ``stop`` (account -> the
    number of weeks it is listed)."""
    stop = stop or {}
    return [
        (f"A{a}", START + 7 * week)
        for a in range(accounts)
        for week in range(stop.get(f"A{a}", weeks))
    ]


def test_an_account_missing_from_the_newest_snapshot_is_unlisted() -> None:
    found = unlisted(*keys(weekly(40, 10, stop={"A3": 9, "A7": 4})))
    assert found.turnover is not None
    assert found.turnover.newest == (START + 63).astype(dt.date)
    assert dict(zip(found.ids, found.last_listed.tolist(), strict=True)) == {
        "A3": (START + 56).astype(dt.date),
        "A7": (START + 21).astype(dt.date),
    }
    message = found.message()
    assert message is not None
    assert message.startswith("2 account(s) not scored: the newest snapshot (2026-03-09)")
    assert "A3 (last listed 2026-03-02), A7 (last listed 2026-01-26)" in message


def test_month_end_snapshots_of_uneven_months_are_shared_snapshots() -> None:
    ends = [np.datetime64(f"2026-{month:02d}", "M") + 1 for month in range(2, 12)]
    month_ends = [end.astype("datetime64[D]") - 1 for end in ends]
    rows = [(f"A{a}", day) for a in range(30) for day in month_ends if a != 5 or day < ends[-2]]
    found = unlisted(*keys(rows))
    assert list(found.ids) == ["A5"]


def test_accounts_on_their_own_dates_are_all_listed() -> None:
    # Each account on its own weekday, and one quiet for a month: it may only be quiet.
    rows = [
        (f"A{a}", START + 7 * week + a % 7)
        for a in range(70)
        for week in range(10 if a != 4 else 6)
    ]
    assert len(unlisted(*keys(rows))) == 0


@pytest.mark.parametrize(
    "rows",
    [
        [(f"A{a}", START) for a in range(50)],  # one snapshot
        [(f"A{a}", START + a) for a in range(50)],  # one row each, on its own date
        [],
    ],
    ids=["one-snapshot", "one-row-each", "empty"],
)
def test_without_shared_snapshots_nothing_is_unlisted(rows: list) -> None:
    found = unlisted(*keys(rows))
    assert len(found) == 0
    assert found.message() is None
    assert found.turnover is None


@pytest.mark.parametrize(
    "rows",
    [
        [*weekly(30, 8), ("A1", START + 400)],  # one stray date long after the rest
        [(f"A{a}", START + 7 * week) for a in range(30) for week in range(8 if a < 9 else 7)],
    ],
    ids=["stray-date", "cut-short"],
)
def test_a_newest_snapshot_after_shared_ones_that_lists_few_is_cut_short(rows: list) -> None:
    """Nobody is taken for unlisted on its word, and the turnover says what is missing (the
    completeness check then holds the scores back)."""
    found = unlisted(*keys(rows))
    assert len(found) == 0
    assert found.turnover is not None
    assert found.turnover.before == 30
    assert found.turnover.kept in (1, 9)
    assert found.turnover.missing_share > 0.5


def two_dates(first: range, newest: range) -> list:
    """Accounts ``first`` on one date and ``newest`` a week later, and no other date."""
    return [(f"A{a}", START) for a in first] + [(f"A{a}", START + 7) for a in newest]


def test_a_second_of_only_two_snapshots_that_lists_few_is_cut_short() -> None:
    """Before, a table of two dates whose newest lists under half of the first was taken for
    accounts on dates of their own: nothing dropped, nothing checked, the short export
    scored. Every account the newest lists was on the first: a snapshot cut short."""
    found = unlisted(*keys(two_dates(range(40), range(12))))
    assert len(found) == 0
    assert found.turnover == Turnover(dt.date(2026, 1, 12), dt.date(2026, 1, 5), 40, 12, new=0)
    failed = check_completeness(found.turnover, 0.2)
    assert not failed.ok
    assert failed.message == (
        "Input incomplete: the newest snapshot (2026-01-12) lists 12 of the 40 accounts the one "
        "before it (2026-01-05) listed (70.0% missing > 20.0%: health.max_dropped_share in "
        "product.yaml); the export looks cut short (the table has only these two dates, and "
        "every account the newest lists is on 2026-01-05 too: it is read as a second "
        "snapshot, not as accounts observed on dates of their own)"
    )


def test_a_cut_short_second_snapshot_may_list_a_few_new_accounts() -> None:
    # The week's new sign-ups made it into the rows the export wrote before it stopped.
    found = unlisted(*keys(two_dates(range(40), [*range(12), 40, 41])))
    assert found.turnover == Turnover(dt.date(2026, 1, 12), dt.date(2026, 1, 5), 40, 12, new=2)
    message = check_completeness(found.turnover, 0.2).message
    assert "12 of the 14 accounts the newest lists are on 2026-01-05 too" in message


@pytest.mark.parametrize(
    "rows",
    [
        [(f"A{a}", START + 7 * (a % 2)) for a in range(40)],  # each account on one of two days
        [(f"A{a}", START + 7 * (a >= 30)) for a in range(40)],  # most of them on the first
        two_dates(range(30), range(26, 40)),  # the newest lists mostly accounts of its own
    ],
    ids=["half-and-half", "most-on-the-first", "mostly-new"],
)
def test_two_dates_of_accounts_on_their_own_dates_are_not_cut_short(rows: list) -> None:
    found = unlisted(*keys(rows))
    assert len(found) == 0
    assert found.turnover is None


def test_two_full_snapshots_keep_the_plain_turnover() -> None:
    found = unlisted(*keys(two_dates(range(40), range(2, 40))))
    assert found.turnover == Turnover(dt.date(2026, 1, 12), dt.date(2026, 1, 5), 40, 38)
    assert found.turnover.new is None
    assert sorted(found.ids) == ["A0", "A1"]


def test_the_completeness_check_holds_back_a_snapshot_that_lost_too_many() -> None:
    found = unlisted(*keys(weekly(40, 10, stop={"A3": 9, "A7": 9})))
    assert found.turnover == Turnover(dt.date(2026, 3, 9), dt.date(2026, 3, 2), 40, 38)
    passed = check_completeness(found.turnover, 0.2)
    assert passed.ok
    assert passed.message == (
        "The newest snapshot (2026-03-09) lists 38 of the 40 accounts the one before it "
        "(2026-03-02) listed"
    )
    assert passed.value == pytest.approx(0.05)
    failed = check_completeness(found.turnover, 0.04)
    assert not failed.ok
    assert failed.message == (
        "Input incomplete: the newest snapshot (2026-03-09) lists 38 of the 40 accounts the one "
        "before it (2026-03-02) listed (5.0% missing > 4.0%: health.max_dropped_share in "
        "product.yaml); the export looks cut short"
    )


def test_unreadable_rows_are_ignored_and_a_message_names_a_few() -> None:
    codes, dates, ids = keys(weekly(40, 6, stop={f"A{a}": 5 for a in range(10, 20)}))
    codes[0], dates[1] = -1, np.datetime64("NaT")  # an id and a date that cannot be read
    found = unlisted(codes, dates, ids)
    assert sorted(found.ids) == sorted(f"A{a}" for a in range(10, 20))
    message = found.message()
    assert message is not None
    assert f"and {10 - NAMED:,} more" in message


@pytest.mark.usefixtures("empty_embedded_store")
def test_a_crm_report_scores_only_the_accounts_its_newest_report_lists(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    real_redis: redis.Redis,
) -> None:
    report = crm_report(accounts=600, weeks=40, seed=3)
    newest = report["Report Date"].map(lambda d: dt.datetime.strptime(d, "%m/%d/%Y")).max()
    on_newest = report["Report Date"] == f"{newest:%m/%d/%Y}"
    listed = report.loc[on_newest, "Account ID"].drop_duplicates()
    dropped = listed.iloc[:6].tolist()  # no longer in the last two reports, no "Y" recorded
    malformed = listed.iloc[6]  # its newest row is rejected: still listed, scored a report back
    last_two = report["Report Date"].isin(
        [f"{newest:%m/%d/%Y}", f"{newest - dt.timedelta(weeks=2):%m/%d/%Y}"]
    )
    report = report[~(report["Account ID"].isin(dropped) & last_two)].copy()
    report.loc[on_newest & (report["Account ID"] == malformed), "MRR"] = "$twelve"
    export = tmp_path / "crm.csv"
    report.to_csv(export, index=False)
    config, var = tmp_path / "config", tmp_path / "var"
    monkeypatch.setenv("CHURNBOT_VAR", str(var))
    monkeypatch.delenv("REDIS_URL", raising=False)
    code, out, err = run("init", "--data", str(export), "--config", str(config))
    assert code == 0, out + err
    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))
    code, out, err = run("train", "--data", str(export))
    assert code == 0, out + err

    # What a user reads: the CLI's run (the embedded store) says who was left out and why.
    code, out, err = run("score", "--data", str(export))
    assert code == 0, out + err
    said = " ".join(err.split())
    assert "6 account(s) not scored: the newest snapshot" in said
    assert sum(account in said for account in dropped) == NAMED
    assert f"and {len(dropped) - NAMED} more" in said
    assert malformed not in said

    # What reaches Slack: the snapshot in the real Redis holds none of them.
    settings = load_settings({"CHURNBOT_CONFIG": str(config), "CHURNBOT_VAR": str(var)})
    prefix = f"test-{uuid.uuid4().hex}"
    deps = build_deps(settings, client=real_redis, prefix=prefix)
    try:
        result = score_book(settings, deps.store, deps.switch, flags=flag_log(deps), data=export)
        assert result.healthy, result.failures
        assert result.snapshot is not None
        live = report.drop_duplicates("Account ID", keep="last")
        still = live[live["Churned?"] == "N"]["Account ID"]
        assert result.snapshot.n_accounts == len(still) - len(dropped)
        for account in dropped:
            assert deps.store.card(account) is None
        kept = deps.store.card(malformed)
        assert kept is not None
        previous = newest - dt.timedelta(weeks=2)
        assert kept["as_of"] == f"{previous:%Y-%m-%d}"
        completeness = [check for check in result.checks if check.name == "completeness"]
        assert [check.ok for check in completeness] == [True]

        # The next report is cut short (the export stopped at 70% of its rows): its scores
        # would drop the rest from every digest, so they are held back.
        on_newest = report["Report Date"] == f"{newest:%m/%d/%Y}"
        cut = on_newest & (on_newest.cumsum() > 0.7 * on_newest.sum())
        report[~cut].to_csv(export, index=False)
        good = result.snapshot.snapshot_id
        held = score_book(settings, deps.store, deps.switch, flags=flag_log(deps), data=export)
        assert held.tripped
        assert held.unlisted_note is not None  # said on the held-back run too
        assert held.shown_instead == f"the last good data (as of {result.snapshot.as_of})"
        assert any(
            failure.startswith("Input incomplete: the newest snapshot") for failure in held.failures
        ), held.failures
        assert deps.switch.state().on
        last_good = deps.store.last_good()
        assert last_good is not None
        assert last_good.snapshot_id == good
    finally:
        deps.background.shutdown(wait=True)
        stored = list(real_redis.scan_iter(match=f"{prefix}:*", count=1000))
        if stored:
            real_redis.unlink(*stored)


@pytest.mark.usefixtures("empty_embedded_store")
def test_a_two_date_export_cut_short_is_held_back(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    real_redis: redis.Redis,
) -> None:
    """An export of the last two reports whose newest stopped at 30% of its rows trips the
    kill switch; the same two reports whole pass the completeness check, and with each
    account on one of the two dates there is none."""
    report = crm_report(accounts=300, weeks=40, seed=5)
    history = tmp_path / "crm.csv"
    report.to_csv(history, index=False)
    config, var = tmp_path / "config", tmp_path / "var"
    monkeypatch.setenv("CHURNBOT_VAR", str(var))
    monkeypatch.delenv("REDIS_URL", raising=False)
    code, out, err = run("init", "--data", str(history), "--config", str(config))
    assert code == 0, out + err
    monkeypatch.setenv("CHURNBOT_CONFIG", str(config))
    code, out, err = run("train", "--data", str(history))
    assert code == 0, out + err

    dates = report["Report Date"].map(lambda d: dt.datetime.strptime(d, "%m/%d/%Y"))
    newest = dates.max()
    previous = newest - dt.timedelta(weeks=2)
    last_two = report[dates >= previous]
    on_newest = (dates[dates >= previous] == newest).to_numpy()
    listed = int((~on_newest).sum())
    # Every other account on the first date, the rest on the newest: one row each.
    on_first = last_two["Account ID"].rank(method="dense").to_numpy() % 2 == 0
    own_dates = last_two[np.where(on_first, ~on_newest, on_newest)]
    cut = on_newest & (np.cumsum(on_newest) > 0.3 * on_newest.sum())
    exports = {"whole": last_two, "own dates": own_dates, "cut short": last_two[~cut]}
    settings = load_settings({"CHURNBOT_CONFIG": str(config), "CHURNBOT_VAR": str(var)})
    prefix = f"test-{uuid.uuid4().hex}"
    deps = build_deps(settings, client=real_redis, prefix=prefix)
    try:
        results = {}
        for name, export in exports.items():
            path = tmp_path / f"{name}.csv"
            export.to_csv(path, index=False)
            results[name] = score_book(
                settings, deps.store, deps.switch, flags=flag_log(deps), data=path
            )
        # Only the completeness check is judged: drift on a few hundred rows is noise.
        completeness = {
            name: [check for check in result.checks if check.name == "completeness"]
            for name, result in results.items()
        }
        assert [check.ok for check in completeness["whole"]] == [True]
        assert completeness["own dates"] == []  # accounts on their own dates: nothing to check
        [failed] = completeness["cut short"]
        kept = int(on_newest.sum() - cut.sum())
        assert failed.message.startswith(
            f"Input incomplete: the newest snapshot ({newest:%Y-%m-%d}) lists {kept:,} of the "
            f"{listed:,} accounts the one before it ({previous:%Y-%m-%d}) listed"
        )
        assert "the table has only these two dates" in failed.message
        held = results["cut short"]
        assert held.tripped
        assert failed.message in held.failures
        assert deps.switch.state().on
    finally:
        deps.background.shutdown(wait=True)
        stored = list(real_redis.scan_iter(match=f"{prefix}:*", count=1000))
        if stored:
            real_redis.unlink(*stored)
