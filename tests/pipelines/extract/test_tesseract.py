"""Tesseract engine (optional: skipped without the Debian tesseract-ocr binary) on real crops."""

from __future__ import annotations

import shutil

import pytest

from handwriting_pipeline.datasets.forms import read_donut_folder
from handwriting_pipeline.engines.tesseract_engine import TesseractEngine
from handwriting_pipeline.metrics import aggregate, score_forms

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None,
                                reason="tesseract binary not installed (apt-get install tesseract-ocr)")

N_FORMS = 5
# Measured on these 5 crops (first 5 of validation/metadata.jsonl), 2026-11-21, tesseract 5.3
# (Debian 12): CBA 29.0 (all 199 validation crops: FLA 3.5 / CBA 39.0). Floor a little below.
CBA_FLOOR = 22.0


def test_reads_real_crops_with_shared_layout(shared_validation) -> None:
    forms, _ = read_donut_folder(shared_validation)
    subset = forms.subset(forms.labels["file_name"].tolist()[:N_FORMS])
    engine = TesseractEngine()
    engine.check_ready()
    import pandas as pd

    records = []
    for name in subset.labels["file_name"]:
        result = engine.read(subset.images[name], name)
        assert result.error is None
        assert result.raw["found_boxes"]  # same box finding as RapidOCR
        records.append({"file_name": name, **result.fields})
    scores = aggregate(score_forms(subset.labels, pd.DataFrame(records)))
    print("tesseract on", N_FORMS, "validation crops:", scores)
    assert scores["CBA"] >= CBA_FLOOR  # Tesseract is a print engine: weak on handwriting


def test_missing_binary_clear_message() -> None:
    with pytest.raises(RuntimeError, match="apt-get install tesseract-ocr"):
        TesseractEngine(cmd="/nonexistent/tesseract").check_ready()
