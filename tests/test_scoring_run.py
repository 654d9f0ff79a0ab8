"""A scoring run end to end against a real Redis: publish, history, health checks, kill switch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import redis
from scipy.special import logit

from bot.publish import build_scorer, run_scoring
from bot.settings import Settings, load_settings
from bot.state import KillSwitch, SnapshotStore
from bot.state.flag_log import ABSTAINED, FlagLog
from models.errors import DataContractError, ModelError
from models.explain import explain
from models.generator import SampleData, generate_accounts
from models.labels import time_split
from models.registry import Registry
from models.scoring import latest_rows
from models.sources_config import SourcesConfig
from models.track_record import evaluation_rates, flag_entry
from models.truth import measure_scorer
from models.validate import LoadResult, validate_frame
from tests import sample_config

CONFIG = Path(__file__).resolve().parent.parent / "config"
END = dt.date(2026, 11, 16)
NOW = dt.datetime(2026, 11, 17, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def sample() -> SampleData:
    return generate_accounts(1500, 52, seed=11, end=END)


@pytest.fixture(scope="module")
def book(sample: SampleData) -> pd.DataFrame:
    return sample.accounts


@pytest.fixture(scope="module")
def trained(book: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    sample_config.train(book, Registry(root))
    return root


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"CHURNBOT_CONFIG": str(CONFIG), "CHURNBOT_VAR": str(tmp_path)})


@pytest.fixture
def registry(trained: Path, tmp_path: Path) -> Registry:
    root = tmp_path / "registry"
    shutil.copytree(trained, root)
    return Registry(root)


class State(NamedTuple):
    store: SnapshotStore
    switch: KillSwitch
    flags: FlagLog


@pytest.fixture
def state(real_redis: redis.Redis, real_prefix: str) -> State:
    """The store, kill switch and flag log under a prefix of the test's own."""
    return State(
        SnapshotStore(real_redis, prefix=real_prefix),
        KillSwitch(real_redis, prefix=real_prefix),
        FlagLog(real_redis, prefix=real_prefix),
    )


def loaded(frame: pd.DataFrame, settings: Settings) -> LoadResult:
    """Run a frame through the same validation a file goes through."""
    text = frame.to_csv(index=False, date_format="%Y-%m-%d")
    raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    return validate_frame(
        raw, settings.schema, source="test", sources=SourcesConfig(max_reject_share=0.5)
    )


def run(settings, state, registry, frame, *, now=NOW):
    result = loaded(frame, settings)
    return run_scoring(
        settings,
        store=state.store,
        switch=state.switch,
        registry=registry,
        flags=state.flags,
        load=lambda: result,
        now=now,
    )


def test_healthy_run_publishes_cards_with_reasons_and_actions(
    settings: Settings, state, registry: Registry, book: pd.DataFrame
) -> None:
    store, switch, _ = state
    result = run(settings, state, registry, book)
    assert result.healthy, result.failures
    assert not result.tripped
    assert store.latest() == store.last_good() == result.snapshot
    assert not switch.state().on
    top = store.top(5)
    assert [card["risk"] for card in top] == sorted((c["risk"] for c in top), reverse=True)
    card = top[0]
    assert card["band"] == "high"
    assert 1 <= len(card["reasons"]) <= 3
    assert all(reason["text"] and reason["impact"] > 0 for reason in card["reasons"])
    assert card["action"]["rule"]
    assert card["action"]["action"]
    assert card["model_version"] == registry.champion_version()
    assert card["change"] is None, "a first snapshot has nothing to compare with"


def test_second_run_records_change_and_history(
    settings: Settings, state, registry: Registry, book: pd.DataFrame
) -> None:
    store, _, _ = state
    run(settings, state, registry, book)
    worse = book.copy()
    latest = worse["as_of"] == worse["as_of"].max()
    worse.loc[latest, "open_escalations"] = 4
    run(settings, state, registry, worse, now=NOW + dt.timedelta(hours=1))
    card = store.top(1)[0]
    assert card["change"] == pytest.approx(card["risk"] - card["previous_risk"])
    assert sum(c["change"] > 0 for c in store.top(50)) > 40, "escalations raise risk"
    history = store.history(card["account_id"])
    assert len(history) == 2


