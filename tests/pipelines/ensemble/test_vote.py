"""The offline vote: repairs, validators and gazetteer that never change case, alignment
voting, and the vote against each single engine on the shared validation crops."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from handwriting_pipeline.datasets.forms import read_donut_folder
from handwriting_pipeline.ensemble import align_vote, repair_fields, vote_form
from handwriting_pipeline.ensemble.vote import gazetteer_factor, vote, vote_params
from handwriting_pipeline.fields import KEYS, NONE, row_fields
from handwriting_pipeline.metrics import aggregate, score_forms
from handwriting_pipeline.predictions import COLUMNS, predictions_from_records

PROJECT = Path(__file__).resolve().parents[3]


def ensemble_params() -> dict:
    return yaml.safe_load((PROJECT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]


def recorded(path: Path, scale: float) -> pd.DataFrame:
    """A recorded engine CSV as a predictions table (the calibrate command's reader)."""
    from handwriting_pipeline.recorded_csv import read_predictions_csv

    return read_predictions_csv(str(path), scale)


# --------------------------------------------------------------------------- repairs
@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"CITY": "UPLAND, CALIFORNIA", "STATE": "None", "ZIP": "91786"}, ("UPLAND", "CALIFORNIA", "91786")),
        ({"CITY": "New Alexandria PA 15670", "STATE": "None", "ZIP": "None"}, ("New Alexandria", "PA", "15670")),
        ({"CITY": "Fircrest,", "STATE": "wa", "ZIP": "98446"}, ("Fircrest", "wa", "98446")),
        ({"CITY": "CAPECORAL", "STATE": ", FL", "ZIP": "33914"}, ("CAPECORAL", "FL", "33914")),
        ({"CITY": "KOUNTZE", "STATE": "Tex77625", "ZIP": "None"}, ("KOUNTZE", "Tex", "77625")),
        ({"CITY": "Dallas , Tx.", "STATE": "None", "ZIP": "None"}, ("Dallas", "Tx.", "None")),
        # city names that end like a state are not split when STATE is filled or nothing is left
        ({"CITY": "Kansas City", "STATE": "None", "ZIP": "None"}, ("Kansas City", "None", "None")),
        ({"CITY": "Washington", "STATE": "None", "ZIP": "20001"}, ("Washington", "None", "20001")),
        ({"CITY": "PHILA.", "STATE": "Pa.", "ZIP": "19121"}, ("PHILA.", "Pa.", "19121")),
        ({"CITY": "DETROIT MICH", "STATE": "MICH", "ZIP": "48201"}, ("DETROIT", "MICH", "48201")),
        ({"CITY": "MiAMi , FLA", "STATE": "Fla", "ZIP": "33101"}, ("MiAMi", "Fla", "33101")),
        ({"CITY": "LAGUNA", "STATE": "HILLS CA", "ZIP": "92653"}, ("LAGUNA HILLS", "CA", "92653")),
        ({"CITY": "Wheeling", "STATE": "West Virginia", "ZIP": "26003"}, ("Wheeling", "West Virginia", "26003")),
        ({"CITY": "Charleston West Virginia", "STATE": "None", "ZIP": "None"}, ("Charleston", "West Virginia", "None")),
        ({"CITY": "Cleveland", "STATE": "OH10", "ZIP": "44108"}, ("Cleveland", "OH10", "44108")),
        ({"CITY": "Lansing", "STATE": "MI 48813", "ZIP": "48813"}, ("Lansing", "MI", "48813")),
    ],
)
def test_repair_fields_moves_parts_and_keeps_case(raw, expected):
    fixed = repair_fields({"DATE": "8/8/89", **raw})
    assert (fixed["CITY"], fixed["STATE"], fixed["ZIP"]) == expected
    assert fixed["DATE"] == "8/8/89"


# --------------------------------------------------------------------------- alignment
def test_align_vote_per_position_majority():
    assert align_vote([("Portland", 1.0), ("Porthand", 0.9), ("Portlamd", 0.8)]) == "Portland"
    # insertions and deletions are voted too
    assert align_vote([("Valdasta", 0.9), ("Valdosta", 0.8), ("Valdossta", 0.7), ("Vldosta", 0.6)]) == "Valdosta"
    # two candidates cannot out-vote each other: the heavier one stays
    assert align_vote([("Ogden", 0.5), ("OadeN", 0.9)]) == "OadeN"


