"""Which `ATELIER_*` settings the code reads, and which ones the deployment files set.

The set the code reads is derived at check time from the Rust sources: every string literal
`"ATELIER_…"` passed to `config::string/parsed/flag/duration/var` in `services/*/src/**/*.rs`.
A name the deployment files set but the code never reads is a silent no-op in production, so
the check fails on it.
"""

from __future__ import annotations

import re
from pathlib import Path

# `config::duration(\n "ATELIER_X", …)` spans lines, and `parsed::<u32>(` carries a turbofish.
_READ_CALL = re.compile(
    r'\b(?:string|parsed|flag|duration|var|lookup)\s*(?:::\s*<[^>]*>\s*)?\(\s*"(ATELIER_[A-Z0-9_]+)"'
)
# A name in a deployment file: at least one character after the prefix, so prose such as
# "ATELIER_*" is not taken for a setting.
_NAME = re.compile(r"\bATELIER_[A-Z0-9_]*[A-Z0-9]\b")


# A module whose setting names are built at run time lists them in `SETTINGS: &[&str] = &[…];`
# (with a test that holds the list to what the code asks for).
_SETTINGS_LIST = re.compile(r"\bSETTINGS\s*:\s*&\[&str\]\s*=\s*&\[(.*?)\];", re.S)


def names_read_by_code(repo: Path) -> set[str]:
    names: set[str] = set()
    for source in sorted(repo.glob("services/*/src/**/*.rs")):
        text = source.read_text(encoding="utf-8")
        names.update(_READ_CALL.findall(text))
        for block in _SETTINGS_LIST.findall(text):
            names.update(re.findall(r'"(ATELIER_[A-Z0-9_]+)"', block))
    return names


def deployment_files(repo: Path) -> list[Path]:
    """Every file that sets settings: the Dockerfile, the compose files, the chart's templates,
    values, CI values and schema."""
    chart = repo / "helm" / "atelier"
    files = [repo / "deploy" / "Dockerfile", repo / "deploy" / "compose.yaml"]
    files += sorted((repo / "deploy" / "compose").glob("**/*"))
    files += sorted((chart / "templates").glob("**/*"))
    files += [chart / "values.yaml", chart / "values.schema.json"]
    files += sorted((chart / "ci").glob("*.yaml"))
    return [f for f in files if f.is_file()]


def names_in_files(files: list[Path]) -> dict[str, set[Path]]:
    found: dict[str, set[Path]] = {}
    for path in files:
        for name in _NAME.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, set()).add(path)
    return found


def names_in_text(text: str) -> set[str]:
    return set(_NAME.findall(text))
