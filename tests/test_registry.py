"""The model registry: versions, champion, and every check that stands between disk and predict."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from models.errors import ModelError
from models.features import FeaturesConfig, FeatureSet
from models.fingerprint import frame_fingerprint
from models.registry import TRUSTED_TYPES, ModelCard, Registry
from models.spec import TrainingSettings
from models.train import calibration_folds, make_pipeline

NOW = datetime(2026, 5, 9, 7, 30, tzinfo=UTC)
NUMERIC = ["logins_30d", "seats_used"]
CATEGORICAL = ["plan"]


def make_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "logins_30d": rng.poisson(20, n).astype(float),
            "seats_used": rng.integers(1, 50, n),
            "plan": rng.choice(["starter", "growth", "enterprise"], n),
        }
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(0.2 * (frame["logins_30d"] - 18)))).to_numpy()
    return frame, churned


def make_features() -> FeatureSet:
    return FeatureSet(
        FeaturesConfig.model_validate(
            {
                "features": {
                    **{name: {"column": name} for name in NUMERIC},
                    **{name: {"transform": "category", "column": name} for name in CATEGORICAL},
                }
            }
        ),
        date_column="as_of",
    )


def make_model(seed: int = 0) -> tuple[CalibratedClassifierCV, pd.DataFrame]:
    """Exactly the production model shape: calibrated, frozen, filled, scaled + one-hot
    logistic."""
    frame, churned = make_frame(200, seed)
    pipeline = make_pipeline({}, make_features())
    pipeline.fit(frame.iloc[:120], churned[:120])
    model = CalibratedClassifierCV(FrozenEstimator(pipeline), method="sigmoid")
    model.fit(frame.iloc[120:], churned[120:])
    return model, frame


def make_cross_validated_model(cv: Any) -> tuple[CalibratedClassifierCV, pd.DataFrame]:
    """The production shape without a later period: the calibrator fits the pipeline itself,
    on folds ``cv``."""
    frame, churned = make_frame(200, seed=2)
    model = CalibratedClassifierCV(
        make_pipeline({}, make_features()), method="sigmoid", cv=cv, ensemble=False
    )
    return model.fit(frame, churned), frame


def grouped_cv(rows: int = 200) -> Any:
    """The calibrator's folds for four dates per account (models.train.calibration_folds)."""
    _, churned = make_frame(rows, seed=2)
    accounts = np.repeat(np.arange(rows // 4), 4)
    return calibration_folds(accounts, churned, TrainingSettings())


def card_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "data_fingerprint": "f" * 64,
        "data_source": "data/accounts.csv",
        "training_window": ("2024-01-01", "2024-12-31"),
        "eval_window": ("2025-01-01", "2025-03-31"),
        "horizon_days": 90,
        "features": NUMERIC + CATEGORICAL,
        "params": {"C": 1.0},
        "metrics": {"model": {"roc_auc": 0.83}},
        "n_train": 120,
        "n_eval": 80,
    }
    return {**fields, **overrides}


class Shady:
    """A type no reviewer has approved: loading it would run this module's code."""

    def __init__(self) -> None:
        self.payload = "anything"


def shady_transform(x: Any) -> Any:
    return x


@pytest.fixture(scope="module")
def fitted() -> tuple[CalibratedClassifierCV, pd.DataFrame]:
    return make_model()


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry")


@pytest.fixture
def saved(registry: Registry, fitted: tuple[CalibratedClassifierCV, pd.DataFrame]) -> ModelCard:
    return registry.save(fitted[0], card_fields(), now=NOW)


def plant(registry: Registry, template: ModelCard, data: bytes, version: str) -> Path:
    """Put an artifact in the registry by hand, with a card whose sha256 matches it."""
    folder = registry.root / version
    folder.mkdir()
    (folder / "model.skops").write_bytes(data)
    card = template.model_copy(
        update={"version": version, "artifact_sha256": hashlib.sha256(data).hexdigest()}
    )
    (folder / "card.json").write_text(card.model_dump_json())
    return folder


def test_allowlist_is_exactly_what_the_production_models_need(
    fitted: tuple[CalibratedClassifierCV, pd.DataFrame],
) -> None:
    # If a library upgrade changes this, review the new types before touching TRUSTED_TYPES.
    models = [
        fitted[0],
        make_cross_validated_model(5)[0],
        make_cross_validated_model(grouped_cv())[0],
    ]
    needed = {name for model in models for name in sio.get_untrusted_types(data=sio.dumps(model))}
    assert sorted(needed) == sorted(TRUSTED_TYPES)


@pytest.mark.parametrize(
    "cv",
    [
        pytest.param(5, id="a count of folds, as every cross-validated model saved before had"),
        pytest.param("grouped", id="precomputed folds that keep an account's rows together"),
    ],
)
def test_cross_validated_models_round_trip(registry: Registry, cv: Any) -> None:
    model, frame = make_cross_validated_model(grouped_cv() if cv == "grouped" else cv)
    card = registry.save(model, card_fields(eval_window=None), now=NOW)
    loaded = registry.load(card.version)
    np.testing.assert_array_equal(loaded.estimator.predict_proba(frame), model.predict_proba(frame))
    if cv == "grouped":
        np.testing.assert_array_equal(loaded.estimator.cv.test_fold, model.cv.test_fold)
    else:
        assert loaded.estimator.cv == 5


def test_round_trip_predicts_identically(
    registry: Registry, saved: ModelCard, fitted: tuple[CalibratedClassifierCV, pd.DataFrame]
) -> None:
    model, frame = fitted
    loaded = registry.load(saved.version)
    np.testing.assert_array_equal(loaded.estimator.predict_proba(frame), model.predict_proba(frame))
    assert loaded.card == saved
    assert loaded.warnings == ()


def test_card_records_what_the_model_is(registry: Registry, saved: ModelCard) -> None:
    artifact = (registry.root / saved.version / "model.skops").read_bytes()
    sha = hashlib.sha256(artifact).hexdigest()
    assert re.fullmatch(r"20260509-[0-9a-f]{10}", saved.version)
    assert saved.version == f"20260509-{sha[:10]}"
    assert saved.artifact_sha256 == sha
    assert saved.created_at == NOW
    assert saved.model_class == "CalibratedClassifierCV"
    assert set(saved.library_versions) == {"sklearn", "skops", "numpy", "python"}
    assert saved.training_window[0].isoformat() == "2024-01-01"
    assert saved.notes == {}
    on_disk = json.loads((registry.root / saved.version / "card.json").read_text())
    assert on_disk["created_at"] == "2026-05-09T07:30:00Z"
    assert on_disk["eval_window"] == ["2025-01-01", "2025-03-31"]
    assert registry.card(saved.version) == saved


def test_saving_the_same_model_again_is_idempotent(
    registry: Registry, saved: ModelCard, fitted: tuple[CalibratedClassifierCV, pd.DataFrame]
) -> None:
    later = datetime(2026, 6, 1, tzinfo=UTC)
    assert registry.save(fitted[0], card_fields(), now=later) == saved
    # A copy has different object ids; the canonical artifact does not depend on them.
    assert registry.save(copy.deepcopy(fitted[0]), card_fields(), now=later) == saved
    assert [p.name for p in registry.root.iterdir()] == [saved.version]


def test_list_promote_and_champion(
    registry: Registry, saved: ModelCard, fitted: tuple[CalibratedClassifierCV, pd.DataFrame]
) -> None:
    assert registry.champion_version() is None
    newer_model, frame = make_model(seed=1)
    newer = registry.save(newer_model, card_fields(), now=datetime(2026, 5, 10, tzinfo=UTC))
    assert [card.version for card in registry.list()] == [newer.version, saved.version]

    registry.promote(saved.version)
    assert registry.champion_version() == saved.version
    assert registry.load().card == saved
    registry.promote(newer.version)
    assert registry.champion_version() == newer.version
    champion = registry.load()
    np.testing.assert_array_equal(
        champion.estimator.predict_proba(frame), newer_model.predict_proba(frame)
    )
    assert sorted(p.name for p in registry.root.iterdir()) == sorted(
        ["champion", saved.version, newer.version]
    )


def test_empty_registry(registry: Registry) -> None:
    assert registry.list() == []
    assert registry.champion_version() is None


def test_no_champion(registry: Registry, saved: ModelCard) -> None:
    with pytest.raises(
        ModelError,
        match=r"no champion model in .*: run `churnbot train` or `churnbot models promote VERSION`",
    ):
        registry.load()


def test_promote_unknown_version_lists_known_ones(registry: Registry, saved: ModelCard) -> None:
    with pytest.raises(
        ModelError, match=rf"unknown model version '20990101-0000000000' .*: {saved.version}$"
    ):
        registry.promote("20990101-0000000000")
    assert registry.champion_version() is None


def test_version_must_not_escape_the_registry(registry: Registry, saved: ModelCard) -> None:
    with pytest.raises(ModelError, match=r"unknown model version '\.\./registry'"):
        registry.load("../registry")


def test_tampered_artifact_is_refused(registry: Registry, saved: ModelCard) -> None:
    path = registry.root / saved.version / "model.skops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(
        ModelError,
        match=rf"model {saved.version}: .*model\.skops has sha256 .* tampered with or corrupted",
    ):
        registry.load(saved.version)