def test_alignment_candidate_used_when_three_engines_disagree():
    readings = {
        e: ({"DATE": "8-11-89", "CITY": city, "STATE": "Or", "ZIP": "97230"},
            {"DATE": 0.9, "CITY": 0.5, "STATE": 0.9, "ZIP": 0.9})
        for e, city in [("a", "Porthand"), ("b", "Portlamd"), ("c", "Pontland")]
    }
    # without the gazetteer the consensus is offered but a reading an engine made still wins
    no_gazetteer = vote_params({"gazetteer": {"state_match": 1.0, "state_mismatch": 1.0, "city_match": 1.0}})
    fields, _, cands = vote_form(readings, no_gazetteer)
    assert cands["CITY"]["alignment"] == "Portland"
    assert fields["CITY"] in {"Porthand", "Portlamd", "Pontland"}
    # the gazetteer knows Portland, OR 97230: the consensus wins, spelled as the engines read it
    fields, _, _ = vote_form(readings, vote_params({}))
    assert fields["CITY"] == "Portland"
    # no consensus with only two engines
    two = {e: readings[e] for e in ("a", "b")}
    assert "alignment" not in vote_form(two, vote_params({}))[2]["CITY"]


# --------------------------------------------------------------------------- validators, gazetteer
def test_gazetteer_picks_consistent_state_without_changing_case():
    # two equally trusted engines disagree on STATE; ZIP 48456 is in Michigan
    readings = {
        "a": ({"DATE": "8-3-89", "CITY": "MINDEN CITY", "STATE": "mi", "ZIP": "48456"},
              {"DATE": 0.8, "CITY": 0.8, "STATE": 0.6, "ZIP": 0.8}),
        "b": ({"DATE": "8-3-89", "CITY": "MINDEN CITY", "STATE": "MO", "ZIP": "48456"},
              {"DATE": 0.8, "CITY": 0.8, "STATE": 0.6, "ZIP": 0.8}),
    }
    fields, conf, _ = vote_form(readings, vote_params({}))
    assert fields["STATE"] == "mi"  # the writer's lower case, not the gazetteer's "MI"
    assert fields["CITY"] == "MINDEN CITY"
    assert gazetteer_factor("Minden City", "mi", "48456", vote_params({})) > 1 > gazetteer_factor(
        "Minden City", "MO", "48456", vote_params({}))


def test_invalid_zip_and_state_lose_to_valid_ones():
    readings = {
        "a": ({"DATE": "8/5/89", "CITY": "Cleveland", "STATE": "OH10", "ZIP": "H4108"},
              {"DATE": 0.9, "CITY": 0.9, "STATE": 0.7, "ZIP": 0.7}),
        "b": ({"DATE": "8/5/89", "CITY": "Cleveland", "STATE": "OHIO", "ZIP": "44108"},
              {"DATE": 0.9, "CITY": 0.9, "STATE": 0.6, "ZIP": 0.6}),
    }
    fields, conf, _ = vote_form(readings, vote_params({}))
    assert fields == {"DATE": "8/5/89", "CITY": "Cleveland", "STATE": "OHIO", "ZIP": "44108"}
    assert all(0 < conf[k] <= 1 for k in KEYS)
    assert conf["DATE"] > conf["ZIP"]  # agreement is more certain than a contested field


def test_vote_output_table_and_review_queue():
    a = predictions_from_records([
        {"file_name": "x.png", "DATE": "8/5/89", "CITY": "Ithaca", "STATE": "N.Y.", "ZIP": "14850",
         "DATE_conf": 0.9, "CITY_conf": 0.9, "STATE_conf": 0.9, "ZIP_conf": 0.9},
        {"file_name": "y.png", "DATE": "9/1/89", "CITY": "Tampa", "STATE": "Fl.", "ZIP": "33612",
         "DATE_conf": 0.9, "CITY_conf": 0.3, "STATE_conf": 0.9, "ZIP_conf": 0.9},
    ])
    b = predictions_from_records([
        {"file_name": "y.png", "DATE": "9/1/89", "CITY": "Tamba", "STATE": "FI.", "ZIP": "33612",
         "DATE_conf": 0.9, "CITY_conf": 0.3, "STATE_conf": 0.4, "ZIP_conf": 0.9},
    ])
    table, queue = vote({"a": a, "b": b}, {"review_threshold": 0.9})
    assert list(table.columns) == COLUMNS and list(table.file_name) == ["x.png", "y.png"]
    assert table.set_index("file_name").at["x.png", "STATE"] == "N.Y."
    assert {"form", "field", "candidates", "chosen", "confidence"} <= set(queue.columns)
    assert (queue["confidence"] < 0.9).all()
    assert ("y.png", "CITY") in set(zip(queue.form, queue.field))


