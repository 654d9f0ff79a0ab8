"""Read a YAML config file into a pydantic model, with errors that name file, key and value.

Every config file goes through :func:`load_yaml_model`, so a user who mistypes a key in any of
them gets the same kind of message: ``config/product.yaml: accuracy_sla.floor: Input should be
a valid number (got 'high')``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

from models.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: libyaml's parser when PyYAML was built with it (the same documents, about 6x faster: every
#: process start reads the whole config folder).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The most keys an unknown key's message lists (more would bury the message).
_KEYS_LISTED = 12


def format_validation_error(
    source: str, error: ValidationError, model: type[BaseModel] | None = None
) -> str:
    """One line per problem: ``source: dotted.key: message (got value)``; with the ``model``
    that was validated, an unknown key names the known key it is closest to, if any, and
    that key's "Field required" is left out (it is the same mistake, said once)."""
    items = error.errors()
    meant = {
        item["loc"]: _closest_key(model, item["loc"])
        for item in items
        if item["type"] == "extra_forbidden"
    }
    suggested = {(*loc[:-1], name) for loc, name in meant.items() if name is not None}
    lines = []
    for item in items:
        if item["type"] == "missing" and item["loc"] in suggested:
            continue
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        # A validator's own ValueError reads as written, without pydantic's "Value error, ".
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = _unknown_key(model, item["loc"], meant[item["loc"]])
        got = item.get("input")
        shown = "" if item["type"] in ("missing", "extra_forbidden") else f" (got {got!r})"
        if len(shown) > 80:
            shown = shown[:77] + "...)"
        lines.append(f"{source}: {key}: {message}{shown}")
    return "\n".join(lines)


def _unknown_key(
    model: type[BaseModel] | None, loc: tuple[int | str, ...], meant: str | None
) -> str:
    """What is said of an unknown key: the known key it is closest to, else the keys allowed
    there (a short list; a long one is left to the README's Configuration section)."""
    if meant is not None:
        return f"unknown key (did you mean '{meant}'?)"
    known = _keys_at(model, loc[:-1]) if model is not None else []
    if 0 < len(known) <= _KEYS_LISTED:
        return f"unknown key (the keys here are {', '.join(sorted(known))})"
    return "unknown key (check the spelling; the README's Configuration section lists the keys)"


def _closest_key(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> str | None:
    """The known key a misspelt one at ``loc`` is closest to, if any."""
    known = _keys_at(model, loc[:-1]) if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    return close[0] if close else None


def _keys_at(model: type[BaseModel], path: tuple[int | str, ...]) -> list[str]:
    """The keys the model allows at ``path``: each part that names a field descends into the
    model of its type; any other part (a list index, a key of a dict, a union's tag) stays."""
    current = model
    for part in path:
        field = current.model_fields.get(str(part))
        if field is None:
            field = next((f for f in current.model_fields.values() if f.alias == part), None)
        if field is not None:
            inner = _model_in(field.annotation)
            if inner is None:
                return []
            current = inner
    return [field.alias or name for name, field in current.model_fields.items()]


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (``Model``, ``Model | None``,
    ``list[Model]``, ``dict[str, Model]``...), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


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
        raise ConfigError(format_validation_error(str(path), exc, model)) from None