def test_a_healthy_run_leaves_the_flags_its_published_cards_show(
    settings: Settings, state, registry: Registry, book: pd.DataFrame
) -> None:
    """The flags are tallied from the scored chunks on their way to the store; they must be
    exactly what the published cards say when read back and decoded."""
    result = run(settings, state, registry, book)
    assert result.healthy, result.failures
    meta = result.snapshot
    assert meta is not None
    cards = list(state.store.iter_cards(snapshot_id=meta.snapshot_id))
    calibration = registry.load().card.metrics["calibration"]
    expected = flag_entry(
        snapshot_id=meta.snapshot_id,
        as_of=dt.date.fromisoformat(meta.as_of),
        model_version=meta.model_version,
        account_ids=[card["account_id"] for card in cards],
        bands=[ABSTAINED if card.get("abstain") else card["band"] for card in cards],
        sample_size=settings.spec.track_record.sample_size,
        evaluation=evaluation_rates(calibration, settings.spec.risk_bands),
    )

    entry = state.flags.latest()

    assert entry == expected
    assert entry.n_accounts == meta.n_accounts == len(cards)
    assert 0 < len(entry.flagged) < len(cards)
    assert entry.evaluation, "the serving model's evaluation per band comes along"


def test_stale_data_trips_the_switch_and_keeps_last_good(
    settings: Settings, state, registry: Registry, book: pd.DataFrame
) -> None:
    store, switch, _ = state
    good = run(settings, state, registry, book).snapshot
    later = NOW + dt.timedelta(days=30)
    result = run(settings, state, registry, book, now=later)
    assert result.tripped
    assert result.failures == [
        "Data is stale: as of 2026-11-16, 31 days old (limit 8: health.max_data_age_days in "
        "product.yaml)"
    ]
    assert store.latest() == result.snapshot
    assert store.last_good() == good
    assert good is not None
    latest_flags = state.flags.latest()
    assert latest_flags is not None
    assert latest_flags.snapshot_id == good.snapshot_id, "an unhealthy snapshot flags nothing"
    state_now = switch.state()
    assert state_now.on
    assert state_now.source == "health_check"
    assert "Data is stale" in state_now.reason


def test_drifted_features_trip_the_switch(
    settings: Settings, state, registry: Registry, book: pd.DataFrame
) -> None:
    drifted = book.copy()
    latest = drifted["as_of"] == drifted["as_of"].max()
    drifted.loc[latest, "active_users"] = (drifted.loc[latest, "active_users_4w_ago"] // 3).astype(
        "int64"
    )
    result = run(settings, state, registry, drifted)
    assert result.tripped
    assert any(
        m.startswith("Input drifted: PSI ") and m.endswith("on active_users_change")
        for m in result.failures
    ), result.failures


def test_missing_champion_trips_and_publishes_nothing(
    settings: Settings, state, book: pd.DataFrame, tmp_path: Path
) -> None:
    store, switch, _ = state
    result = run(settings, state, Registry(tmp_path / "empty"), book)
    assert result.tripped
    assert result.snapshot is None
    assert store.latest() is None
    assert "Model unusable: no champion model" in switch.state().reason


def test_tampered_champion_trips(
    settings: Settings, state, registry: Registry, book: pd.DataFrame
) -> None:
    version = registry.champion_version()
    artifact = next((registry.root / str(version)).glob("*.skops"))
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    result = run(settings, state, registry, book)
    assert result.tripped
    assert "tampered" in result.failures[0]


def test_a_champion_of_another_data_configuration_is_named_as_such(
    settings: Settings, state, registry: Registry, book: pd.DataFrame
) -> None:
    """Another config folder sharing the registry promoted its model: before, the run failed
    on the first chunk with "the account rows lack column(s)... map them in sources.yaml"."""
    model = registry.load()
    read = sorted(model.features.source_columns)[0]
    columns = {k: v for k, v in settings.schema.columns.items() if k != read}
    other = dataclasses.replace(
        settings, schema=settings.schema.model_copy(update={"columns": columns})
    )
    with pytest.raises(ModelError, match="trained on another data configuration") as raised:
        build_scorer(other, model)
    assert f"reads column(s) {read}," in str(raised.value)
    assert "`churnbot train`" in str(raised.value)

    result = run(other, state, registry, book)
    assert result.tripped
    integrity = [c for c in result.checks if c.name == "model_integrity"]
    assert len(integrity) == 1, "one line in the health table, not 'ok' then 'FAILED'"
    assert not integrity[0].ok
    assert "trained on another data configuration" in integrity[0].message