# --------------------------------------------------------------------------- real validation crops
def test_vote_beats_each_recorded_engine_on_shared_validation(shared_validation, shared_ocr_outputs):
    forms, _ = read_donut_folder(shared_validation)
    names = set(forms.labels.file_name)
    engines = {
        "recorded_textract": recorded(shared_ocr_outputs / "textract.csv", 100.0),
        "recorded_azure_form_recognizer": recorded(shared_ocr_outputs / "azure_form_recognizer.csv", 1.0),
    }
    engines = {e: t[t.file_name.isin(names)].reset_index(drop=True) for e, t in engines.items()}
    single = {e: aggregate(score_forms(forms.labels, t)) for e, t in engines.items()}
    table, queue = vote(engines, ensemble_params()["vote"])
    voted = aggregate(score_forms(forms.labels, table))
    assert voted["FLA"] > max(s["FLA"] for s in single.values())
    assert voted["CBA"] > max(s["CBA"] for s in single.values())
    # every chosen value is one an engine read (after layout repairs), letter case included
    by_engine = {e: {r["file_name"]: repair_fields(row_fields(r)) for r in t.to_dict("records")} for e, t in engines.items()}
    for row in table.to_dict("records"):
        for key in KEYS:
            seen = {by_engine[e][row["file_name"]][key] for e in engines if row["file_name"] in by_engine[e]}
            assert row[key] in seen | {NONE}, (row["file_name"], key, row[key], seen)
    # fields sent to review are wrong more often than fields that are not
    gold = forms.labels.set_index("file_name")
    flagged = set(zip(queue.form, queue.field))
    wrong = {(r["file_name"], k) for r in table.to_dict("records") for k in KEYS if r[k] != gold.at[r["file_name"], k]}
    total = {(r["file_name"], k) for r in table.to_dict("records") for k in KEYS}
    assert len(wrong & flagged) / max(1, len(flagged)) > len(wrong - flagged) / max(1, len(total - flagged))


def test_case_variants_vote_together_and_case_comes_from_the_trusted_engine():
    params = vote_params({"calibration": {
        "keeps_case": {k: {"a": 0.0, "b": 2.0, "p_none": 0.1, "case": 0.95} for k in KEYS},
        "upper_cases": {k: {"a": 0.0, "b": 2.0, "p_none": 0.1, "case": 0.3} for k in KEYS},
        "other": {k: {"a": 0.0, "b": 2.0, "p_none": 0.1, "case": 0.9} for k in KEYS},
    }})
    conf = {k: 0.6 for k in KEYS}
    readings = {
        "keeps_case": ({"DATE": "8/9/89", "CITY": "CleARWATeR", "STATE": "Fla.", "ZIP": "33755"}, conf),
        "upper_cases": ({"DATE": "8/9/89", "CITY": "CLEARWATER", "STATE": "FLA.", "ZIP": "33755"}, conf),
        "other": ({"DATE": "8/9/89", "CITY": "CLEARWAIER", "STATE": "Fla.", "ZIP": "33755"}, {**conf, "CITY": 0.9}),
    }
    fields, _, _ = vote_form(readings, params)
    # two engines read CLEARWATER (in different case) against one more confident misreading
    assert fields["CITY"] == "CleARWATeR" and fields["STATE"] == "Fla."


def test_calibration_in_parameters_is_reproducible_from_the_shared_train_split(shared_hsf_top, shared_ocr_outputs):
    from handwriting_pipeline.training.calibration import fit_calibration

    forms, _ = read_donut_folder(shared_hsf_top / "train")
    names = set(forms.labels.file_name)
    engines = {
        "recorded_textract": recorded(shared_ocr_outputs / "textract.csv", 100.0),
        "recorded_azure_form_recognizer": recorded(shared_ocr_outputs / "azure_form_recognizer.csv", 1.0),
    }
    fitted = fit_calibration(forms.labels, {e: t[t.file_name.isin(names)] for e, t in engines.items()})
    configured = ensemble_params()["vote"]["calibration"]
    for engine in engines:  # (other engines' calibrations come from their own train-split runs)
        for key, values in configured[engine].items():
            for name, value in values.items():
                assert fitted[engine][key][name] == pytest.approx(value, abs=1e-3), (engine, key, name)
            assert fitted[engine][key]["b"] > 0  # higher confidence, more often right


