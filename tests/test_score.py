"""``python -m handwriting_pipeline.score``: predictions made elsewhere, scored like the pipeline."""

import json
import subprocess
import sys

import pytest
from nltk import edit_distance

from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.metrics import METRIC_COLUMNS
from handwriting_pipeline.recorded_csv import read_predictions_csv
from handwriting_pipeline.score import main, read_labels

HAND = {  # validation forms whose Textract CBA is worked out by hand in tests/test_metrics.py
    "f0639_24.png": 100 - 100 * 1 / 30,
    "f1598_49.png": 100 - 100 * 16 / 31,
    "f1276_10.png": 100 - 100 * 8 / 24,
    "f1251_10.png": 100 - 100 * 2 / 33,
}


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _article_dict_distance(dict1, dict2):
    """The article's ``dict_distance`` (srsani/hvdu, src/notebooks/utilities.py), as published."""
    dist = [edit_distance(dict1[k].strip(), dict2[k].strip()) for k in dict1]
    lens = [max(len(dict1[k]), len(dict2[k])) for k in dict1]
    return 100 - (sum(dist) / sum(lens)) * 100


@pytest.fixture()
def textract_csv(shared_ocr_outputs):
    return shared_ocr_outputs / "textract.csv"


@pytest.fixture()
def validation_labels(shared_validation):
    return shared_validation / "metadata.jsonl"


# --------------------------------------------------------------------------- real recorded outputs
def test_textract_on_validation_counts_unmatched_names(capsys, textract_csv, validation_labels, shared_hsf_top):
    code, out, _ = _run(capsys, validation_labels, textract_csv, "--json")
    assert code == 0
    result = json.loads(out)
    labels = read_labels(validation_labels)
    train = set(read_labels(shared_hsf_top / "train")["file_name"])
    preds = read_predictions_csv(textract_csv)
    (row,) = result["methods"]
    assert row["method"] == "textract" and row["n"] == len(labels) == result["n_labels"]
    assert row["cost_usd"] is None and row["seconds_per_form"] is None
    assert set(METRIC_COLUMNS) <= set(row)
    # the CSV covers train + validation: every name it has beyond validation is a train form
    assert row["unknown_predictions"] == len(preds) - row["forms_with_prediction"]
    assert set(row["unknown_prediction_names"]) <= train
    assert row["unknown_predictions"] == len(set(preds["file_name"]) - set(labels["file_name"])) > 1000
    # validation forms Textract never saw are the authors' blank copies (all "None")
    missing = row["forms_without_prediction_names"]
    assert row["forms_without_prediction"] == len(missing) == len(labels) - row["forms_with_prediction"]
    assert missing and all(n.startswith("f0067_25_") for n in missing)


def test_textract_on_validation_matches_the_article_formula(capsys, textract_csv, validation_labels):
    """FLA / CBA of the command equal a direct computation with the article's dict_distance.

    (Within 0.005: the project collapses runs of whitespace inside a value before comparing,
    which the article did not; one validation form has a double space in Textract's STATE.)"""
    _, out, _ = _run(capsys, validation_labels, textract_csv, "--json")
    row = json.loads(out)["methods"][0]
    labels = read_labels(validation_labels).set_index("file_name")
    preds = read_predictions_csv(textract_csv).set_index("file_name")
    cbas, exacts = [], []
    for name, gold in labels[list(KEYS)].iterrows():
        pred = preds.loc[name, list(KEYS)].to_dict() if name in preds.index else {k: "None" for k in KEYS}
        cbas.append(_article_dict_distance(gold.to_dict(), pred))
        exacts.append(gold.to_dict() == pred)
    assert row["CBA"] == pytest.approx(sum(cbas) / len(cbas), abs=0.005)
    assert row["FLA"] == pytest.approx(100 * sum(exacts) / len(exacts), abs=0.005)