def test_a_healthy_run_says_the_switch_it_leaves_on(
    settings: Settings, state, registry: Registry, book: pd.DataFrame
) -> None:
    assert run(settings, state, registry, book).paused is None
    state.switch.trip("checking the Q4 import", who="U_ADMIN", source="admin")

    result = run(settings, state, registry, book, now=NOW + dt.timedelta(hours=1))
    assert result.healthy
    assert not result.tripped
    assert result.paused is not None
    assert result.paused.reason == "checking the Q4 import"
    assert result.paused_note is not None
    assert "still on" in result.paused_note
    tripped_at = dt.datetime.fromisoformat(result.paused.when)
    assert f"(since {tripped_at:%Y-%m-%d %H:%M} UTC, by U_ADMIN: checking the Q4 import)" in (
        result.paused_note
    )


def test_unreadable_input_trips(settings: Settings, state, registry: Registry) -> None:
    store, switch, _ = state

    def broken() -> LoadResult:
        raise DataContractError("accounts.csv: missing required column 'arr'")

    result = run_scoring(
        settings,
        store=store,
        switch=switch,
        registry=registry,
        flags=state.flags,
        load=broken,
        now=NOW,
    )
    assert result.tripped
    assert result.failures == ["Input data unusable: accounts.csv: missing required column 'arr'"]


def test_too_many_rejected_rows_trip(
    settings: Settings, state, registry: Registry, book: pd.DataFrame
) -> None:
    bad = book.copy()
    bad["arr"] = bad["arr"].astype(object)
    rows = np.random.default_rng(0).choice(len(bad), size=len(bad) // 20, replace=False)
    bad.iloc[rows, bad.columns.get_loc("arr")] = "lots"
    result = run(settings, state, registry, bad)
    assert result.tripped
    assert any(m.startswith("Input data invalid: ") for m in result.failures), result.failures


def test_accuracy_below_the_floor_trips(
    settings: Settings, state, registry: Registry, book: pd.DataFrame
) -> None:
    # Outcomes that have nothing to do with the signals: the champion ranks them at chance.
    scrambled = book.copy()
    accounts = scrambled["account_id"].unique()
    shuffled = dict(zip(accounts, np.random.default_rng(5).permutation(accounts), strict=True))
    churn_by_account = scrambled.groupby("account_id")["churn_date"].first()
    scrambled["churn_date"] = scrambled["account_id"].map(shuffled).map(churn_by_account)
    scrambled = scrambled[
        scrambled["churn_date"].isna() | (scrambled["as_of"] <= scrambled["churn_date"])
    ]
    result = run(settings, state, registry, scrambled)
    assert result.tripped
    assert any(m.startswith("Accuracy below the floor: roc_auc") for m in result.failures), (
        result.failures
    )

    # The same outcomes, but fewer churners than the spec needs to judge: a figure on a
    # handful of churners is noise, so it is shown and nobody's scores are paused for it.
    sla = settings.spec.accuracy_sla.model_copy(update={"min_churned": 100_000})
    spec = settings.spec.model_copy(update={"accuracy_sla": sla})
    later = NOW + dt.timedelta(minutes=1)
    thin = run(dataclasses.replace(settings, spec=spec), state, registry, scrambled, now=later)
    assert not thin.tripped, thin.failures
    (accuracy,) = [check for check in thin.checks if check.name == "accuracy_floor"]
    assert accuracy.ok
    assert "churned: too few churned to judge against the floor" in accuracy.message


def test_contributions_add_up_to_the_real_champion_output(
    settings: Settings, registry: Registry, book: pd.DataFrame
) -> None:
    model = registry.load()
    rows = latest_rows(book, settings.schema)
    features = sample_config.features().build(rows)
    contributions = explain(model.estimator, features, model.card.notes["explain_reference"])
    probability = model.estimator.predict_proba(features)[:, 1]
    np.testing.assert_allclose(contributions.log_odds(), logit(probability), atol=1e-9)


def test_reasons_name_the_true_cause_of_most_flagged_churners(
    settings: Settings, registry: Registry, sample: SampleData
) -> None:
    scorer = build_scorer(settings, registry.load())
    split = time_split(sample.accounts, settings.schema, settings.spec.horizon_days)
    check = measure_scorer(scorer, split.evaluate, sample.truth, settings.spec.horizon_days)
    assert check.flagged_churners > 100
    assert check.rate >= 0.8, check