def test_missing_artifact(registry: Registry, saved: ModelCard) -> None:
    (registry.root / saved.version / "model.skops").unlink()
    with pytest.raises(
        ModelError, match=rf"model {saved.version}: artifact .*model\.skops is missing"
    ):
        registry.load(saved.version)


def test_missing_card(registry: Registry, saved: ModelCard) -> None:
    (registry.root / saved.version / "card.json").unlink()
    with pytest.raises(ModelError, match=rf"model {saved.version}: card .*card\.json is missing"):
        registry.load(saved.version)


def test_unparsable_card(registry: Registry, saved: ModelCard) -> None:
    (registry.root / saved.version / "card.json").write_text("{not json")
    with pytest.raises(
        ModelError, match=rf"model {saved.version}: card .*card\.json is unparsable"
    ):
        registry.load(saved.version)


def test_card_of_another_model(registry: Registry, saved: ModelCard) -> None:
    other = "20260101-aaaaaaaaaa"
    (registry.root / saved.version).rename(registry.root / other)
    with pytest.raises(ModelError, match=rf"model {other}: card .* names version {saved.version}"):
        registry.load(other)


@pytest.mark.parametrize(
    ("artifact", "refused"),
    [
        (Shady(), "tests.test_registry.Shady"),
        (FunctionTransformer(shady_transform), "tests.test_registry.shady_transform"),
    ],
)
def test_types_outside_the_allowlist_are_refused(
    registry: Registry, saved: ModelCard, artifact: object, refused: str
) -> None:
    folder = plant(registry, saved, sio.dumps(artifact), "20260509-bbbbbbbbbb")
    with pytest.raises(
        ModelError,
        match=rf"model 20260509-bbbbbbbbbb: {re.escape(str(folder / 'model.skops'))} contains "
        rf"types outside the reviewed allowlist .*refusing to load: {re.escape(refused)}$",
    ):
        registry.load("20260509-bbbbbbbbbb")


