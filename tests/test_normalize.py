"""Normalized fields beside the as-written ones: rules and metrics."""

import json
from pathlib import Path

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader

from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.fields import NONE
from handwriting_pipeline.fields.normalize import (
    DEFAULT_OPTIONS,
    NORMALIZED_COLUMNS,
    NormalizeOptions,
    normalize_date,
    normalize_record,
    normalize_state,
    normalize_zip,
)
from handwriting_pipeline.metrics import (
    NORMALIZED_METRIC_COLUMNS,
    exact_ignoring,
    normalized_metrics_row,
    score_forms_normalized,
)
from handwriting_pipeline.pipelines.evaluation.nodes import (
    render_report,
    score_normalized,
    summarise_metrics,
)
from handwriting_pipeline.predictions import predictions_from_records

PROJECT = Path(__file__).resolve().parents[1]

# DATE strings exactly as they appear in ../shared/data/hsf_top/{train,validation}/metadata.jsonl, with the
# date they mean (month first, 2-digit years in 1900-1999). "" = not a complete calendar date.
TRAIN_DATES = {
    "8-4-89": "1989-08-04", "8/10/89": "1989-08-10", "9/12/89": "1989-09-12", "8-17-89": "1989-08-17",
    "08 03 89": "1989-08-03", "08 AUG 89": "1989-08-08", "11 AUG 89": "1989-08-11", "15 SEP1989": "1989-09-15",
    "16 August'89": "1989-08-16", "17 SEPT. 89": "1989-09-17", "20 Sept, 1989": "1989-09-20",
    "28 aug. 89": "1989-08-28", "4 AUG89": "1989-08-04", "5 AUGUST '89": "1989-08-05",
    "8-23 89": "1989-08-23", "AUG 5,89": "1989-08-05", "AUG-22-89": "1989-08-22", "AUG. 23.89": "1989-08-23",
    "AUG. 28,'89": "1989-08-28", "AUG. 9.1989": "1989-08-09", "AUG.5 89": "1989-08-05",
    "AUGUST 24-89": "1989-08-24", "Aug, 5,1989": "1989-08-05", "Aug. 10. 1989": "1989-08-10",
    "Aug. 24/89": "1989-08-24", "AugusT 24-1989": "1989-08-24", "August25,1959": "1959-08-25",
    "Aus 24,1989": "1989-08-24", "SePT. 1,1989": "1989-09-01", "Sept 191989": "1989-09-19",
    "Sept.16/89": "1989-09-16", "September 23,1989": "1989-09-23", "aug. 08,1989": "1989-08-08",
    "080889": "1989-08-08", "082289": "1989-08-22",
    # incomplete or not a date: month/year only, no year, a 3-digit year, missing
    "08-89": "", "08/11": "", "Aug 8": "", "Sept.23": "", "September 26": "", "8/28/199": "",
    "August 9, 198": "", "None": "",
}


def _train_dates(shared_hsf_top: Path) -> set[str]:
    dates = set()
    for split in ("train", "validation"):
        with open(shared_hsf_top / split / "metadata.jsonl", encoding="utf-8") as fh:
            for line in fh:
                dates.add(json.loads(json.loads(line)["ground_truth"])["gt_parse"]["DATE"])
    return dates


def test_the_date_table_holds_real_labels(shared_hsf_top):
    missing = set(TRAIN_DATES) - _train_dates(shared_hsf_top)
    assert not missing, f"not in the shared labels: {missing}"


@pytest.mark.parametrize("written, iso", sorted(TRAIN_DATES.items()))
def test_real_date_shapes_parse_to_iso(written, iso):
    assert normalize_date(written) == iso


def test_every_labelled_date_is_parsed_or_left_empty(shared_hsf_top):
    dates = _train_dates(shared_hsf_top)
    parsed = {d: normalize_date(d) for d in dates}
    assert all(v == "" or (len(v) == 10 and v[4] == "-") for v in parsed.values())
    # all but a handful of the ~430 distinct real labels are complete dates, all in the 1900s
    # (the forms are from 1989; some writers wrote another year: "08/24/09", "August25,1959")
    assert sum(v == "" for v in parsed.values()) <= 15
    assert all("1900" <= v[:4] <= "1999" for v in parsed.values() if v)