def test_unknown_input_engine_is_a_clear_error():
    from handwriting_pipeline.ensemble.vote import available_inputs

    with pytest.raises(ValueError, match="unknown engines"):
        available_inputs({"textract": predictions_from_records([])}, ["textrac"])


def test_blank_form_reading_survives_a_parquet_round_trip(tmp_path):
    """A missing error read back from Parquet may be NaN (truthy): a blank form read as all
    "None" is still a reading, not a failure (one has_error rule for every reader)."""
    import numpy as np

    from handwriting_pipeline.predictions import failed, has_error, readings_by_form

    frame = pd.DataFrame({"file_name": ["blank.png", "bad.png"], "DATE": ["None", "None"], "CITY": ["None", "None"],
                          "STATE": ["None", "None"], "ZIP": ["None", "None"], "error": [np.nan, "timeout"]})
    frame.to_parquet(tmp_path / "p.parquet")
    back = pd.read_parquet(tmp_path / "p.parquet")
    rows = back.to_dict("records")
    assert not has_error(rows[0]) and has_error(rows[1]) and failed(rows[1]) and not failed(rows[0])
    readings = readings_by_form({"rapidocr": back})
    assert list(readings["blank.png"]) == ["rapidocr"] and readings["bad.png"] == {}
    from handwriting_pipeline.ensemble.vote import vote

    table, _ = vote({"rapidocr": back})
    by_name = table.set_index("file_name")
    assert pd.isna(by_name.loc["blank.png", "error"]) and by_name.loc["blank.png", "DATE"] == "None"
    assert by_name.loc["bad.png", "error"] == "no engine read this form"


def test_calibration_of_a_field_an_engine_always_reads_right_on_held_out_forms(shared_hsf_top):
    """100 held-out forms on which a reader gets every ZIP right: the fit gives a high,
    confidence-independent probability instead of failing."""
    from handwriting_pipeline.training.calibration import fit_calibration

    forms, _ = read_donut_folder(shared_hsf_top / "train")
    labels = forms.labels.tail(100)
    table = labels.assign(**{f"{k}_conf": 0.9 for k in ("DATE", "CITY", "STATE", "ZIP")})
    fitted = fit_calibration(labels, {"reader": table})["reader"]
    for key in ("DATE", "CITY", "STATE", "ZIP"):
        p = 1 / (1 + math.exp(-(fitted[key]["a"] + fitted[key]["b"] * 0.9)))
        assert fitted[key]["b"] == 0.0 and 0.95 < p < 1.0


def test_calibration_of_another_form_covers_every_field_of_its_spec():
    """A reader of the order card is calibrated on all seven card fields (not only the four
    names it shares with the HSF form): a field it reads right when sure gets a rising curve."""
    import numpy as np

    from handwriting_pipeline.fields.formspec import load_form
    from handwriting_pipeline.fields.types import type_of
    from handwriting_pipeline.synthetic.values import sample_value
    from handwriting_pipeline.training.calibration import fit_calibration

    card = load_form("order_card")
    rng = np.random.default_rng(0)
    labels = pd.DataFrame([{"file_name": f"card_{i}.png", **{f.name: sample_value(rng, type_of(f), {})
                                                             for f in card.fields}} for i in range(60)])
    sure = rng.random(len(labels)) < 0.5  # sure readings right, unsure ones misread
    table = labels.copy()
    for key in card.keys:
        table[key] = [v if ok else v + "7" for v, ok in zip(labels[key], sure)]
        table[f"{key}_conf"] = np.where(sure, 0.95, 0.3)
    fitted = fit_calibration(labels, {"reader": table}, form=card)["reader"]
    assert list(fitted) == list(card.keys)  # ORDER_NO, AMOUNT and PHONE too
    for key in card.keys:
        assert fitted[key]["b"] > 0, key
    hsf_only = fit_calibration(labels, {"reader": table})["reader"]  # without the form: the HSF four
    assert list(hsf_only) == ["DATE", "CITY", "STATE", "ZIP"]
