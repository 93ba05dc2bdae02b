"""Digitize reads the run's form spec: the example order card (conf/base/forms/order_card.yml),
rendered by the spec form generator, read by a field reader set up for it (the stock
recognizer: it reads poorly, but it runs) or by a toy engine that reads any form. The HSF form's
own outputs are checked by the other tests of this folder (they stay as they were)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.runner import SequentialRunner
from PIL import Image

from handwriting_pipeline import registry
from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.digitize import ImageInputsDataset, RunFileDataset
from handwriting_pipeline.digitize.core import (
    COLUMNS,
    REVIEW_COLUMNS,
    field_crops,
    form_columns,
    make_plan,
    read_partition,
    review_columns,
    summarise,
)
from handwriting_pipeline.digitize.inputs import DEFAULTS, read_forms, to_crop
from handwriting_pipeline.engines.base import Engine, EngineResult
from handwriting_pipeline.engines.layout import LayoutEngine
from handwriting_pipeline.fields.formspec import load_form, parse_form
from handwriting_pipeline.forms.boxes import find_boxes, find_line_boxes, to_grey
from handwriting_pipeline.pipeline_registry import register_pipelines
from handwriting_pipeline.synthetic.spec_forms import SpecFormGenerator

from .test_digitize import NoModel, _params

CARD = "order_card"
#: what the toy card engine reads on every card: valid values (to normalize), a DATE it is unsure
#: of and a ZIP its type does not accept (a letter O for a zero) that it is sure of
CARD_VALUES = {"ORDER_NO": "12345678", "DATE": "8/28/89", "AMOUNT": "$1,234.5", "PHONE": "(404) 555-0123",
               "CITY": "DouglasVILLE", "STATE": "Ga.", "ZIP": "3O134"}
CARD_CONF = {"ORDER_NO": 0.95, "DATE": 0.3, "AMOUNT": 0.9, "PHONE": 0.9, "CITY": 0.9, "STATE": 0.9, "ZIP": 0.95}


class CardToyEngine(Engine):
    """Reads any form (its ``form_problem`` is None): the same order-card values on every image."""

    name = "cardtoy"
    parallel = "serial"

    @classmethod
    def form_problem(cls, form, **inputs):
        return None

    def read(self, image, file_name=""):
        return EngineResult(fields=dict(CARD_VALUES), confidence=dict(CARD_CONF), keys=tuple(CARD_VALUES))


class OtherCardToyEngine(CardToyEngine):
    """Reads any form: the card's ZIP right (its type accepts it, the gazetteer knows it in GA), a
    phone number cut short (its type does not accept it)."""

    name = "cardtoy2"

    def read(self, image, file_name=""):
        fields = {**CARD_VALUES, "ZIP": "30134", "PHONE": "(404) 555-01"}
        return EngineResult(fields=fields, confidence=dict(CARD_CONF), keys=tuple(CARD_VALUES))


@pytest.fixture
def card_toys(monkeypatch):
    monkeypatch.setitem(registry.ENGINES, "cardtoy", CardToyEngine)
    monkeypatch.setitem(registry.ENGINES, "cardtoy2", OtherCardToyEngine)


@pytest.fixture(scope="session")
def card_spec():
    return load_form(CARD)


@pytest.fixture(scope="session")
def card_pages(card_spec) -> list[tuple[Image.Image, dict[str, str]]]:
    generator = SpecFormGenerator(card_spec, seed=5, blank_rate=0.0, empty_field_rate=0.0)
    return [generator.sample(i) for i in range(3)]


@pytest.fixture(scope="session")
def card_folder(tmp_path_factory, card_pages) -> tuple[Path, dict[str, str | None]]:
    """Three rendered order cards (one at 3/4 resolution, in grey), an HSF-sized page and a photo."""
    folder = tmp_path_factory.mktemp("cards")
    card_pages[0][0].save(folder / "card_0.png")
    card_pages[1][0].save(folder / "card_1.tif", compression="group4")
    card_pages[2][0].convert("L").resize((1275, 825)).save(folder / "card_2_small.png")
    Image.new("L", (2560, 3300), 255).save(folder / "hsf_sized.png")
    Image.new("RGB", (800, 600), (90, 140, 200)).save(folder / "photo.jpg")
    expected = {"card_0.png": None, "card_1.tif": None, "card_2_small.png": None,
                "hsf_sized.png": "2560x3300: not a page of form 'order_card' (1700x1100, or its aspect ratio)",
                "photo.jpg": "800x600: not a page of form 'order_card' (1700x1100, or its aspect ratio)"}
    return folder, expected


@pytest.fixture(scope="session")
def stock_card_reader(tmp_path_factory):
    """The stock recognizer set up for the order card, saved (its config records the form)."""
    from handwriting_pipeline.datasets.model import FieldReaderRef
    from handwriting_pipeline.fieldreader.model import FieldReader

    folder = tmp_path_factory.mktemp("card_reader")
    FieldReader.stock(CARD).save(folder)
    return FieldReaderRef.from_path(folder)


def _models(**given):
    return {name: given.get(name, NoModel()) for method in registry.engine_methods()
            for name in registry.engine_class(method).catalog_inputs.values()}


def _card_plan(tmp_path, **digitize):
    params = _params()
    settings = {**params["digitize"], "progress": False, "workers": 1, **digitize}
    extract = {**params["extract"], "cardtoy": {}, "cardtoy2": {}}
    return make_plan(settings, extract, params["ensemble"], {}, ResponseCache(tmp_path / "cache"), datasets=_models(),
                     form=CARD)


# --------------------------------------------------------------------------- inputs
def test_a_card_page_is_taken_as_it_is_and_other_shapes_are_refused(card_spec, card_pages):
    page, _ = card_pages[0]
    crop, kind = to_crop(page, dict(DEFAULTS), card_spec)
    assert kind == "page" and crop.size == (1700, 1100) and crop.tobytes() == page.tobytes()  # as it is
    small, kind = to_crop(page.convert("L").resize((850, 550)), dict(DEFAULTS), card_spec)
    assert kind == "page" and small.size == (1700, 1100)
    with pytest.raises(ValueError, match=r"^1100x1700: not a page of form 'order_card'"):
        to_crop(page.rotate(90, expand=True), dict(DEFAULTS), card_spec)  # portrait: the wrong aspect
    with pytest.raises(ValueError, match=r"^2460x350: not a page of form 'order_card'"):
        to_crop(Image.new("1", (2460, 350), 1), dict(DEFAULTS), card_spec)  # an HSF crop
    with pytest.raises(ValueError, match="blank form"):
        to_crop(Image.new("L", (1700, 1100), 255), dict(DEFAULTS), card_spec)


def test_a_spec_whose_registration_template_is_missing_gives_a_per_page_error(tmp_path, card_spec, card_pages):
    data = card_spec.model_dump(mode="json", exclude_none=True)
    data["page"]["registration"] = {"method": "features", "template": "blank.png"}
    spec = parse_form(data, "features_card.yml")
    path = tmp_path / "card.png"
    card_pages[0][0].save(path)
    [form] = read_forms(path, dict(DEFAULTS), spec)
    assert form.crop is None and form.error.startswith("1700x1100 page of form 'order_card': cannot be registered")
    assert "blank.png: the form spec's registration template (a blank form image) is missing" in form.error


def test_review_crops_are_the_line_boxes_and_stay_the_hsf_boxes_on_hsf(card_spec, card_pages, synthetic_crops):
    page, _ = card_pages[0]
    boxes, found = find_line_boxes(to_grey(page), card_spec)
    assert found
    crops = field_crops(page, ["ORDER_NO", "PHONE", "ZIP"], margin=10, spec=card_spec)
    for key, line in (("ORDER_NO", "ORDER"), ("PHONE", "PAYMENT"), ("ZIP", "CSZ")):
        x0, y0, x1, y1 = boxes[line]
        assert crops[key].size == (x1 - x0 + 20, y1 - y0 + 20)
    hsf = synthetic_crops[0]
    date_box, csz_box, _ = find_boxes(to_grey(hsf))  # the HSF form: DATE's box, the shared CITY/STATE/ZIP box
    for key, box in (("DATE", date_box), ("ZIP", csz_box)):
        x0, y0, x1, y1 = box
        expected = hsf.crop((max(0, x0 - 25), max(0, y0 - 25), min(hsf.width, x1 + 25), min(hsf.height, y1 + 25)))
        assert field_crops(hsf, [key])[key].tobytes() == expected.tobytes()


# --------------------------------------------------------------------------- plan
@pytest.mark.parametrize("method", ["vote", "cascade"])
def test_the_vote_and_the_cascade_merge_the_engines_that_read_the_form(card_toys, tmp_path, card_spec, method):
    plan = _card_plan(tmp_path, method=method, engines=["cardtoy", "cardtoy2"])
    assert plan.method == method and plan.methods == ["cardtoy", "cardtoy2"] and plan.keys == card_spec.keys
    assert plan.fallback is None and plan.guarantee is None and plan.voted
    alone = _card_plan(tmp_path, method=method, engines=["cardtoy"])
    assert alone.method == method and alone.methods == ["cardtoy"] and alone.fallback is None


def test_the_llm_merge_falls_back_to_the_one_engine_that_reads_the_form(card_toys, tmp_path, card_spec):
    plan = _card_plan(tmp_path, method="llm", engines=["cardtoy"])
    assert plan.method == "cardtoy" and plan.methods == ["cardtoy"] and plan.keys == card_spec.keys
    assert plan.fallback["requested"] == "llm" and plan.fallback["used"] == "cardtoy"
    assert "hsf_top" in plan.fallback["reason"] and plan.guarantee is None and not plan.voted
    with pytest.raises(RuntimeError, match="set digitize.method to vote, cascade or one of them"):
        _card_plan(tmp_path, method="llm", engines=["cardtoy", "cardtoy2"])


def test_among_several_engines_for_the_form_the_llm_merge_falls_back_to_the_fast_reader(card_toys, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setattr(OtherCardToyEngine, "fast", True)
    plan = _card_plan(tmp_path, method="llm", engines=["cardtoy", "cardtoy2"])
    assert plan.method == "cardtoy2" and plan.fallback["used"] == "cardtoy2"
    assert "its fast reader (of cardtoy, cardtoy2)" in plan.fallback["reason"]


def test_an_hsf_only_engine_named_explicitly_stops_with_its_form_problem(tmp_path, stock_card_reader, monkeypatch):
    params = _params()
    for digitize in ({"method": "textract"}, {"method": "vote", "engines": ["textract"]}):
        with pytest.raises(RuntimeError, match="textract: it reads only the 'hsf_top' layout, not form 'order_card'"):
            make_plan({**params["digitize"], **digitize}, params["extract"], params["ensemble"], datasets=_models(),
                      form=CARD)
    # a field reader trained on the order card cannot read the HSF form either
    with pytest.raises(RuntimeError, match="fieldreader: its model was trained on form 'order_card', not 'hsf_top'"):
        make_plan({**params["digitize"], "method": "fieldreader"}, params["extract"], params["ensemble"],
                  datasets=_models(fieldreader_model=stock_card_reader))
    # a default run on the card with no engine for it says how to get one
    monkeypatch.setattr(LayoutEngine, "form_problem", classmethod(Engine.form_problem.__func__))
    with pytest.raises(RuntimeError, match="no engine can read form 'order_card'.*--params form=order_card"):
        make_plan(params["digitize"], params["extract"], params["ensemble"], datasets=_models(), form=CARD)


def test_without_a_trained_reader_the_offline_ocr_reads_the_card_built_for_it(tmp_path, card_folder, card_spec):
    """Before any reader is trained on a form, the offline OCR engines read its line boxes: a
    default run works (its guesses go to review), every engine built for the run's form, and no
    calibration fitted on the HSF form weighs them."""
    params = _params()
    plan = make_plan({**params["digitize"], "progress": False}, params["extract"], params["ensemble"],
                     cache=ResponseCache(tmp_path / "cache"), datasets=_models(), form=CARD)
    assert "rapidocr" in plan.methods and plan.fallback is None and plan.vote.calibration == {}
    assert plan.vote.recalibration == {}
    assert all(s.for_form == {"form": CARD} for s in plan.specs)
    folder, _ = card_folder
    [record] = read_partition(plan, [str(folder / "card_0.png")])
    assert record["error"] is None and list(record)[: len(form_columns(card_spec))] == form_columns(card_spec)
    assert all(isinstance(record[k], str) for k in card_spec.keys)
    hsf = make_plan(params["digitize"], params["extract"], params["ensemble"], datasets=_models())
    assert hsf.vote.calibration and all(s.for_form == {} for s in hsf.specs)  # the HSF form: as before


# --------------------------------------------------------------------------- records
def test_card_records_have_the_forms_fields_normalized_by_type(card_toys, tmp_path, card_folder, card_spec):
    folder, _ = card_folder
    plan = _card_plan(tmp_path, method="cardtoy", review_threshold=0.6)
    [record] = read_partition(plan, [str(folder / "card_0.png")])
    assert list(record)[: len(form_columns(card_spec))] == form_columns(card_spec)
    assert {k: record[k] for k in card_spec.keys} == CARD_VALUES
    assert {k: record[f"{k}_normalized"] for k in card_spec.keys} == {
        "ORDER_NO": "12345678", "DATE": "1989-08-28", "AMOUNT": "1234.50", "PHONE": "+14045550123",
        "CITY": "Douglasville", "STATE": "GA", "ZIP": None}
    assert {k: record[f"{k}_conf"] for k in card_spec.keys} == CARD_CONF
    assert all(record[f"{k}_written_conf"] == CARD_CONF[k] for k in card_spec.keys)
    assert record["ZIP_value_conf"] == 0.0 and record["STATE_value_conf"] == 0.9
    # DATE is unsure; ZIP is sure but no ZIP: both go to review, with their line's crop
    assert record["needs_review"] == ["DATE", "ZIP"] and record["error"] is None and record["kind"] == "page"
    date, zip_code = record["review"]
    assert date["why"] == ["low confidence (writing 0.3 < 0.6)"]
    assert zip_code["why"] == ["validator failed (not a valid us_zip)"] and zip_code["candidates"] == {"cardtoy": "3O134"}
    assert zip_code["crop"] in record["_files"] and date["normalized"] == "1989-08-28"
    summary = summarise([record], card_spec.keys)
    assert summary["fields_to_review"] == 2 and summary["fields_to_review_pct"] == round(100 * 2 / 7, 2)


@pytest.mark.parametrize("method", ["vote", "cascade"])
def test_card_records_of_a_vote_over_two_engines(card_toys, tmp_path, card_folder, card_spec, monkeypatch, method):
    """cardtoy reads a ZIP its type refuses, cardtoy2 a phone number cut short: the vote takes
    each field's valid reading (ZIP with the gazetteer's support for GA), trust per type."""
    monkeypatch.setattr(CardToyEngine, "fast", True)  # the cascade's first stage: its ZIP escalates the card
    folder, _ = card_folder
    plan = _card_plan(tmp_path, method=method, engines=["cardtoy", "cardtoy2"], review_threshold=0.6)
    [record] = read_partition(plan, [str(folder / "card_0.png")])
    assert list(record)[: len(form_columns(card_spec))] == form_columns(card_spec)
    assert {k: record[k] for k in card_spec.keys} == {**CARD_VALUES, "ZIP": "30134"}
    assert record["method"] == method and record["engines"] == "cardtoy;cardtoy2" and record["error"] is None
    assert {k: record[f"{k}_normalized"] for k in card_spec.keys} == {
        "ORDER_NO": "12345678", "DATE": "1989-08-28", "AMOUNT": "1234.50", "PHONE": "+14045550123",
        "CITY": "Douglasville", "STATE": "GA", "ZIP": "30134"}
    assert record["ZIP_conf"] > 0.6 and record["PHONE_conf"] > 0.6 and record["ORDER_NO_conf"] > 0.9
    assert all(record[f"{k}_written_conf"] == record[f"{k}_conf"] for k in card_spec.keys)
    assert record["DATE_conf"] < 0.6 and "DATE" in record["needs_review"]
    review = {item["field"]: item for item in record.get("review", [])}
    assert review["DATE"]["candidates"] == {"cardtoy": "8/28/89", "cardtoy2": "8/28/89"}
    assert set(record["needs_review"]) <= set(card_spec.keys)


def test_columns_are_the_hsf_constants_on_the_hsf_form(card_spec):
    assert form_columns() == form_columns("hsf_top") == COLUMNS
    assert review_columns() == REVIEW_COLUMNS
    assert review_columns(card_spec)[7:14] == list(card_spec.keys)
    assert "DATE_iso" not in form_columns(card_spec) and "ORDER_NO_normalized" in form_columns(card_spec)


# --------------------------------------------------------------------------- the Kedro pipeline
def _run_pipeline(tmp_path, folder, digitize, models, form=CARD):
    params = _params()
    params["digitize"].update(progress=False, workers=1, **digitize)
    out = tmp_path / "digitize"
    files = {"digitized_forms": "forms.jsonl", "digitized_forms_csv": "forms.csv",
             "digitize_review_queue": "review_queue.csv", "digitize_summary": "summary.json"}
    columns = {"digitized_forms_csv": ["source", "page", "kind"],  # as conf/base/catalog_digitize.yml
               "digitize_review_queue": ["source", "page", "field", "chosen", "confidence", "candidates", "crop"]}
    catalog = DataCatalog(datasets={
        "digitize_inputs": ImageInputsDataset(input_dir=str(folder)),
        **{f"params:{k}": MemoryDataset(params[k]) for k in ("digitize", "extract", "ensemble")},
        "params:form": MemoryDataset(form),
        "extract_cache": MemoryDataset(ResponseCache(tmp_path / "cache"), copy_mode="assign"),
        "ensemble_cache": MemoryDataset(ResponseCache(tmp_path / "llm"), copy_mode="assign"),
        "extract_credentials": MemoryDataset({}), "ensemble_credentials": MemoryDataset({}),
        **{name: MemoryDataset(model, copy_mode="assign") for name, model in models.items()},
        **{name: RunFileDataset(str(out), file, columns=columns.get(name), version=Version(None, "2026-12-01T00.00.00.000Z"))
           for name, file in files.items()},
    })
    SequentialRunner().run(register_pipelines()["digitize"], catalog)
    return out / "latest"


def test_the_pipeline_digitizes_order_cards_with_a_field_reader_for_them(tmp_path, card_folder, card_spec,
                                                                         stock_card_reader):
    folder, expected = card_folder
    # the default method (cascade over the default engines): the card's field reader reads every card,
    # RapidOCR (built for the card) the cards it escalates - all of them, the stock reader is unsure
    latest = _run_pipeline(tmp_path, folder, {"review_threshold": 1.01},
                           _models(fieldreader_model=stock_card_reader))
    keys = list(card_spec.keys)
    lines = [json.loads(line) for line in (latest / "forms.jsonl").read_text().splitlines()]
    by_name = {Path(r["source"]).name: r for r in lines}
    assert {n: r["error"] for n, r in by_name.items()} == expected
    read = [r for r in lines if not r["error"]]
    assert len(read) == 3 and all(r["method"] == "cascade" for r in read)
    assert all(set(r["engines"].split(";")) == {"fieldreader", "rapidocr"} for r in read)
    assert all(list(r)[: len(form_columns(card_spec))] == form_columns(card_spec) for r in lines)
    assert all(r["needs_review"] == keys for r in read)  # at threshold 1.01 every field is doubtful

    rows = list(csv.DictReader((latest / "forms.csv").open()))
    assert list(rows[0]) == form_columns(card_spec) and len(rows) == len(expected)
    assert "DATE_iso" not in rows[0] and all(f"{k}_normalized" in rows[0] for k in keys)

    queue = list(csv.DictReader((latest / "review_queue.csv").open()))
    assert list(queue[0]) == review_columns(card_spec)
    assert len(queue) == 3 * len(keys) and {q["field"] for q in queue} == set(keys)
    assert all(q["crop"] and (latest / q["crop"]).is_file() for q in queue)
    assert all("fieldreader" in json.loads(q["candidates"]) for q in queue)
    assert {e for q in queue for e in json.loads(q["candidates"])} == {"fieldreader", "rapidocr"}

    summary = json.loads((latest / "summary.json").read_text())
    assert summary["form"] == CARD and summary["fields"] == keys
    assert summary["read"] == 3 and summary["rejected"] == 2 and summary["fields_to_review"] == 3 * len(keys)
    assert summary["method"] == "cascade" and "fallback" not in summary
    assert summary["guarantee"]["applies"] is False
    assert "no guarantee is fitted for form 'order_card'" in summary["guarantee"]["statement"]
