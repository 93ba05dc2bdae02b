"""The documentation: the site builds offline with ``mkdocs build --strict``, the README stays
short and current, and the generated pages cover what they claim to.

The build imports every module of the package (for the configuration reference), so it takes
tens of seconds; it runs once per session.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _load(path: Path, name: str):
    return load_script(path, name)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs tools are in the test extra: pip install -e '.[test]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    return out


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_the_site_builds_offline_and_strict(site: Path) -> None:
    for page in ["index.html", "getting-started/index.html", "reference/configuration/index.html",
                 "architecture/index.html", "results/index.html", "api/index.html"]:
        assert (site / page).is_file(), page
    api = (site / "api/fieldreader/index.html").read_text(encoding="utf-8")
    assert "FieldReader" in api and ":class:`" not in api  # docstrings rendered, Sphinx roles as code


def test_the_configuration_reference_lists_every_settings_block(site: Path) -> None:
    hooks = _load(ROOT / "docs" / "hooks.py", "docs_hooks")
    page = _text((site / "reference/configuration/index.html").read_text(encoding="utf-8"))
    classes = hooks.settings_classes()
    assert len(classes) > 10
    missing = [f"{c.__qualname__} ({hooks.block_of(c)})" for c in classes if hooks.block_of(c) not in page]
    assert not missing, f"settings blocks missing from the configuration reference: {missing}"


def test_the_architecture_page_has_every_floor_of_the_layering_test(site: Path) -> None:
    from tests.test_layers import FLOORS

    page = _text((site / "architecture/index.html").read_text(encoding="utf-8"))
    assert not [room for room in FLOORS if room not in page]


def test_the_results_pages_include_the_results_files(site: Path) -> None:
    """Included with --8<-- (pymdownx.snippets), not copied: the page shows the file's table."""
    summary = (ROOT / "benchmarks/results/summary.md").read_text(encoding="utf-8")
    first_row = next(line for line in summary.splitlines() if line.startswith("| ") and "reading" not in line)
    reading = first_row.split("|")[1].strip()
    assert reading in _text((site / "results/index.html").read_text(encoding="utf-8"))


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move reference material into docs/"


def test_readme_keeps_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make run" in text and "make test" in text


def test_no_issue_numbers_or_levers_in_the_docs() -> None:
    """What `grep -rn "issue #\\|lever" docs README.md` checks."""
    hits = []
    for path in [README, *sorted(p for p in (ROOT / "docs").rglob("*") if p.is_file())]:
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if "issue #" in line or "lever" in line:
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_the_readme_results_table_is_what_the_results_files_say() -> None:
    summary = _load(ROOT / "benchmarks" / "summary.py", "benchmarks_summary")
    table = summary.table()
    assert summary.readme_block(README.read_text(encoding="utf-8")) == table, \
        "README results table is stale: python benchmarks/summary.py"
    assert (ROOT / "benchmarks/results/summary.md").read_text(encoding="utf-8") == table, \
        "benchmarks/results/summary.md is stale: python benchmarks/summary.py"


@pytest.mark.parametrize("doc", ["README.md", "CONTRIBUTING.md", "benchmarks/README.md"])
def test_relative_links_resolve(doc: str) -> None:
    path = ROOT / doc
    links = re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8"))
    missing = [link for link in links if not (path.parent / link).exists()]
    assert not missing, f"{doc}: links to missing files: {missing}"