def test_hand_checked_forms_through_the_command(capsys, tmp_path, textract_csv, validation_labels):
    """A labels CSV with four real forms and one blank: values worked out by hand."""
    labels = read_labels(validation_labels).set_index("file_name")
    subset = labels.loc[[*HAND, "f0067_25_22.png"]].reset_index()
    labels_csv = tmp_path / "labels.csv"
    subset.to_csv(labels_csv, index=False)
    code, out, _ = _run(capsys, labels_csv, textract_csv, "--json")
    assert code == 0
    row = json.loads(out)["methods"][0]
    assert row["n"] == 5 and row["forms_without_prediction_names"] == ["f0067_25_22.png"]
    assert row["CBA"] == pytest.approx((sum(HAND.values()) + 100) / 5, abs=0.005)
    assert row["FLA"] == pytest.approx(20.0)  # only the blank form: "None" x 4 = its label
    assert row["coverage"] == pytest.approx(40.0)  # f0639_24 and f1251_10 have all four fields
    assert row["CBA_ZIP"] == pytest.approx((100 + 0 + 0 + 100 + 100) / 5, abs=0.005)


def test_text_output_shows_table_and_unmatched_counts(capsys, textract_csv, validation_labels):
    code, out, _ = _run(capsys, validation_labels, textract_csv)
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("| method"))
    assert [c.strip() for c in header.split("|")[1:-1]] == METRIC_COLUMNS
    assert "| textract " in out
    labels, preds = read_labels(validation_labels), read_predictions_csv(textract_csv)
    unknown = len(set(preds["file_name"]) - set(labels["file_name"]))
    missing = len(set(labels["file_name"]) - set(preds["file_name"]))
    assert f"{unknown} predictions for forms not in the labels were ignored" in out
    assert f"{missing} without one count as all \"None\"" in out


