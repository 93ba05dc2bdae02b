"""The recorded engines reproduce the authors' CSVs (real Textract / Azure outputs)."""

from __future__ import annotations

import logging
import math

import pandas as pd
import pytest

from handwriting_pipeline.datasets.forms import read_donut_folder
from handwriting_pipeline.engines.recorded import RecordedEngine
from handwriting_pipeline.fields import KEYS, clean_value
from handwriting_pipeline.pipelines.extract import nodes


@pytest.mark.parametrize(("csv", "scale"), [("textract.csv", 100.0), ("azure_form_recognizer.csv", 1.0)])
def test_reproduces_csv(shared_ocr_outputs, shared_validation, csv, scale) -> None:
    path = shared_ocr_outputs / csv
    table = pd.read_csv(path, dtype=str, keep_default_na=False).set_index("image_name")
    forms, _ = read_donut_folder(shared_validation)
    names = forms.labels["file_name"].tolist()
    engine = RecordedEngine(path, confidence_scale=scale, method="recorded_x")
    engine.check_ready()
    found = 0
    for name in names:
        result = engine.read(None, name)
        if name not in table.index:
            assert result.error and set(result.fields.values()) == {"None"}
            continue
        found += 1
        row = table.loc[name]
        assert result.usage == {"pages": 1} and result.error is None
        for key in KEYS:
            assert result.fields[key] == clean_value(row[key])  # as written; runs of spaces collapse
            conf_col = f"{key}__CONFIDENCE" if f"{key}__CONFIDENCE" in table.columns else f"{key}_CONFIDENCE"
            if row[key] and row[conf_col]:
                assert result.confidence[key] == pytest.approx(float(row[conf_col]) / scale)
                assert 0.0 <= result.confidence[key] <= 1.0
            elif not row[key]:
                assert math.isnan(result.confidence[key])
    assert found >= 190


def test_zip_leading_zero_and_none_survive(tmp_path) -> None:
    path = tmp_path / "rec.csv"
    path.write_text("image_name,DATE,DATE_CONFIDENCE,CITY,CITY_CONFIDENCE,STATE,STATE_CONFIDENCE,ZIP,ZIP_CONFIDENCE\n"
                    "a.png,8/1/89,0.9,Boston,0.8,,,02134,0.7\n")
    result = RecordedEngine(path).read(None, "a.png")
    assert result.fields == {"DATE": "8/1/89", "CITY": "Boston", "STATE": "None", "ZIP": "02134"}


def test_missing_csv_gives_empty_predictions(tmp_path, caplog) -> None:
    params = {"engines": ["recorded_textract"], "recorded_textract": {"path": str(tmp_path / "nope.csv"),
                                                                      "confidence_scale": 100}}
    forms, _ = _tiny_forms(tmp_path)
    with caplog.at_level(logging.WARNING):
        out = nodes.extract(forms, params, nodes.check_engines(params, {}), method="recorded_textract")
    assert out.empty and "nope.csv" in caplog.text


def _tiny_forms(tmp_path):
    from PIL import Image

    from handwriting_pipeline.datasets.forms import metadata_line

    folder = tmp_path / "forms"
    folder.mkdir()
    Image.new("1", (246, 35), 1).save(folder / "a.png")
    (folder / "metadata.jsonl").write_text(metadata_line("a.png", {"DATE": "1/2/89"}) + "\n")
    return read_donut_folder(folder)


def test_only_recorded_forms_get_rows_and_none_recorded_means_not_run(tmp_path, caplog) -> None:
    forms, _ = _tiny_forms(tmp_path)
    path = tmp_path / "rec.csv"
    header = "image_name,DATE,DATE_CONFIDENCE,CITY,CITY_CONFIDENCE,STATE,STATE_CONFIDENCE,ZIP,ZIP_CONFIDENCE\n"
    params = {"engines": ["recorded_textract"], "workers": 1, "progress": False,
              "recorded_textract": {"path": str(path), "confidence_scale": 100}}
    path.write_text(header + "a.png,1/2/89,90,Boston,80,MA,70,02134,60\nzz.png,1/3/89,90,,,,,,\n")
    out = nodes.extract(forms, params, nodes.check_engines(params, {}), method="recorded_textract")
    assert out["file_name"].tolist() == ["a.png"] and out.loc[0, "ZIP"] == "02134"
    path.write_text(header + "zz.png,1/3/89,90,,,,,,\n")  # e.g. synthetic forms vs the shared recording
    with caplog.at_level(logging.WARNING):
        out = nodes.extract(forms, params, nodes.check_engines(params, {}), method="recorded_textract")
    assert out.empty and "none of the 1 forms" in caplog.text