@pytest.mark.parametrize(
    "written, start, iso",
    [("8/28/89", 1900, "1989-08-28"), ("8/28/05", 1900, "1905-08-28"), ("8/28/05", 1950, "2005-08-28"),
     ("8/28/89", 1950, "1989-08-28"), ("28/8/89", 1900, "1989-08-28"), ("Aug 28, 2005", 1900, "2005-08-28"),
     ("13/13/89", 1900, ""), ("2/30/89", 1900, ""), ("Mat 5 89", 1900, "")],
)
def test_two_digit_year_window_and_impossible_dates(written, start, iso):
    assert normalize_date(written, start) == iso


@pytest.mark.parametrize(
    "written, code",
    [("KY", "KY"), ("ky", "KY"), ("Ky.", "KY"), ("k.y.", "KY"), ("Kentucky", "KY"), ("KENTUCKY", "KY"),
     ("North CAROliNA", "NC"), ("n.c.", "NC"), ("N. C.", "NC"), ("NewYork", "NY"), ("n. y.", "NY"),
     ("Calif.", "CA"), ("CALif", "CA"), ("Penna", "PA"), ("Mass.", "MA"), ("W.Va.", "WV"), ("N.Dak.", "ND"),
     ("So. Carolina", "SC"), ("D.C.", "DC"), ("IDAMO", "ID"), ("WinscoNsiN", "WI"),
     ("None", ""), ("PARK", ""), ("R", ""), ("Po", "")],
)
def test_state_names_and_abbreviations_map_to_usps_codes(written, code):
    assert normalize_state(written) == code


def test_state_misspelling_allowance_is_a_parameter():
    assert normalize_state("IDAMO", state_name_max_edits=0) == ""


@pytest.mark.parametrize(
    "written, zip5, zip4",
    [("42071", "42071", ""), ("42071-1234", "42071", "1234"), ("42071 1234", "42071", "1234"),
     ("420711234", "42071", "1234"), ("4207", "", ""), ("4207I", "", ""), ("None", "", "")],
)
def test_zip5_and_zip4(written, zip5, zip4):
    assert normalize_zip(written) == (zip5, zip4)


def test_misspelled_city_takes_the_gazetteer_spelling_only_when_zip_and_state_agree():
    ok = normalize_record({"DATE": "8/28/89", "CITY": "murrey", "STATE": "Ky.", "ZIP": "42071"})
    assert ok == {"DATE_iso": "1989-08-28", "DATE_verified": True, "CITY_name": "Murray", "CITY_verified": True,
                  "STATE_code": "KY", "STATE_verified": True, "ZIP5": "42071", "ZIP4": "", "ZIP_verified": True}
    wrong_state = normalize_record({"CITY": "murrey", "STATE": "TN", "ZIP": "42071"})
    assert (wrong_state["CITY_name"], wrong_state["CITY_verified"], wrong_state["STATE_verified"]) == \
        ("Murrey", False, False)
    no_zip = normalize_record({"CITY": "murrey", "STATE": "KY", "ZIP": "None"})
    assert (no_zip["CITY_name"], no_zip["CITY_verified"], no_zip["ZIP5"]) == ("Murrey", False, "")
    wrong_zip = normalize_record({"CITY": "murrey", "STATE": "KY", "ZIP": "90033"})  # a Los Angeles ZIP
    assert (wrong_zip["CITY_name"], wrong_zip["CITY_verified"], wrong_zip["ZIP_verified"]) == \
        ("Murrey", False, False)
    too_far = normalize_record({"CITY": "Marion", "STATE": "KY", "ZIP": "42071"})  # not Murray's ZIP's city
    assert (too_far["CITY_name"], too_far["CITY_verified"], too_far["STATE_verified"]) == ("Marion", False, True)


@pytest.mark.parametrize(
    "city, state, zip_code, name",
    [("DouglasVILLE", "GA.", "30134", "Douglasville"), ("St. Louis", "MO", "63101", "Saint Louis"),
     ("FT.WORTH", "TX", "76104", "Fort Worth"), ("No.Hollywood", "CA", "91606", "North Hollywood"),
     ("LOS ANGELES", "CA", "90033", "Los Angeles"), ("PITTSBURCH", "PA", "15213", "Pittsburgh")],
)
def test_city_case_punctuation_abbreviations_and_small_misspellings(city, state, zip_code, name):
    out = normalize_record({"CITY": city, "STATE": state, "ZIP": zip_code})
    assert (out["CITY_name"], out["CITY_verified"]) == (name, True)


