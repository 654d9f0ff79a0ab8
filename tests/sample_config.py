"""The shipped config/ loaded once for tests: the sample book's schema, features and spec."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from models.contract import AccountSchema, load_schema
from models.features import FeatureSet, load_features
from models.spec import ProductSpec, load_spec

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
