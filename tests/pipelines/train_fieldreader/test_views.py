"""Test-time views of the field reader: views on real lines, posterior averaging, the choice on
held-out forms, and the ``fieldreader_tta`` engine with the views and calibration saved with the model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handwriting_pipeline.datasets.model import FieldReaderRef
from handwriting_pipeline.engines.fieldreader_views import FieldReaderViewsEngine
from handwriting_pipeline.fieldreader.model import FieldReader
from handwriting_pipeline.fieldreader.predict import read_lines
from handwriting_pipeline.fieldreader.views import (
    View,
    ViewsReader,
    average_log_probs,
    choose_views,
    parse_views,
    views_text,
)
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.forms.lines import LineSettings, to_array
from handwriting_pipeline.registry import engine_class


@pytest.fixture(scope="module")
def saved_stock(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stock_reader")
    FieldReader.stock().save(folder)
    return folder


def test_views_keep_the_input_shape_and_move_the_ink(shared_lines):
    _, lines, _, _ = shared_lines
    array = to_array(lines[0]["CSZ"], LineSettings())
    ink = (array[0] < 0).sum()
    for view in parse_views("dx=4;dy=-2;dy=2;scale=0.94;threshold=0.35;threshold=0.65;ink=0.6;ink=1.6"):
        out = view.apply(array)
        assert out.shape == array.shape and out.dtype == np.float32 and -1 <= out.min() <= out.max() <= 1
    assert np.array_equal(View().apply(array), array)
    down = View(dy=2).apply(array)[0]
    rows = np.flatnonzero((array[0] < 0).any(axis=1))
    assert np.flatnonzero((down < 0).any(axis=1))[0] == rows[0] + 2  # the ink moved down two rows
    heavy, light = View(ink=0.6).apply(array), View(ink=1.6).apply(array)
    assert (heavy[0] < 0).sum() >= ink >= (light[0] < 0).sum()
    assert views_text(parse_views("dx=4;dy=-2,scale=0.94")) == "dx=4;dy=-2,scale=0.94"
    with pytest.raises(ValueError, match="expected key=value"):
        parse_views("tilt=3")


def test_averaged_posteriors_are_a_distribution_and_one_view_is_the_plain_reading(saved_stock, shared_lines):
    _, lines, _, _ = shared_lines
    reader = FieldReader.load(saved_stock)
    a, b = np.log(np.full((5, 3), 1 / 3)), np.log(np.array([[0.8, 0.1, 0.1]] * 5))
    mean = average_log_probs([a, b])
    assert np.allclose(np.exp(mean).sum(axis=1), 1.0)
    assert np.allclose(np.exp(mean[0]), [(1 / 3 + 0.8) / 2, (1 / 3 + 0.1) / 2, (1 / 3 + 0.1) / 2])
    plain = read_lines(reader, lines)
    assert [r.fields for r in read_lines(ViewsReader(reader, "plain"), lines)] == [r.fields for r in plain]
    three = ViewsReader(reader, "dy=-2;dy=2")
    arrays = [to_array(line["DATE"], reader.config.lines) for line in lines]
    assert [lp.shape for lp in three.log_probs(arrays)] == [lp.shape for lp in reader.log_probs(arrays)]
    assert all(set(r.fields) == set(KEYS) for r in read_lines(three, lines))


def test_views_are_chosen_on_held_out_forms_and_ties_keep_the_cheaper_set(saved_stock, shared_lines):
    _, lines, gold, _ = shared_lines
    reader = FieldReader.load(saved_stock)
    best, table, readings = choose_views(reader, lines, gold, ["plain", "plain;dy=0"])  # identical readings
    assert best == (View(),) and set(table) == {"plain"} and len(readings) == len(lines)
    best, table, _ = choose_views(reader, lines, gold, ["dy=-2;dy=2", "plain"])
    key = {views_text(best)}
    assert key <= set(table) and table[views_text(best)]["FLA"] == max(v["FLA"] for v in table.values())


def test_tta_engine_needs_saved_views_and_brings_their_calibration(saved_stock, shared_lines, tmp_path):
    names, _, _, forms = shared_lines
    assert engine_class("fieldreader_tta") is FieldReaderViewsEngine
    ref = FieldReaderRef.from_path(saved_stock)
    assert "no test-time views" in FieldReaderViewsEngine.unavailable(model=ref)
    assert FieldReaderViewsEngine.vote_calibration(model=ref) is None
    # a copy of the model that carries chosen views and their calibration (vote_benchmark --save-model)
    import shutil

    folder = tmp_path / "with_views"
    shutil.copytree(saved_stock, folder)
    config = json.loads((folder / "fieldreader.json").read_text())
    calibration = {k: {"a": 0.1, "b": 2.0, "p_none": 0.5, "case": 0.8} for k in KEYS}
    config["views"] = {"views": "dy=-2;dy=2", "calibration": calibration}
    (folder / "fieldreader.json").write_text(json.dumps(config))
    ref = FieldReaderRef.from_path(folder)
    assert FieldReaderViewsEngine.unavailable(model=ref) is None
    assert FieldReaderViewsEngine.vote_calibration(model=ref) == calibration
    engine = FieldReaderViewsEngine.from_model(ref, beam=4, threads=1)
    assert engine.view_list == "dy=-2;dy=2" and len(engine.reader.views) == 3
    assert engine.cache_key("x") != FieldReaderViewsEngine.from_model(ref, views="dx=4", threads=1).cache_key("x")
    result = engine.read(forms.images[names[0]], names[0])
    assert result.error is None and set(result.fields) == set(KEYS)
