"""Shared test fixtures: the real shared crops (skipped cleanly when ../shared is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from handwriting_pipeline.settings import CONFIG_LOADER_ARGS

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# the project's config resolvers (``${form_data:...}`` in the catalog), for tests that build an
# OmegaConfigLoader of conf/ themselves, as ``kedro run`` does through settings.py
for _name, _resolver in CONFIG_LOADER_ARGS["custom_resolvers"].items():
    OmegaConf.register_new_resolver(_name, _resolver, replace=True)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HWP_SHARED_DIR", PROJECT_ROOT.parent / "shared")) / "data"


def load_script(path: Path, name: str):
    """A script that is not a package module (a benchmark, the docs' hooks) loaded as module ``name``
    (``benchmarks/`` on ``sys.path``, for the benchmarks' ``common``)."""
    import importlib.util
    import sys

    if str(PROJECT_ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (tests that need ../shared/data skip without it)")
    return path


@pytest.fixture(scope="session")
def shared_hsf_top() -> Path:
    """../shared/data/hsf_top: real SD19 top-section crops in Donut layout."""
    return _need(SHARED / "hsf_top")


@pytest.fixture(scope="session")
def shared_validation(shared_hsf_top: Path) -> Path:
    """The 199 real validation crops with metadata.jsonl."""
    return _need(shared_hsf_top / "validation")


@pytest.fixture(scope="session")
def shared_ocr_outputs(shared_hsf_top: Path) -> Path:
    """Recorded, cleaned Textract and Azure outputs (CSV)."""
    return _need(shared_hsf_top / "ocr_outputs")


@pytest.fixture(scope="session")
def shared_page() -> Path:
    """One real full 2560x3300 HSF page."""
    return _need(SHARED / "hsf_page" / "hsf_sample_page.png")
