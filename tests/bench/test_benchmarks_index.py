"""docs/benchmarks/README.md indexes every committed result: each JSON, markdown and plot in docs/benchmarks is
linked from it, and every file it links exists (a new benchmark is added to the index with its data)."""

from __future__ import annotations

import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"
INDEX = DATA / "README.md"


def _links() -> set[str]:
    return set(re.findall(r"\]\(([^)#]+)\)", INDEX.read_text()))


def test_every_committed_result_is_in_the_index() -> None:
    results = {p.name for p in DATA.iterdir() if p.is_file() and p.suffix in (".json", ".md", ".png")} - {INDEX.name}
    missing = sorted(results - _links())
    assert not missing, f"docs/benchmarks/README.md does not link {missing}"


def test_every_link_in_the_index_exists() -> None:
    broken = sorted(link for link in _links() if not (DATA / link).exists())
    assert not broken, f"docs/benchmarks/README.md links files that do not exist: {broken}"