def test_module_runs_as_a_command(tmp_path):
    labels = tmp_path / "metadata.jsonl"
    labels.write_text(json.dumps({"file_name": "a.png", "ground_truth": json.dumps(
        {"gt_parse": {"DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42171"}})}) + "\n")
    preds = tmp_path / "mine.csv"
    preds.write_text("image_name,DATE,CITY,STATE,ZIP\na.png,8/28/89,Murray,,\n")
    done = subprocess.run([sys.executable, "-m", "handwriting_pipeline.score", str(tmp_path), str(preds), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["methods"][0]
    assert row["method"] == "mine" and row["CBA"] == pytest.approx(59.09, abs=0.005) and row["FLA"] == 0


# --------------------------------------------------------------------------- values and columns
def _labels(tmp_path, rows):
    path = tmp_path / "labels.csv"
    path.write_text("file_name,DATE,CITY,STATE,ZIP\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_zip_leading_zero_none_and_empty_cells_survive(capsys, tmp_path):
    labels = _labels(tmp_path, ["a.png,9/1/89,Boston,MA,02134", "b.png,None,None,None,None"])
    preds = tmp_path / "p.csv"
    preds.write_text("file_name,DATE,CITY,STATE,ZIP,DATE_CONFIDENCE\na.png,9/1/89,Boston,MA,02134,0.9\nb.png,,,None,,\n")
    code, out, _ = _run(capsys, labels, preds, "--json")
    row = json.loads(out)["methods"][0]
    assert code == 0 and row["FLA"] == 100.0 and row["CBA"] == 100.0 and row["coverage"] == 50.0


def test_csv_option_writes_metrics_columns(capsys, tmp_path):
    labels = _labels(tmp_path, ["a.png,9/1/89,Boston,MA,02134"])
    preds = tmp_path / "p.csv"
    preds.write_text("image_name,DATE,CITY,STATE,ZIP\na.png,9/1/89,Boston,MA,02134\n")
    out_csv = tmp_path / "out" / "metrics.csv"
    assert _run(capsys, labels, preds, "--csv", out_csv)[0] == 0
    assert out_csv.read_text().splitlines()[0] == ",".join(METRIC_COLUMNS)


def test_split_option_filters_a_curated_labels_csv(capsys, tmp_path):
    path = tmp_path / "curated.csv"
    path.write_text("file_name,split,DATE,CITY,STATE,ZIP\na.png,test,1,2,3,4\nb.png,train,1,2,3,4\n")
    preds = tmp_path / "p.csv"
    preds.write_text("image_name,DATE,CITY,STATE,ZIP\na.png,1,2,3,4\n")
    code, out, _ = _run(capsys, path, preds, "--split", "test", "--json")
    row = json.loads(out)["methods"][0]
    assert code == 0 and row["n"] == 1 and row["FLA"] == 100.0


# --------------------------------------------------------------------------- malformed input
@pytest.mark.parametrize(
    "content, problem",
    [
        ("image_name,DATE,CITY,ZIP\na.png,1,2,3\n", "missing columns STATE"),
        ("name,DATE,CITY,STATE,ZIP\na.png,1,2,3,4\n", "no 'image_name' or 'file_name' column"),
        ("image_name,DATE,CITY,STATE,ZIP\na.png,1,2,3,4\nb.png,1,2,3,4\na.png,1,2,3,4\n",
         "1 file names appear more than once (a.png)"),
        ("image_name,DATE,CITY,STATE,ZIP\n,1,2,3,4\n", "rows without a file name (lines 2)"),
        ("image_name,file_name,DATE,CITY,STATE,ZIP\na.png,a.png,1,2,3,4\n", "several file name columns"),
        ("", "the file is empty"),
    ],
)
def test_malformed_predictions_csv_is_a_clear_error(capsys, tmp_path, content, problem):
    labels = _labels(tmp_path, ["a.png,1,2,3,4"])
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    code, out, err = _run(capsys, labels, bad)
    assert code == 2 and out == ""
    assert str(bad) in err and problem in err


def test_missing_predictions_file_is_a_clear_error(capsys, tmp_path):
    labels = _labels(tmp_path, ["a.png,1,2,3,4"])
    code, _, err = _run(capsys, labels, tmp_path / "nope.csv")
    assert code == 2 and "nope.csv: file not found" in err


@pytest.mark.parametrize(
    "lines, problem",
    [
        (['{"file_name": "a.png", "ground_truth": "{\\"gt_parse\\": {\\"DATE\\": \\"1\\"}}"}'], "lacks keys"),
        (["not json"], "line is not JSON"),
        (['{"file_name": "a.png", "ground_truth": "{\\"gt_parse\\": {\\"DATE\\": \\"1\\", \\"CITY\\": \\"2\\", '
          '\\"STATE\\": \\"3\\", \\"ZIP\\": \\"4\\"}}"}'] * 2, "appear more than once"),
    ],
)
def test_malformed_labels_are_a_clear_error(capsys, tmp_path, lines, problem):
    meta = tmp_path / "metadata.jsonl"
    meta.write_text("\n".join(lines) + "\n")
    preds = tmp_path / "p.csv"
    preds.write_text("image_name,DATE,CITY,STATE,ZIP\na.png,1,2,3,4\n")
    code, _, err = _run(capsys, meta, preds)
    assert code == 2 and str(meta) in err and problem in err


def test_labels_csv_needs_the_four_keys(capsys, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file_name,DATE\na.png,1\n")
    preds = tmp_path / "p.csv"
    preds.write_text("image_name,DATE,CITY,STATE,ZIP\na.png,1,2,3,4\n")
    code, _, err = _run(capsys, labels, preds)
    assert code == 2 and "LABELS" in err and "missing columns CITY, STATE, ZIP" in err


def test_a_predictions_table_written_by_the_project_keeps_its_confidences(tmp_path):
    from handwriting_pipeline.predictions import predictions_from_records

    table = predictions_from_records([{"file_name": "a.png", "DATE": "7/4/89", "CITY": "Murray", "STATE": "KY",
                                       "ZIP": "02071", "DATE_conf": 0.25, "CITY_conf": 0.5, "STATE_conf": 0.75,
                                       "ZIP_conf": 1.0}])
    table.to_csv(tmp_path / "p.csv", index=False)
    back = read_predictions_csv(tmp_path / "p.csv")
    assert back.loc[0, ["DATE_conf", "CITY_conf", "STATE_conf", "ZIP_conf"]].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert back.loc[0, "ZIP"] == "02071"
