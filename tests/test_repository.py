"""The repository explains itself: no comment sends a reader to a document it does not hold."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("bot", "models", "tests", "bench", "scripts", "config", "deploy")
TOP_FILES = ("README.md", "Makefile", "Procfile", "pyproject.toml")
#: A file name in capitals ending in ".md", the way project documents are named.
DOCUMENT = re.compile(r"\b([A-Z][A-Z0-9_-]*\.md)\b")


def _texts() -> dict[Path, str]:
    files = [REPO / name for name in TOP_FILES]
    files += [
        path
        for folder in FOLDERS
        for path in sorted((REPO / folder).rglob("*"))
        if path.is_file() and path.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ""}
    ]
    return {path: path.read_text(errors="replace") for path in files if path.exists()}


def test_every_document_a_file_names_is_in_the_repository() -> None:
    held = {path.name for path in REPO.rglob("*.md") if ".venv" not in path.parts}
    missing = [
        f"{path.relative_to(REPO)}:{text.count(chr(10), 0, match.start()) + 1}: {match[1]}"
        for path, text in _texts().items()
        for match in DOCUMENT.finditer(text)
        if match[1] not in held
    ]
    assert not missing, "say it in the comment instead of pointing to:\n" + "\n".join(missing)