def test_saving_a_type_outside_the_allowlist_is_refused(registry: Registry) -> None:
    with pytest.raises(
        ModelError,
        match=r"cannot save a Shady: it contains types outside the reviewed allowlist "
        r".*: tests\.test_registry\.Shady$",
    ):
        registry.save(Shady(), card_fields(model_class="Shady"), now=NOW)
    assert not registry.root.exists()


def test_model_class_must_match_the_artifact(registry: Registry, saved: ModelCard) -> None:
    plant(registry, saved, sio.dumps(StandardScaler()), "20260509-cccccccccc")
    with pytest.raises(
        ModelError, match="holds a StandardScaler but its card says CalibratedClassifierCV"
    ):
        registry.load("20260509-cccccccccc")


def test_library_version_differences_are_warnings(registry: Registry, saved: ModelCard) -> None:
    path = registry.root / saved.version / "card.json"
    card = json.loads(path.read_text())
    card["library_versions"]["sklearn"] = "1.8.0"
    major, minor, _ = card["library_versions"]["python"].split(".")
    card["library_versions"]["python"] = f"{major}.{minor}.99"  # a patch release: no warning
    path.write_text(json.dumps(card))
    loaded = registry.load(saved.version)
    assert len(loaded.warnings) == 1
    assert loaded.warnings[0].startswith(f"model {saved.version} was saved with sklearn 1.8.0")


def test_card_fields_the_registry_owns_are_refused(
    registry: Registry, fitted: tuple[CalibratedClassifierCV, pd.DataFrame]
) -> None:
    with pytest.raises(ModelError, match="must not set artifact_sha256, version: the registry"):
        registry.save(fitted[0], card_fields(version="x", artifact_sha256="y"), now=NOW)
    with pytest.raises(ModelError, match="model_class is 'Pipeline' but the estimator is a Calib"):
        registry.save(fitted[0], card_fields(model_class="Pipeline"), now=NOW)


def test_invalid_card_fields_are_a_model_error(
    registry: Registry, fitted: tuple[CalibratedClassifierCV, pd.DataFrame]
) -> None:
    fields = card_fields(training_window=("2025-01-01", "2024-01-01"), horizon_days=0)
    del fields["features"]
    with pytest.raises(
        ModelError, match=r"model card 20260509-[0-9a-f]{10}: features: Field"
    ) as info:
        registry.save(fitted[0], fields, now=NOW)
    assert "horizon_days: Input should be greater than 0" in str(info.value)
    assert not registry.root.exists()


def test_card_values_must_be_json(
    registry: Registry, fitted: tuple[CalibratedClassifierCV, pd.DataFrame]
) -> None:
    with pytest.raises(ModelError, match="params, metrics and notes must hold JSON values"):
        registry.save(fitted[0], card_fields(params={"solver": object()}), now=NOW)
    assert not registry.root.exists()


def test_naive_now_is_refused(
    registry: Registry, fitted: tuple[CalibratedClassifierCV, pd.DataFrame]
) -> None:
    with pytest.raises(ModelError, match="now must be timezone-aware"):
        registry.save(fitted[0], card_fields(), now=datetime(2026, 5, 9))


def test_frame_fingerprint_names_the_exact_data() -> None:
    frame, _ = make_frame(50, seed=4)
    fingerprint = frame_fingerprint(frame)
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint)
    assert frame_fingerprint(frame.copy()) == fingerprint
    assert frame_fingerprint(frame.set_axis(range(100, 150))) == fingerprint  # index ignored

    changed = frame.copy()
    changed.loc[17, "plan"] = "growth" if frame.loc[17, "plan"] != "growth" else "starter"
    assert frame_fingerprint(changed) != fingerprint
    nudged = frame.copy()
    nudged.loc[3, "logins_30d"] += 1e-9
    assert frame_fingerprint(nudged) != fingerprint
    assert frame_fingerprint(frame.rename(columns={"plan": "tier"})) != fingerprint
    assert frame_fingerprint(frame.astype({"seats_used": "float64"})) != fingerprint
    assert frame_fingerprint(frame.iloc[:49]) != fingerprint
