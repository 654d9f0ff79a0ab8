"""Read a YAML config file into a pydantic model, with errors that name file, key and value.

Every config file goes through :func:`load_yaml_model`, so a user who mistypes a key in any of
them gets the same kind of message: ``config/product.yaml: accuracy_sla.floor: Input should be
a valid number (got 'high')``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from models.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: libyaml's parser when PyYAML was built with it (the same documents, about 6x faster: every
#: process start reads the whole config folder).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def format_validation_error(source: str, error: ValidationError) -> str:
    """One line per problem: ``source: dotted.key: message (got value)``."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the example config)"
        got = item.get("input")
        shown = "" if item["type"] in ("missing", "extra_forbidden") else f" (got {got!r})"
        if len(shown) > 80:
            shown = shown[:77] + "...)"
        lines.append(f"{source}: {key}: {message}{shown}")
    return "\n".join(lines)


def read_yaml(path: Path) -> object:
    """Parse a YAML file, raising :class:`ConfigError` naming the file and the line."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {exc}") from None
    except ValueError as exc:
        # PyYAML builds dates itself, so an impossible one (2024-02-30) escapes as ValueError.
        raise ConfigError(f"{path}: not valid YAML: {exc} (a date that does not exist?)") from None


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Validate the YAML file at ``path`` against ``model``."""
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from None
