"""Confidences a person can trust: a reading the gazetteer contradicts never passes as sure, and
the feature recalibration applies to exactly the engine set it was fitted for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from handwriting_pipeline.ensemble.recalibrate import feature_rows, fit_recalibration
from handwriting_pipeline.ensemble.vote import FEATURES, vote_form, vote_params

PROJECT = Path(__file__).resolve().parents[2]
VOTE = yaml.safe_load((PROJECT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]["vote"]


def _reading(city, state, zip_code, conf=0.99):
    return ({"DATE": "8/28/89", "CITY": city, "STATE": state, "ZIP": zip_code},
            {"DATE": conf, "CITY": conf, "STATE": conf, "ZIP": conf})


def test_a_contradicted_reading_goes_to_review():
    params = vote_params(VOTE)
    threshold = params.review_threshold
    # make run's digitize demo: Cabazon, CA is 92230; 49230 is a Michigan ZIP (a 9 read as 4)
    both = {"rapidocr": _reading("Cabazon", "CA", "49230"), "tesseract": _reading("Cabazon", "CA", "49230")}
    fields, conf, _ = vote_form(both, params)
    assert fields["ZIP"] == "49230"
    assert conf["ZIP"] < threshold and conf["STATE"] < threshold
    right = {"rapidocr": _reading("Cabazon", "CA", "92230"), "tesseract": _reading("Cabazon", "CA", "92230")}
    fields, conf, _ = vote_form(right, params)
    assert min(conf["CITY"], conf["STATE"], conf["ZIP"]) >= threshold
    # a CITY the ZIP does not list, and a ZIP the database does not know
    _, conf, _ = vote_form({"rapidocr": _reading("Cabazan", "CA", "92230")}, params)
    assert conf["CITY"] < threshold
    _, conf, _ = vote_form({"rapidocr": _reading("Cabazon", "CA", "00001")}, params)
    assert conf["ZIP"] < threshold


def test_recalibration_only_for_its_engine_set():
    model = {"intercept": -4.0, "coef": {f: 0.0 for f in FEATURES}}
    params = vote_params({**VOTE, "recalibration": {"rapidocr+tesseract": {"DATE": model}}})
    readings = {"rapidocr": _reading("Cabazon", "CA", "92230"), "tesseract": _reading("Cabazon", "CA", "92230")}
    _, conf, _ = vote_form(readings, params)
    assert conf["DATE"] < 0.02 and conf["CITY"] >= params.review_threshold
    _, conf, _ = vote_form({"rapidocr": readings["rapidocr"]}, params)
    assert conf["DATE"] >= params.review_threshold


def test_recalibration_fitted_on_recorded_train_outputs(shared_hsf_top, shared_ocr_outputs):
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.recorded_csv import read_predictions_csv

    forms, _ = read_donut_folder(shared_hsf_top / "train", split="train")
    labels = forms.labels.tail(150)
    tables = {m: read_predictions_csv(shared_ocr_outputs / f"{m.removeprefix('recorded_')}.csv")
              for m in ("recorded_textract", "recorded_azure_form_recognizer")}
    tables = {m: t[t["file_name"].isin(labels["file_name"])] for m, t in tables.items()}
    rows = feature_rows(labels, tables, VOTE)
    assert set(rows["field"]) == {"DATE", "CITY", "STATE", "ZIP"} and rows["right"].any() and not rows["right"].all()
    models = fit_recalibration(rows)

    def log_loss(p, y):
        p = np.clip(p, 1e-4, 1 - 1e-4)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    raw = 1 / (1 + np.exp(-rows["logit_conf"].to_numpy()))
    z = np.array([models[f]["intercept"] + sum(w * r[n] for n, w in models[f]["coef"].items())
                  for f, r in zip(rows["field"], rows.to_dict("records"))])
    y = rows["right"].to_numpy(float)
    assert log_loss(1 / (1 + np.exp(-z)), y) < log_loss(raw, y)
