"""The shipped config/ loaded once for tests: the sample book's schema, features and spec."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from models.contract import AccountSchema, load_schema
from models.features import FeatureSet, load_features
from models.spec import ProductSpec, load_spec

if TYPE_CHECKING:
    import pandas as pd

    from models.pipeline import TrainOutcome
    from models.registry import Registry

CONFIG = Path(__file__).resolve().parents[1] / "config"


@cache
def schema() -> AccountSchema:
    return load_schema(CONFIG / "schema.yaml")


@cache
def features() -> FeatureSet:
    return load_features(CONFIG / "features.yaml", schema())[0]


@cache
def spec() -> ProductSpec:
    return load_spec(CONFIG / "product.yaml")


def train(book: pd.DataFrame, registry: Registry, *, promote: bool | None = None) -> TrainOutcome:
    """Train on ``book`` with the shipped config and save the model in ``registry``, as
    ``churnbot train`` would (``promote`` as :func:`models.pipeline.train_and_register` takes
    it)."""
    from models.pipeline import train_and_register  # scikit-learn: only for the tests that train

    return train_and_register(
        book, schema(), features(), spec(), registry, data_source="test", promote=promote
    )