def test_written_values_are_not_modified_and_missing_values_are_empty():
    written = {"DATE": "Aug 8", "CITY": "  o'fallon ", "STATE": "PARK", "ZIP": NONE}
    before = dict(written)
    out = normalize_record(written)
    assert written == before
    assert list(out) == NORMALIZED_COLUMNS
    assert out == {"DATE_iso": "", "DATE_verified": False, "CITY_name": "O'Fallon", "CITY_verified": False,
                   "STATE_code": "", "STATE_verified": False, "ZIP5": "", "ZIP4": "", "ZIP_verified": False}


def test_code_defaults_equal_the_parameters_file():
    conf = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")
    assert dict(conf["parameters"]["evaluation"]["normalize"]) == DEFAULT_OPTIONS
    assert NormalizeOptions.from_params(None) == NormalizeOptions(**DEFAULT_OPTIONS)
    with pytest.raises(ValueError, match="unknown options"):
        NormalizeOptions.from_params({"century": 1900})


# --------------------------------------------------------------------------- metrics
LABELS = pd.DataFrame([
    {"file_name": "a.png", "DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"},
    {"file_name": "b.png", "DATE": "Aug. 10, 1989", "CITY": "LOS ANGELES", "STATE": "CA", "ZIP": "90033"},
    {"file_name": "c.png", "DATE": "9/12/89", "CITY": "Two Rivers", "STATE": "Wi", "ZIP": "54241"},
    {"file_name": "d.png", "DATE": "8-4-89", "CITY": "St. Louis", "STATE": "MO", "ZIP": "63101"},
    {"file_name": "e.png", "DATE": "9/12/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"},
])
PREDICTIONS = [
    # a: exactly as written
    {"file_name": "a.png", "DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"},
    # b: the date written another way, CITY in other case: wrong as written, right normalized
    {"file_name": "b.png", "DATE": "8/10/89", "CITY": "Los Angeles", "STATE": "CA", "ZIP": "90033"},
    # c: case only (STATE): right ignoring case, loose and normalized
    {"file_name": "c.png", "DATE": "9/12/89", "CITY": "Two Rivers", "STATE": "WI", "ZIP": "54241"},
    # d: punctuation, spaces and case ("StLouis", "Mo."): right loose and normalized
    {"file_name": "d.png", "DATE": "8-4-89", "CITY": "StLouis", "STATE": "Mo.", "ZIP": "63101"},
    # e: a ZIP digit lost: wrong everywhere but DATE_iso, CITY_name ("Murray" either way), STATE_code
    {"file_name": "e.png", "DATE": "9/12/89", "CITY": "Murray", "STATE": "KY", "ZIP": "4207"},
]


def test_exact_ignoring_case_and_punctuation():
    gold = {"DATE": "8-4-89", "CITY": "St. Louis", "STATE": "MO", "ZIP": "63101"}
    assert exact_ignoring(gold, {**gold, "CITY": "ST. LOUIS"})
    assert not exact_ignoring(gold, {**gold, "CITY": "St Louis"})
    assert exact_ignoring(gold, {**gold, "CITY": "st louis", "DATE": "8 4 89"}, punctuation=True)
    assert not exact_ignoring(gold, {**gold, "DATE": "8/5/89"}, punctuation=True)


def test_normalized_metrics_on_a_hand_made_table_equal_hand_computed_values():
    per_form = score_forms_normalized(LABELS, predictions_from_records(PREDICTIONS))
    row = normalized_metrics_row("m", per_form)
    # FLA as written: a (1/5). Ignoring case: a, c (2/5). Loose: a, c, d (3/5).
    # Normalized: DATE, CITY (Murray, Los Angeles, Two Rivers, Saint Louis, Murray) and STATE right
    # on all 5; ZIP5 on a-d (4/5) -> forms right when normalized: a-d (4/5).
    # Address verified (CITY, STATE, ZIP agree in the gazetteer): a-d (4/5).
    assert row == {"method": "m", "n": 5, "FLA": 20.0, "FLA_nocase": 40.0, "FLA_loose": 60.0, "DATE_iso": 100.0,
                   "CITY_name": 100.0, "STATE_code": 100.0, "ZIP5": 80.0, "FLA_normalized": 80.0,
                   "address_verified": 80.0}
    d = per_form.set_index("file_name").loc["d.png"]
    assert (d["CITY"], d["CITY_name"], d["gold_CITY_name"], d["STATE_code"]) == \
        ("StLouis", "Saint Louis", "Saint Louis", "MO")


