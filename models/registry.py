"""A versioned model registry on disk: one folder per model, a card beside it, a champion pointer.

Layout::

    root/
      20260509-3f2a9c1b7e/   model.skops  card.json
      champion               the version the bot scores with

Models are stored with skops, never pickle: loading a pickle runs arbitrary code, and a model
folder is exactly the kind of file that gets copied between machines. Loading checks, in
order, that the card parses, that the artifact's sha256 matches the card (tampering or
corruption), and that every type skops cannot vouch for is on a reviewed allowlist; only then
is the artifact deserialised.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import platform
import re
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops
import skops.io as sio
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticSerializationError

from models.config_files import format_validation_error
from models.errors import ModelError
from models.features import FeatureSet

# Types skops does not trust by default but that the churn model legitimately contains.
# The model is CalibratedClassifierCV(FrozenEstimator(Pipeline(ColumnTransformer(
# Pipeline(SimpleImputer, StandardScaler), OneHotEncoder), LogisticRegression)), method="sigmoid")
# (for a single snapshot, the same without FrozenEstimator); skops 0.16 trusts everything in it
# except the two private scikit-learn classes below, which hold the fitted estimator and the
# sigmoid's two floats, a numpy dtype, and the PredefinedSplit of a model cross-validated on
# several dates per account. All were reviewed: plain data holders whose state is set from the
# artifact's attributes, with no code run on load. Anything else is refused, so adding a model
# type means reviewing its types and extending this tuple deliberately; a type is only ever
# added, so models saved before keep loading.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # The calibrator's folds, precomputed so an account's rows stay in one fold (see
    # models.train.calibration_folds): two int arrays, each row's fold number and the folds.
    "sklearn.model_selection._split.PredefinedSplit",
    # SimpleImputer records the dtype it was fitted on; skops rebuilds it from its name
    # (np.dtype("float64")), which runs no code of the artifact's choosing.
    "numpy.dtype",
)

MODEL_FILE = "model.skops"
CARD_FILE = "card.json"
CHAMPION_FILE = "champion"
_VERSION = re.compile(r"^\d{8}-[0-9a-f]{10}$")
# Fields the registry fills in itself; a caller passing them would be overriding the truth.
_REGISTRY_FIELDS = frozenset({"version", "created_at", "artifact_sha256", "library_versions"})
# A fixed zip timestamp (the earliest zip allows), so an artifact's bytes depend on the model only.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ModelCard(BaseModel):
    """What a model is, what it learnt from and how good it was: stored as card.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(pattern=_VERSION.pattern)
    created_at: AwareDatetime
    model_class: str
    artifact_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    data_fingerprint: str
    data_source: str
    training_window: tuple[date, date]
    eval_window: tuple[date, date] | None
    horizon_days: int = Field(gt=0)
    features: list[str] = Field(min_length=1)
    params: dict[str, Any]
    metrics: dict[str, Any]
    n_train: int = Field(ge=0)
    n_eval: int = Field(ge=0)
    library_versions: dict[str, str]
    notes: dict[str, Any] = {}

    @model_validator(mode="after")
    def _windows_ordered(self) -> ModelCard:
        for name in ("training_window", "eval_window"):
            window = getattr(self, name)
            if window is not None and window[0] > window[1]:
                raise ValueError(f"{name} starts ({window[0]}) after it ends ({window[1]})")
        return self


@dataclass(frozen=True)
class LoadedModel:
    """A verified estimator with its card; ``warnings`` lists library version differences."""

    estimator: Any
    card: ModelCard
    warnings: tuple[str, ...] = ()

    @cached_property
    def features(self) -> FeatureSet:
        """The features the model was trained on, as recorded on its card (parsed once)."""
        spec = self.card.notes.get("feature_set")
        if not isinstance(spec, dict):
            raise ModelError(
                f"model {self.card.version} was trained before features were configured in "
                "features.yaml; retrain it (`churnbot train`)"
            )
        return FeatureSet.from_dict(spec)


