"""Donut reads the form spec (issue #27): its tokens come from the spec's fields, the HSF form's
tokens stay exactly as they were (saved models keep working), and a tiny Donut built for the
example order card (conf/base/forms/order_card.yml) writes, saves and reads back the card's
fields. No shared data: the cards are rendered by the synthetic generator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from handwriting_pipeline.datasets import DonutModelRef
from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.donut.data import DonutEncoder, FormsDataset
from handwriting_pipeline.donut.grammar import (
    TASK_TOKEN,
    field_tokens,
    grammar_problem,
    json2token,
    task_token,
    token2json,
)
from handwriting_pipeline.donut.inference import DonutPredictor
from handwriting_pipeline.donut.model import DonutBundle, Preprocessing, build_processor, form_roi, saved_form
from handwriting_pipeline.donut.recipe import build_model, build_tokenizer, fine_tune, pretrain_on_synthetic
from handwriting_pipeline.donut.tokenizer import train_tokenizer
from handwriting_pipeline.engines.donut import DonutEngine
from handwriting_pipeline.fields import KEYS, NONE, clean_fields
from handwriting_pipeline.fields.charsets import TYPE_NAMES
from handwriting_pipeline.fields.formspec import hsf_form, load_form, parse_form
from handwriting_pipeline.fields.types import type_of
from handwriting_pipeline.synthetic import SpecFormGenerator
from handwriting_pipeline.synthetic.values import sample_value

CARD = load_form("order_card")
#: the HSF tokens every saved HSF model has (their ids depend on this exact list and order)
HSF_TOKENS = ["<s_hsf>", "<s_DATE>", "</s_DATE>", "<s_CITY>", "</s_CITY>", "<s_STATE>", "</s_STATE>",
              "<s_ZIP>", "</s_ZIP>"]
HSF_VALUES = {"DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"}
OPTIONS = {"choice": {"options": ["cash", "card"]}, "digits": {"length": 4}}


def _every_type() -> object:
    """A form with one field of every field type (on one line each)."""
    fields = [{"name": f"F_{t}", "type": t, **({t: OPTIONS[t]} if t in OPTIONS else {})} for t in TYPE_NAMES]
    return parse_form({"name": "every_type", "title": "one field of each type", "page": {"size": [1000, 1000]},
                       "lines": [{"name": f"L_{t}", "fields": [f"F_{t}"]} for t in TYPE_NAMES], "fields": fields})


EVERY_TYPE = _every_type()


def _values(spec, n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` forms' values of ``spec``, as the synthetic renderer writes them."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        context: dict = {}
        out.append({f.name: sample_value(rng, type_of(f), context) for f in spec.fields})
    return out


# ------------------------------------------------------------------ the grammar
def test_the_hsf_tokens_and_sequences_are_unchanged():
    assert field_tokens() == HSF_TOKENS == field_tokens(hsf_form())
    assert task_token() == task_token(hsf_form()) == TASK_TOKEN == "<s_hsf>"
    assert json2token(HSF_VALUES) == json2token(HSF_VALUES, hsf_form()) == (
        "<s_DATE>8/28/89</s_DATE><s_CITY>Murray</s_CITY><s_STATE>KY</s_STATE><s_ZIP>42071</s_ZIP>")
    # a model saved before forms were recorded reads the HSF form
    old = Preprocessing.from_dict({"roi": [700, 140, 2300, 340], "task_token": "<s_hsf>"})
    assert old.form == "hsf_top" and old.spec.keys == KEYS and saved_form(None) == "hsf_top"


def test_another_forms_tokens_come_from_its_spec():
    assert field_tokens(CARD) == ["<s_order_card>"] + [t for k in CARD.keys for t in (f"<s_{k}>", f"</s_{k}>")]
    assert grammar_problem(CARD) is None and DonutEngine.learns_form(CARD) and DonutEngine.learns_form(hsf_form())
    clash = parse_form({"name": "card", "title": "x", "page": {"size": [100, 100]},
                        "lines": [{"name": "L", "fields": ["card"]}], "fields": [{"name": "card", "type": "text"}]})
    assert "task token" in grammar_problem(clash) and not DonutEngine.learns_form(clash)


@pytest.mark.parametrize("spec", [CARD, EVERY_TYPE], ids=["order_card", "every_type"])
def test_the_grammar_round_trips_every_field_type(spec):
    forms = _values(spec, 30)
    assert {f.type for f in spec.fields} <= set(TYPE_NAMES)
    tokenizer = train_tokenizer([v for form in forms for v in form.values()], form=spec)
    processor = build_processor(tokenizer, [32, 64])
    for fields in forms:
        gold = clean_fields(fields, spec.keys)
        sequence = json2token(fields, spec)
        assert token2json(task_token(spec) + sequence + "</s>", form=spec) == gold
        ids = tokenizer(sequence + tokenizer.eos_token, add_special_tokens=False).input_ids
        assert tokenizer.unk_token_id not in ids, sequence
        text = tokenizer.decode(ids, skip_special_tokens=False).replace(tokenizer.eos_token, "")
        assert token2json(text, processor=processor, form=spec) == gold
    for token in field_tokens(spec):
        assert len(tokenizer(token, add_special_tokens=False).input_ids) == 1, token
    # a cut-off generation: what was closed is kept, the rest is "None"
    first, second = spec.keys[:2]
    cut = f"<s_{first}>12</s_{first}><s_{second}>3"
    assert token2json(cut, form=spec) == {**dict.fromkeys(spec.keys, NONE), first: "12"}


# ------------------------------------------------------------------ a Donut for the card
@pytest.fixture(scope="module")
def cards() -> LabelledForms:
    generator = SpecFormGenerator(CARD, seed=5, blank_rate=0.0)
    rows, images = [], {}
    for i in range(4):
        image, fields = generator.sample(i)
        images[f"card_{i}.png"] = image
        rows.append({"file_name": f"card_{i}.png", "split": "train", **fields})
    return LabelledForms(pd.DataFrame(rows), images, keys=CARD.keys)


@pytest.fixture()
def card_bundle(cards, train_params) -> DonutBundle:
    torch.manual_seed(0)
    tokenizer = build_tokenizer(cards, train_params, form="order_card")
    return build_model(tokenizer, train_params, form="order_card")


def test_a_donut_for_the_card_writes_the_cards_fields(card_bundle, cards, tmp_path):
    prep, tokenizer = card_bundle.preprocessing, card_bundle.processor.tokenizer
    assert prep.form == "order_card" and prep.task_token == "<s_order_card>"
    assert card_bundle.model.config.decoder_start_token_id == tokenizer.convert_tokens_to_ids("<s_order_card>")
    assert prep.roi == form_roi(CARD) and prep.reference_size == list(CARD.page.area)
    assert form_roi(CARD) == [60, 200, 1640, 920]  # the line boxes' band, half a box's height around it
    item = DonutEncoder(card_bundle.processor, prep)(cards.images["card_0.png"], cards.fields("card_0.png"))
    assert item["fields"] == cards.fields("card_0.png")
    assert tokenizer.decode(item["labels"]).startswith(f"<s_{CARD.keys[0]}>")

    card_bundle.save(tmp_path / "model")
    assert saved_form(tmp_path / "model") == "order_card"
    loaded = DonutBundle.load(tmp_path / "model")
    assert loaded.preprocessing.spec == CARD
    [prediction] = DonutPredictor(loaded, batch_size=2, device="cpu", max_length=24).predict(
        [cards.images["card_1.png"]])
    assert list(prediction.fields) == list(CARD.keys) == list(prediction.confidence) and prediction.error is None

    ref = DonutModelRef(tmp_path / "model")
    assert DonutEngine.form_problem(CARD, model=ref) is None
    assert "trained on form 'order_card'" in DonutEngine.form_problem(hsf_form(), model=ref)
    engine = DonutEngine.from_model(ref, batch_size=2, max_length=24, device="cpu")
    [result] = engine.read_batch([cards.images["card_2.png"]], ["card_2.png"])
    assert result.keys == CARD.keys and list(result.to_record("card_2.png"))[1:1 + len(CARD.keys)] == list(CARD.keys)


def test_the_card_donut_trains_on_cards_and_refuses_other_labels(card_bundle, cards, train_params):
    params = {**train_params, "pretrain": {**train_params["pretrain"], "num_forms": 4},
              "trainer": {**train_params["trainer"], "val_batch_size": 4}}
    bundle, history = pretrain_on_synthetic(card_bundle, cards, params)  # rendered order cards
    assert list(history["stage"]) == ["pretrain"] and "CBA_ORDER_NO" in history.columns
    hsf_forms = LabelledForms(pd.DataFrame([{"file_name": "x.png", **HSF_VALUES}]), {})
    with pytest.raises(ValueError, match="Donut learns form 'order_card'"):
        fine_tune(bundle, hsf_forms, cards, params)
    hsf_bundle = build_model(build_tokenizer(cards, params), params)  # no form: the HSF form (the step always runs)
    with pytest.raises(ValueError, match="labelled with ORDER_NO"):
        fine_tune(hsf_bundle, cards, None, params)
    data = FormsDataset(cards, DonutEncoder(bundle.processor, bundle.preprocessing))
    assert data.fields[0] == cards.fields("card_0.png")