def test_a_missing_prediction_counts_as_all_none():
    per_form = score_forms_normalized(LABELS, predictions_from_records(PREDICTIONS[:1]))
    row = normalized_metrics_row("m", per_form)
    assert row["FLA"] == row["FLA_normalized"] == row["DATE_iso"] == 20.0
    assert per_form["has_prediction"].tolist() == [True, False, False, False, False]


def test_evaluation_node_and_report_section():
    params = {"methods": ["rapidocr", "vote"], "normalize": DEFAULT_OPTIONS, "cost": {}}
    forms = LabelledForms(LABELS)
    tables = {"rapidocr": predictions_from_records(PREDICTIONS),
              "vote": predictions_from_records([{**p, "DATE": "Aug. 28, 1989"} if p["file_name"] == "a.png" else p
                                                for p in PREDICTIONS])}
    per_form, summary = score_normalized(forms, params, **tables)
    assert list(summary.columns) == NORMALIZED_METRIC_COLUMNS
    assert summary["method"].tolist() == ["rapidocr", "vote"]
    assert summary.set_index("method").loc["vote", ["FLA", "FLA_normalized"]].tolist() == [0.0, 80.0]
    assert len(per_form) == 10 and per_form.columns[0] == "method"
    metrics = pd.DataFrame([{"method": "rapidocr", "CBA": 97.5}, {"method": "vote", "CBA": 90.0}])
    report = render_report(metrics, forms, params, normalized=summary)
    assert "## What a database gets: normalized fields" in report
    section = report.split("## What a database gets")[1]
    line = next(li for li in section.splitlines() if li.startswith("| vote "))
    assert [c.strip() for c in line.strip("|").split("|")][:4] == ["vote", "5", "0.00", "90.00"]
    empty_forms, empty_summary = score_normalized(forms, params)
    assert empty_forms.empty and empty_summary.empty
    assert "What a database gets" not in render_report(summarise_metrics(pd.DataFrame(), params), forms, params,
                                                       normalized=empty_summary)


def test_on_the_recorded_outputs_the_loose_rates_bound_the_written_ones(shared_validation, shared_ocr_outputs):
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.pipelines.evaluation.nodes import score_predictions
    from handwriting_pipeline.recorded_csv import read_predictions_csv

    forms, _ = read_donut_folder(shared_validation, split="evaluation")
    tables = {"recorded_textract": read_predictions_csv(shared_ocr_outputs / "textract.csv")}
    params = {"methods": None, "normalize": DEFAULT_OPTIONS, "cost": {}}
    scores, _ = score_predictions(forms, params, **tables)
    metrics = summarise_metrics(scores, params).set_index("method")
    _, summary = score_normalized(forms, params, **tables)
    row = summary.set_index("method").loc["recorded_textract"]
    assert row["n"] == len(forms) and row["FLA"] == metrics.loc["recorded_textract", "FLA"]
    assert row["FLA"] <= row["FLA_nocase"] <= row["FLA_loose"]
    assert row["FLA_normalized"] <= min(row[c] for c in ["DATE_iso", "CITY_name", "STATE_code", "ZIP5"])


def test_catalog_entries_keep_zip_strings(tmp_path):
    from kedro.io import DataCatalog

    conf = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")
    names = ["evaluation_normalized_forms", "evaluation_normalized_metrics"]
    entries = {n: dict(conf["catalog"][n]) for n in names}
    for entry in entries.values():
        entry["filepath"] = str(tmp_path / entry["filepath"])
    catalog = DataCatalog.from_config(entries)
    labels = pd.DataFrame([{"file_name": "a.png", "DATE": "8/28/89", "CITY": "Agawam", "STATE": "MA", "ZIP": "01001"}])
    per_form, summary = score_normalized(LabelledForms(labels), {"methods": ["rapidocr"], "normalize": None},
                                         rapidocr=predictions_from_records(labels.to_dict("records")))
    catalog.save(names[0], per_form)
    catalog.save(names[1], summary)
    loaded = catalog.load(names[0]).iloc[0]
    assert (loaded["ZIP"], loaded["ZIP5"], loaded["gold_ZIP5"], loaded["ZIP4"]) == ("01001", "01001", "01001", "")
    assert catalog.load(names[1])["FLA_normalized"].tolist() == [100.0]
