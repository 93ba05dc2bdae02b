"""The HSF layout is read from its form spec (conf/base/forms/hsf_top.yml); code that still
names one of its fields by a string literal is listed here, so the list can only shrink.

Counted with :mod:`ast` (string constants exactly ``"CITY"``, docstrings and comments aside) in
``src/handwriting_pipeline`` and ``benchmarks``. Not counted: ``fields/`` (the HSF spec's
derived constants, the US field types and the HSF rules they wrap) and the tests. A file that
drops a literal lowers its count here; a new one fails the test: read the field names from the
form spec (``hsf_form().keys``, ``line("CSZ").fields``) instead.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LITERAL = "CITY"
NOT_COUNTED = ("src/handwriting_pipeline/fields/",)

#: file -> how many "CITY" literals it still has (the HSF layout still wired into code there)
ALLOWED: dict[str, int] = {
    "benchmarks/llm/llm_benchmark.py": 1,
    "benchmarks/review/review_benchmark.py": 1,
    "benchmarks/review/review_loop.py": 1,
    "src/handwriting_pipeline/digitize/core.py": 1,
    "src/handwriting_pipeline/engines/layout.py": 2,
    "src/handwriting_pipeline/ensemble/settings.py": 1,
    "src/handwriting_pipeline/fieldreader/lexicon.py": 6,
    "src/handwriting_pipeline/metrics.py": 1,
    "src/handwriting_pipeline/synthetic/generator.py": 4,
    "src/handwriting_pipeline/synthetic/values.py": 1,
}


def _literals() -> Counter[str]:
    counts: Counter[str] = Counter()
    for base in ("src/handwriting_pipeline", "benchmarks"):
        for path in sorted((ROOT / base).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(NOT_COUNTED):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            counts[rel] += sum(isinstance(n, ast.Constant) and n.value == LITERAL for n in ast.walk(tree))
    return +counts


def test_field_name_literals_do_not_grow():
    counts = _literals()
    grown = {f: n for f, n in counts.items() if n > ALLOWED.get(f, 0)}
    assert not grown, (f'new "{LITERAL}" literals (read the field names from the form spec instead, '
                       f"handwriting_pipeline.fields.formspec.hsf_form()): {grown}")
    assert sum(counts.values()) <= sum(ALLOWED.values())


def test_the_allowlist_is_current():
    """A file that dropped its literals lowers its count: the list tracks what is left to do."""
    counts = _literals()
    stale = {f: (n, counts.get(f, 0)) for f, n in ALLOWED.items() if counts.get(f, 0) < n}
    assert not stale, f"lower these counts in ALLOWED (allowed, now): {stale}"