def library_versions() -> dict[str, str]:
    """The versions that decide whether an artifact behaves as it did when it was saved."""
    return {
        "sklearn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _canonical_artifact(data: bytes) -> bytes:
    """Rewrite a skops archive so the same fitted model always gives the same bytes.

    skops names members and memo ids after ``id()`` of live objects and stamps the current
    time, so dumping one model twice yields different bytes. Renumbering ids and files in
    order of first appearance (a one-to-one map, so shared references stay shared) and fixing
    the timestamps makes the sha256, and with it the version, a function of the model: saving
    the same model again is then a no-op instead of a duplicate version.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        schema = json.loads(source.read("schema.json"))
        ids: dict[int, int] = {}
        files: dict[str, str] = {}

        def renumber(node: Any) -> Any:
            if isinstance(node, list):
                return [renumber(item) for item in node]
            if not isinstance(node, dict):
                return node
            out: dict[Any, Any] = {}
            for key, value in node.items():
                # Node states are dicts, so an int "__id__" or str "file" is skops' bookkeeping,
                # never a user's dict key (whose value would itself be a node state dict).
                if key == "__id__" and isinstance(value, int):
                    out[key] = ids.setdefault(value, len(ids) + 1)
                elif key == "file" and isinstance(value, str):
                    suffix = Path(value).suffix
                    out[key] = files.setdefault(value, f"{len(files) + 1}{suffix}")
                else:
                    out[key] = renumber(value)
            return out

        canonical = renumber(schema)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as target:
            for old, new in files.items():
                target.writestr(zipfile.ZipInfo(new, date_time=_ZIP_EPOCH), source.read(old))
            target.writestr(
                zipfile.ZipInfo("schema.json", date_time=_ZIP_EPOCH),
                json.dumps(canonical, indent=2),
            )
    return buffer.getvalue()


def _untrusted_outside_allowlist(data: bytes) -> tuple[list[str], list[str]]:
    """(types skops flags that are allowlisted, types it flags that are not)."""
    untrusted = sio.get_untrusted_types(data=data)
    return (
        [name for name in untrusted if name in TRUSTED_TYPES],
        [name for name in untrusted if name not in TRUSTED_TYPES],
    )


def _staging_path(path: Path) -> Path:
    """A hidden sibling of ``path`` to build it in; created with the umask's permissions
    (unlike tempfile's private 0600/0700), so the web and worker processes can read it."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = _staging_path(path)
    try:
        with tmp.open("xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Registry:
    """Model versions under ``root``; nothing is read or created until a method is called."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _versions(self) -> builtins.list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _VERSION.match(p.name))

    def _known(self) -> str:
        versions = self._versions()
        return ", ".join(versions) if versions else "none (run `churnbot train`)"

    def _folder(self, version: str) -> Path:
        folder = self.root / version
        if not _VERSION.match(version) or not folder.is_dir():
            raise ModelError(
                f"unknown model version {version!r} in {self.root}; known versions: {self._known()}"
            )
        return folder

    def save(
        self, estimator: Any, card_fields: dict[str, Any], *, now: datetime | None = None
    ) -> ModelCard:
        """Serialise ``estimator`` with skops and store it with its card; return the card.

        The version is the UTC date plus the first 10 hex digits of the artifact's sha256, so
        it sorts by day and names the exact bytes. Saving a model whose artifact is already
        stored returns the existing card unchanged. The artifact is refused here if it holds
        a type outside :data:`TRUSTED_TYPES`, since the registry would refuse to load it.
        """
        reserved = sorted(_REGISTRY_FIELDS & card_fields.keys())
        if reserved:
            raise ModelError(
                f"card_fields must not set {', '.join(reserved)}: the registry computes them"
            )
        model_class = type(estimator).__name__
        if card_fields.get("model_class", model_class) != model_class:
            raise ModelError(
                f"card_fields model_class is {card_fields['model_class']!r} but the estimator "
                f"is a {model_class}"
            )
        created = now or datetime.now(UTC)
        if created.tzinfo is None:
            raise ModelError(f"now must be timezone-aware, got {created.isoformat()}")
        created = created.astimezone(UTC)

        data = _canonical_artifact(sio.dumps(estimator))
        _, refused = _untrusted_outside_allowlist(data)
        if refused:
            raise ModelError(
                f"cannot save a {model_class}: it contains types outside the reviewed "
                f"allowlist (models.registry.TRUSTED_TYPES): {', '.join(refused)}"
            )
        sha = _sha256(data)
        for existing in self.root.glob(f"*-{sha[:10]}"):
            if existing.is_dir() and _VERSION.match(existing.name):
                return self.card(existing.name)

        version = f"{created:%Y%m%d}-{sha[:10]}"
        try:
            card = ModelCard(
                **{"model_class": model_class, **card_fields},
                version=version,
                created_at=created,
                artifact_sha256=sha,
                library_versions=library_versions(),
            )
        except ValidationError as error:
            raise ModelError(format_validation_error(f"model card {version}", error)) from None
        try:
            card_json = card.model_dump_json(indent=2) + "\n"
        except PydanticSerializationError as error:
            raise ModelError(
                f"model card {version}: params, metrics and notes must hold JSON values: {error}"
            ) from None

        # Both files are written into a staging folder that is renamed into place in one step,
        # so a version folder either is complete or does not exist.
        self.root.mkdir(parents=True, exist_ok=True)
        staging = _staging_path(self.root / version)
        staging.mkdir()
        try:
            (staging / MODEL_FILE).write_bytes(data)
            (staging / CARD_FILE).write_text(card_json)
            os.replace(staging, self.root / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return card

    def card(self, version: str) -> ModelCard:
        """The parsed card of ``version``; a missing or unparsable card is a ModelError."""
        path = self._folder(version) / CARD_FILE
        if not path.is_file():
            raise ModelError(f"model {version}: card {path} is missing; retrain or restore it")
        try:
            card = ModelCard.model_validate_json(path.read_bytes())
        except ValidationError as error:
            raise ModelError(
                f"model {version}: card {path} is unparsable:\n"
                + format_validation_error(str(path), error)
            ) from None
        if card.version != version:
            raise ModelError(
                f"model {version}: card {path} names version {card.version}; the folder was "
                "renamed or the card copied from another model"
            )
        return card

    def list(self) -> builtins.list[ModelCard]:
        """Every stored model's card, newest first."""
        cards = [self.card(version) for version in self._versions()]
        return sorted(cards, key=lambda c: (c.created_at, c.version), reverse=True)

    def promote(self, version: str) -> None:
        """Make ``version`` the champion the bot scores with; the pointer is replaced atomically."""
        self._folder(version)
        _write_atomic(self.root / CHAMPION_FILE, f"{version}\n".encode())

    def champion_version(self) -> str | None:
        """The promoted version, or None when nothing has been promoted yet."""
        path = self.root / CHAMPION_FILE
        if not path.is_file():
            return None
        return path.read_text().strip()

    def load(self, version: str | None = None) -> LoadedModel:
        """Verify and deserialise ``version`` (default: the champion).

        Each check fails with a ModelError naming the version and the file, so an operator
        knows whether to retrain, restore or investigate.
        """
        if version is None:
            version = self.champion_version()
            if version is None:
                raise ModelError(
                    f"no champion model in {self.root}: run `churnbot train` or "
                    "`churnbot models promote VERSION`"
                )
        card = self.card(version)
        path = self.root / version / MODEL_FILE
        if not path.is_file():
            raise ModelError(f"model {version}: artifact {path} is missing; retrain or restore it")
        data = path.read_bytes()
        sha = _sha256(data)
        if sha != card.artifact_sha256:
            raise ModelError(
                f"model {version}: {path} has sha256 {sha} but its card says "
                f"{card.artifact_sha256}: the artifact was tampered with or corrupted; "
                "do not load it, retrain or restore it"
            )
        try:
            trusted, refused = _untrusted_outside_allowlist(data)
            if refused:
                raise ModelError(
                    f"model {version}: {path} contains types outside the reviewed allowlist "
                    f"(models.registry.TRUSTED_TYPES), refusing to load: {', '.join(refused)}"
                )
            estimator = sio.loads(data, trusted=trusted)
        except ModelError:
            raise
        except Exception as error:
            raise ModelError(f"model {version}: {path} cannot be deserialised: {error}") from error
        if type(estimator).__name__ != card.model_class:
            raise ModelError(
                f"model {version}: {path} holds a {type(estimator).__name__} but its card says "
                f"{card.model_class}"
            )
        return LoadedModel(estimator=estimator, card=card, warnings=self._version_warnings(card))

    @staticmethod
    def _version_warnings(card: ModelCard) -> tuple[str, ...]:
        current = library_versions()

        def comparable(name: str, value: str) -> str:
            # A Python patch release does not change how a model computes; a minor one might.
            return ".".join(value.split(".")[:2]) if name == "python" else value

        return tuple(
            f"model {card.version} was saved with {name} {saved}, running {current[name]}: "
            "predictions may differ; retrain to be sure"
            for name, saved in sorted(card.library_versions.items())
            if name in current and comparable(name, saved) != comparable(name, current[name])
        )
