"""The vote's confidence recalibrated from richer features, cross-fitted on labelled forms: real
recorded Textract / Azure outputs of the shared train forms."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from handwriting_pipeline.ensemble import recalibrate
from handwriting_pipeline.ensemble.vote import FEATURES, vote_form, vote_params
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.fields.text import WRITING_FEATURES, writing_features
from handwriting_pipeline.recorded_csv import read_predictions_csv

ENGINES = {"recorded_textract": ("textract.csv", 100.0), "recorded_azure_form_recognizer": ("azure_form_recognizer.csv", 1.0)}


@pytest.mark.parametrize("text, expected", [
    ("Mi", {"mixed_case": 1.0, "lower_share": 0.5, "has_dot": 0.0}),
    ("MI", {"mixed_case": 0.0, "lower_share": 0.0}),
    ("St. Louis", {"mixed_case": 1.0, "has_dot": 1.0, "has_space": 1.0}),
    ("48381", {"digit_share": 1.0, "mixed_case": 0.0}),
    ("None", {"log_length": 0.0, "digit_share": 0.0}),
])
def test_writing_features_say_how_a_reading_is_written(text, expected):
    found = writing_features(text)
    assert tuple(found) == WRITING_FEATURES and set(WRITING_FEATURES) <= set(FEATURES)
    assert {k: found[k] for k in expected} == pytest.approx(expected)


def _reading(state="OH", zip_code="48381"):  # 48381 lies in Michigan: the gazetteer contradicts OH
    fields = {"DATE": "8/2/89", "CITY": "Milford", "STATE": state, "ZIP": zip_code}
    return {"a": (fields, dict.fromkeys(KEYS, 0.9))}


@pytest.mark.parametrize("weighs", [False, True])
def test_a_recalibration_that_weighs_the_contradiction_is_not_multiplied_by_it_again(weighs):
    model = {k: {"intercept": 2.0, "coef": {}, **({"weighs_contradiction": True} if weighs else {})} for k in KEYS}
    params = vote_params({"recalibration": {"a": model}, "contradiction": {"unknown_zip": 0.5, "state": 0.5,
                                                                           "city": 0.5}})
    _, conf, _ = vote_form(_reading(), params)
    sure = 1 / (1 + 2.718281828459045 ** -2.0)
    assert conf["DATE"] == pytest.approx(sure, abs=1e-4)  # DATE is never contradicted
    assert conf["STATE"] == pytest.approx(sure if weighs else 0.5 * sure, abs=1e-4)


@pytest.fixture(scope="module")
def recorded(shared_hsf_top: Path, shared_ocr_outputs: Path) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    from handwriting_pipeline.score import read_labels

    tables = {m: read_predictions_csv(shared_ocr_outputs / f, scale) for m, (f, scale) in ENGINES.items()}
    labels = read_labels(shared_hsf_top / "train")
    read_by_both = set.intersection(*(set(t["file_name"]) for t in tables.values()))
    labels = labels[labels["file_name"].isin(read_by_both)].head(300).reset_index(drop=True)
    return labels, {m: t[t["file_name"].isin(labels["file_name"])].reset_index(drop=True) for m, t in tables.items()}


def test_each_fold_is_recalibrated_by_a_fit_that_never_saw_it(recorded, monkeypatch):
    labels, tables = recorded
    seen = []
    fit = recalibrate.fit_by_engine_set
    monkeypatch.setattr(recalibrate, "fit_by_engine_set", lambda rows, c=1.0: seen.append(set(rows["file_name"]))
                        or fit(rows, c))
    textract = {"recorded_textract": tables["recorded_textract"]}
    everything, per_fold, fold_of = recalibrate.crossfit_recalibration(labels, [textract, tables], vote_params({}),
                                                                        folds=3)
    assert set(fold_of) == set(labels["file_name"]) and set(fold_of.values()) == {0, 1, 2}
    for k, used in enumerate(seen[:3]):
        assert used and not used & {n for n, f in fold_of.items() if f == k}  # fold k's forms left out
    assert seen[3] == set(labels["file_name"])  # the one kept is fitted on every form
    assert set(everything) == set(per_fold[0]) == {"recorded_textract", "recorded_azure_form_recognizer+recorded_textract"}
    for model in everything["recorded_textract"].values():
        assert set(model["coef"]) == set(FEATURES) and model["weighs_contradiction"]


def test_cross_fitted_recalibration_ranks_wrong_fields_lower_than_the_vote_alone(recorded):
    """On forms the recalibration never saw, the fields it calls surest are right more often:
    the area under the ROC curve of right vs wrong, as written, over the vote's own confidence."""
    import dataclasses

    from sklearn.metrics import roc_auc_score

    from handwriting_pipeline.ensemble.trust import trust_rows

    labels, tables = recorded
    params = vote_params({})
    _, per_fold, fold_of = recalibrate.crossfit_recalibration(labels, [tables], params, folds=3)
    plain = trust_rows(labels, tables, params)
    crossfit = pd.concat([trust_rows(labels[labels["file_name"].map(fold_of) == k], tables,
                                     dataclasses.replace(params, recalibration=recal))
                          for k, recal in per_fold.items()])
    auc = {name: roc_auc_score(rows["written_right"], rows["written_conf"].fillna(0.0))
           for name, rows in (("plain", plain), ("recalibrated", crossfit))}
    assert len(crossfit) == len(plain) == 4 * len(labels)
    assert auc["recalibrated"] > auc["plain"] + 0.02, auc
