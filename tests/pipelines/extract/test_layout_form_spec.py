"""The offline OCR engines read another form spec (issue #27): built with ``form=order_card`` they
find the card's line boxes, read each with their OCR and split it into the line's fields with the
field reader's splitter. The values may be wrong (the OCR is not trained on handwriting); the
record has the card's keys and the run does not fail. Built without a form they read the HSF
form exactly as before; the runs (extract, digitize) build them for the run's form. Cards are
rendered by the synthetic generator (no shared data)."""

from __future__ import annotations

import math
import shutil

import pytest

from handwriting_pipeline.engines.base import Engine
from handwriting_pipeline.engines.layout import read_spec_form, typed_value
from handwriting_pipeline.engines.rapidocr_engine import RapidOCREngine
from handwriting_pipeline.engines.tesseract_engine import TesseractEngine
from handwriting_pipeline.fields import NONE
from handwriting_pipeline.fields.formspec import hsf_form, load_form
from handwriting_pipeline.fields.parse import Word
from handwriting_pipeline.synthetic import SpecFormGenerator

CARD = load_form("order_card")


@pytest.fixture(scope="module")
def cards():
    generator = SpecFormGenerator(CARD, seed=1, blank_rate=0.0)
    return [generator.sample(i) for i in range(2)]


def _check(results, cards):
    right = 0
    for result, (_, gold) in zip(results, cards):
        assert result.error is None and result.keys == CARD.keys
        record = result.to_record("card.png")
        assert [k for k in record if k in CARD.keys] == list(CARD.keys)
        assert all(isinstance(v, str) for v in result.fields.values())
        assert all(0 <= c <= 1 or math.isnan(c) for c in result.confidence.values())
        right += sum(result.fields[k] == gold[k] for k in CARD.keys)
    assert right >= 1  # it does read the card (measured: 7 of 14 fields exact on these two)


def test_rapidocr_reads_the_order_card_with_every_key(cards):
    engine = RapidOCREngine(threads=1, form="order_card")
    results = [engine.read(image, f"card_{i}.png") for i, (image, _) in enumerate(cards)]
    _check(results, cards)
    assert set(results[0].raw["words"]) == set(CARD.line_names) and results[0].raw["found_boxes"]


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="no tesseract binary")
def test_tesseract_reads_the_order_card_with_every_key(cards):
    engine = TesseractEngine(form="order_card")
    results = [engine.read(image, f"card_{i}.png") for i, (image, _) in enumerate(cards)]
    for result in results:
        assert result.error is None and result.keys == CARD.keys


def test_one_text_line_per_field_is_that_field_else_the_word_rules():
    def read_region(words):
        return lambda grey: [Word(t, 0.9, (10 + 200 * i, 30, 150 + 200 * i, 90)) for i, t in enumerate(words)]

    page = SpecFormGenerator(CARD, seed=0, blank_rate=1.0).sample(0)[0]  # a blank card: its boxes
    fields, conf, _ = read_spec_form(page, CARD, read_region(["12345678", "Oct 25,1989"]))  # each line reads these
    assert (fields["ORDER_NO"], fields["DATE"], conf["DATE"]) == ("12345678", "Oct 25,1989", 0.9)
    fields, _, _ = read_spec_form(page, CARD, read_region(["Reno NV", "89501"]))
    assert (fields["CITY"], fields["STATE"], fields["ZIP"]) == ("Reno", "NV", "89501")
    assert typed_value("12a34", CARD, "ORDER_NO") == "1234" and typed_value("??", CARD, "ORDER_NO") == NONE


def test_the_hsf_reading_and_form_checks_are_unchanged():
    engine = RapidOCREngine(threads=1)
    assert engine.form is None and "form" not in engine.config  # same cache key as before
    assert RapidOCREngine(form="hsf_top").form == hsf_form()
    assert RapidOCREngine.form_inputs(hsf_form()) == {}  # the runs build it for the HSF form as before
    assert RapidOCREngine.form_problem(hsf_form()) is None


@pytest.mark.parametrize("method", ["rapidocr", "tesseract"])
def test_the_runs_build_the_offline_ocr_engines_for_their_form(method, tmp_path):
    """A run's form reaches the engine (ready_engines -> EngineSpec.build): the card by name, a
    spec file outside the shipped forms by its path."""
    from handwriting_pipeline.methods import ready_engines
    from handwriting_pipeline.registry import engine_class

    if method == "tesseract" and shutil.which("tesseract") is None:
        pytest.skip("no tesseract binary")
    cls = engine_class(method)
    assert cls.form_problem(CARD) is None and cls.form_inputs(CARD) == {"form": "order_card"}
    own = tmp_path / "my_card.yml"
    own.write_text(CARD.model_dump_json().replace('"order_card"', '"my_card"'))
    spec = load_form(own)
    assert cls.form_inputs(spec) == {"form": str(own.resolve())}
    [ready], _ = ready_engines([method], True, {}, {}, {}, where="test", form=spec)
    engine = ready.build()
    assert engine.form == spec and engine.form.keys == CARD.keys
    assert Engine.form_inputs(CARD) == {}  # an engine made for one form is told nothing
