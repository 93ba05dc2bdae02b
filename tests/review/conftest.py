"""A small real digitize run to review: two shared validation crops (synthetic crops when
../shared is absent) read by RapidOCR through the vote, every field below 0.99 sent to review."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, SHARED

FORMS = ["f0019_38.png", "f0814_03.png"]


def _inputs(folder: Path) -> list[str]:
    validation = SHARED / "hsf_top" / "validation"
    if validation.is_dir():
        return [str(validation / name) for name in FORMS]
    from handwriting_pipeline.digitize.demo import write_demo

    return [str(p) for p in write_demo(folder / "scans", n=2, pages=False)]


def make_run(folder: Path) -> Path:
    """Digitize the inputs with the project's code (plan, read, records) into a run folder."""
    from handwriting_pipeline.datasets.digitize import FILES_KEY
    from handwriting_pipeline.digitize.core import make_plan, read_partition

    extract = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_extract.yml").read_text())["extract"]
    ensemble = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]
    plan = make_plan({"method": "vote", "engines": "rapidocr", "review_threshold": 0.99, "workers": 1,
                      "progress": False}, {**extract, "workers": 1}, ensemble)
    records = read_partition(plan, _inputs(folder))
    run = folder / "run"
    run.mkdir(parents=True)
    with open(run / "forms.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            for name, content in (record.pop(FILES_KEY, None) or {}).items():
                (run / name).parent.mkdir(parents=True, exist_ok=True)
                (run / name).write_bytes(content)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return run


@pytest.fixture(scope="session")
def digitized_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pristine run folder (do not write into it: copy it with ``run_copy``)."""
    return make_run(tmp_path_factory.mktemp("review_run"))


@pytest.fixture
def run_copy(digitized_run: Path, tmp_path: Path) -> Path:
    """A writable copy of the run folder for one test."""
    return Path(shutil.copytree(digitized_run, tmp_path / "run"))


@pytest.fixture
def browser():
    """Debian ``chromium`` headless through Selenium and ``chromium-driver`` (the browser tests
    skip, saying so, when either is missing)."""
    from tests.review.test_browser import CHROMEDRIVER, CHROMIUM

    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (the test extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
