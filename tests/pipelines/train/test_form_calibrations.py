"""On another form than the HSF one, the engines that read it untrained (RapidOCR; Tesseract when
it is a default engine) are calibrated on the field reader's held-out forms of that form and the
calibration travels with the reader (issue #27): the shipped ``ensemble.vote`` calibrations were
fitted on HSF readings and do not apply there. Cards are rendered by the synthetic generator
(no shared data)."""

from __future__ import annotations

import pandas as pd
import pytest

from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.datasets.model import FieldReaderRef
from handwriting_pipeline.fieldreader.model import ENGINE_CALIBRATIONS, FieldReader
from handwriting_pipeline.fields.formspec import hsf_form, load_form
from handwriting_pipeline.methods import form_engine_calibrations, model_calibrations, untrained_engines, vote_calibration
from handwriting_pipeline.pipelines.train.nodes import add_engine_calibrations
from handwriting_pipeline.synthetic import SpecFormGenerator

CARD = load_form("order_card")
EXTRACT = {"workers": 1, "progress": False, "rapidocr": {"threads": 1}}


@pytest.fixture(scope="module")
def cards() -> LabelledForms:
    generator = SpecFormGenerator(CARD, seed=5, blank_rate=0.0)
    samples = {f"card_{i}.png": generator.sample(i) for i in range(12)}
    labels = pd.DataFrame([{"file_name": name, **gold} for name, (_, gold) in samples.items()])
    return LabelledForms(labels, {name: image for name, (image, _) in samples.items()}, keys=CARD.keys)


@pytest.fixture(scope="module")
def calibrated(cards):
    return form_engine_calibrations(cards, cards.labels["file_name"].tolist(), EXTRACT, CARD)


def test_every_untrained_engine_is_calibrated_on_every_field_of_the_form(calibrated):
    untrained = {spec.method for spec in untrained_engines(EXTRACT, CARD)}
    assert "rapidocr" in untrained and set(calibrated) == untrained
    for fields in calibrated.values():
        assert set(fields) == set(CARD.keys)
        assert all(entry["n"] == 12 and 0 < entry["p_none"] < 1 and 0 < entry["case"] < 1 for entry in fields.values())
    # RapidOCR reads printed text better than handwriting: its confidence must say something
    assert any(entry["b"] != 0 for entry in calibrated["rapidocr"].values())


def test_the_hsf_form_keeps_its_shipped_calibration_and_reads_nothing():
    no_images = LabelledForms(pd.DataFrame([{"file_name": "a.png"}]))  # reading it would fail
    assert form_engine_calibrations(no_images, ["a.png"], EXTRACT, hsf_form()) == {}
    reader = FieldReader.stock()
    assert add_engine_calibrations(reader, no_images, {"holdout": ["a.png"]}, EXTRACT, None, None) is reader
    assert ENGINE_CALIBRATIONS not in reader.config.summary


def test_the_calibration_travels_with_the_reader_and_the_vote_takes_it(cards, calibrated, tmp_path):
    reader = add_engine_calibrations(FieldReader.stock("order_card"), cards,
                                     {"holdout": cards.labels["file_name"].tolist()}, EXTRACT, "order_card", None)
    assert reader.config.summary[ENGINE_CALIBRATIONS] == calibrated
    reader.config.calibration = {"ORDER_NO": {"a": 1.0, "b": 0.0}}
    reader.save(tmp_path / "reader")
    found = model_calibrations({"fieldreader_model": FieldReaderRef.from_path(tmp_path / "reader")})
    assert found["rapidocr"] == calibrated["rapidocr"]
    assert found["fieldreader"] == {"ORDER_NO": {"a": 1.0, "b": 0.0}}  # the model's own, beside the others
    shipped = {"rapidocr": {"DATE": {"a": 9.0, "b": 0.0}}}  # fitted on HSF readings: not on the card
    assert vote_calibration(shipped, found, CARD)["rapidocr"] == calibrated["rapidocr"]
