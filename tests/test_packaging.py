"""What a deployment installs: no test fakes at run time, pinned tools, one lock file for `make`.

A deployment sets REDIS_URL, so the embedded store (fakeredis, a test fake) is an optional
extra; the app must import and start without it, and say how to get it when it is asked for.
A fresh clone must not turn red because a linter released new rules overnight: ruff and mypy
are pinned exactly, and `make` installs every package from requirements.lock.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
LOCK = REPO / "requirements.lock"


def _requirements(group: str | None) -> list[Requirement]:
    specs = PROJECT["dependencies"] if group is None else PROJECT["optional-dependencies"][group]
    return [Requirement(spec) for spec in specs]


def _locked() -> dict[str, str]:
    """``{canonical name: version}`` of requirements.lock; every line must be ``name==version``."""
    pins: dict[str, str] = {}
    for number, line in enumerate(LOCK.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line.strip())
        assert match, f"requirements.lock:{number}: expected name==version, got {line!r}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_fakeredis_is_an_optional_extra_not_a_runtime_dependency() -> None:
    runtime = {canonicalize_name(r.name) for r in _requirements(None)}
    assert "fakeredis" not in runtime
    assert {canonicalize_name(r.name) for r in _requirements("embedded")} == {"fakeredis"}
    # The tests and `make demo` use the embedded store: the dev extra brings it.
    assert "churnbot[embedded]" in PROJECT["optional-dependencies"]["dev"]


def test_the_app_imports_and_starts_without_fakeredis() -> None:
    """Every module of bot/ imports with fakeredis missing, `churnbot --help` runs, and asking
    for the embedded store then says how to get it instead of failing on an import."""
    script = """
import pkgutil, sys
sys.modules["fakeredis"] = None  # as if it were not installed
import bot
for module in pkgutil.walk_packages(bot.__path__, "bot."):
    __import__(module.name)
from bot.cli import main
assert main(["--help"]) == 0
from bot.state import connect
from models.errors import ConfigError
try:
    connect(None)
except ConfigError as exc:
    print("refused:", exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: " in done.stdout
    assert "refused: environment: the embedded in-process store" in done.stdout
    assert "pip install 'churnbot[embedded]'" in done.stdout
    assert "set REDIS_URL" in done.stdout


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_linters_are_pinned_exactly_and_locked_at_the_same_version(tool: str) -> None:
    (pin,) = [r for r in _requirements("dev") if r.name == tool]
    (spec,) = pin.specifier
    assert spec.operator == "==", f"pin {tool} exactly in the dev extra, not {pin}"
    assert _locked()[tool] == spec.version


def test_the_lock_satisfies_every_requirement_of_pyproject() -> None:
    locked = _locked()
    for group in (None, *PROJECT["optional-dependencies"]):
        for requirement in _requirements(group):
            name = canonicalize_name(requirement.name)
            if name == "churnbot":  # the dev extra naming another extra of the project
                continue
            assert name in locked, f"{requirement} ({group or 'runtime'}) is not locked"
            assert requirement.specifier.contains(locked[name], prereleases=True), (
                f"requirements.lock has {name}=={locked[name]}, outside {requirement}"
            )
            for extra in requirement.extras:  # e.g. fakeredis[lua] brings lupa
                for needed in _extra_requirements(requirement.name, extra):
                    assert canonicalize_name(needed.name) in locked, (
                        f"{needed}, needed by {requirement}, is not locked"
                    )


def _extra_requirements(distribution: str, extra: str) -> list[Requirement]:
    """What ``distribution[extra]`` adds, read from the installed package's metadata."""
    every = [Requirement(spec) for spec in metadata.requires(distribution) or []]
    return [r for r in every if r.marker is not None and r.marker.evaluate({"extra": extra})]


def test_make_installs_from_the_lock_then_the_project_without_dependencies() -> None:
    makefile = (REPO / "Makefile").read_text()
    rule = re.search(r"^\$\(STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert rule, "the Makefile has no $(STAMP) rule"
    prerequisites, recipe = rule[1].split(), rule[2]
    assert {"pyproject.toml", "requirements.lock"} <= set(prerequisites)
    lock = recipe.index("pip install --quiet -r requirements.lock")
    project = recipe.index("pip install --quiet --no-deps -e '.[dev]'")
    assert lock < project
    assert recipe.count("pip install") == 3, "pip itself, the lock, the project: nothing else"
