"""The cascade on the recorded outputs of the shared validation forms: Azure plays the
fast reader, Textract the slower engine. The slower engine reads only the forms the fast one is
unsure of; threshold 0 is the fast reader alone, above 1 the full vote."""

from __future__ import annotations

import pandas as pd
import pytest

from handwriting_pipeline.ensemble.cascade import (
    cascade_cost,
    cascade_predictions,
    cascade_tables,
    cascade_vote,
    escalated,
    replay,
)
from handwriting_pipeline.ensemble.vote import vote, vote_params
from handwriting_pipeline.recorded_csv import read_predictions_csv

FAST, SLOW = "recorded_azure_form_recognizer", "recorded_textract"


@pytest.fixture(scope="module")
def tables(shared_ocr_outputs, shared_validation) -> dict[str, pd.DataFrame]:
    names = set(pd.read_json(shared_validation / "metadata.jsonl", lines=True)["file_name"])
    return {m: read_predictions_csv(shared_ocr_outputs / f).pipe(lambda t: t[t["file_name"].isin(names)])
            .reset_index(drop=True) for m, f in ((FAST, "azure_form_recognizer.csv"), (SLOW, "textract.csv"))}


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    cols = ["file_name", "DATE", "CITY", "STATE", "ZIP"]
    return a[cols].sort_values("file_name").reset_index(drop=True).equals(b[cols].sort_values("file_name")
                                                                          .reset_index(drop=True))


def test_the_ends_of_the_threshold_are_the_fast_reader_alone_and_the_full_vote(tables):
    params = vote_params({})
    alone, share = cascade_vote(tables, [FAST], params, {"threshold": 0.0, "escalate_invalid": False})
    assert share == 0.0 and _same(alone, vote({FAST: tables[FAST]}, params)[0])
    everything, share = cascade_vote(tables, [FAST], params, {"threshold": 1.01, "escalate_invalid": False})
    assert share == 1.0 and _same(everything, vote(tables, params)[0])


def test_the_slower_engine_reads_only_the_escalated_forms_and_more_as_the_threshold_rises(tables):
    params = vote_params({})
    asked: dict[str, list[str]] = {}
    full = replay(tables)

    def read(engine, names):
        asked[engine] = list(names)
        return full(engine, names)

    shares = []
    for threshold in (0.3, 0.6, 0.9):
        settings = {"threshold": threshold, "escalate_invalid": True}
        asked.clear()
        read_tables = cascade_tables(read, tables[FAST]["file_name"].tolist(), [FAST], [SLOW], params, settings)
        doubtful = escalated({FAST: tables[FAST]}, params, cascade_settings(settings))
        assert asked[FAST] == tables[FAST]["file_name"].tolist()
        assert asked.get(SLOW, []) == doubtful and len(read_tables.get(SLOW, [])) == len(doubtful)
        shares.append(len(doubtful))
    assert shares == sorted(shares) and 0 < shares[-1] < len(tables[FAST])


def test_an_invalid_reading_escalates_whatever_its_confidence(tables):
    params = vote_params({})
    fast = tables[FAST].head(5).copy()
    fast[[f"{k}_conf" for k in ("DATE", "CITY", "STATE", "ZIP")]] = 1.0
    fast.loc[0, "STATE"] = "Q7"  # no state
    got = escalated({FAST: fast}, params, cascade_settings({"threshold": 0.0, "escalate_invalid": True}))
    assert fast.loc[0, "file_name"] in got
    assert escalated({FAST: fast}, params, cascade_settings({"threshold": 0.0, "escalate_invalid": False})) == []


def cascade_settings(values):
    from handwriting_pipeline.ensemble.cascade import CascadeSettings

    return CascadeSettings.from_params(values)


def test_the_registered_cascade_replays_the_cascade_and_reports_its_escalation(tables):
    settings = {"threshold": 0.6, "escalate_invalid": True}
    params = {"methods": ["vote", "cascade"], "cascade": settings}
    table, report = cascade_predictions(params, {}, tables, lambda engine: engine == FAST)
    merged, share = cascade_vote(tables, [FAST], vote_params({}), settings)
    assert _same(table, merged) and report["escalated_share"] == share
    assert report["fast"] == [FAST] and report["slow"] == [SLOW] and report["forms"] == len(tables[FAST])
    assert 0 < report["escalated"] == round(share * report["forms"]) < report["forms"]
    empty, nothing = cascade_predictions({"methods": ["vote"]}, {}, tables, lambda engine: engine == FAST)
    assert empty.empty and nothing == {}


def test_the_cascade_costs_the_fast_engines_for_every_form_and_the_others_for_the_escalated_share():
    assert cascade_cost({"fast": 1.0, "slow": 10.0, "slower": 4.0}, ["fast"], 0.25) == 1.0 + 0.25 * 14.0
    assert cascade_cost({"fast": 1.0}, ["fast"], 1.0) == 1.0


def test_a_recalibration_does_not_move_which_forms_escalate(tables):
    """The cascade's threshold was chosen on the fast stage's own confidence: a recalibration of
    the fast engine alone (here one that calls every field 1 % sure) changes the confidences the
    vote reports, never the forms sent on."""
    from handwriting_pipeline.fields import KEYS

    settings = cascade_settings({"threshold": 0.6, "escalate_invalid": True})
    doubtful = {k: {"intercept": -4.6, "coef": {}} for k in KEYS}
    recalibrated = vote_params({"recalibration": {FAST: doubtful}})
    assert (escalated({FAST: tables[FAST]}, recalibrated, settings)
            == escalated({FAST: tables[FAST]}, vote_params({}), settings))
    assert vote({FAST: tables[FAST]}, recalibrated)[0]["DATE_conf"].max() < 0.02
