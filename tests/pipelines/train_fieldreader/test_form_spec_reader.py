"""The field reader reads any form spec: its lines found on the page, its fields written on them,
its characters in the reader's alphabet, its training lowering the loss — on the example order
card rendered by the synthetic generator (no shared data needed)."""

from __future__ import annotations

import pytest
import torch

from handwriting_pipeline.engines.fieldreader import FieldReaderEngine
from handwriting_pipeline.fieldreader.model import FieldReader
from handwriting_pipeline.fieldreader.predict import read_forms
from handwriting_pipeline.fieldreader.text import ALPHABET, fields_of_lines, form_alphabet, line_fields, line_targets
from handwriting_pipeline.fieldreader.training import LineDataset, collate, prepare_lines, train_reader
from handwriting_pipeline.fields.formspec import hsf_form, load_form
from handwriting_pipeline.forms.boxes import find_line_boxes, to_grey
from handwriting_pipeline.forms.lines import LineSettings, cut_lines
from handwriting_pipeline.synthetic import SpecFormGenerator

CARD = load_form("order_card")


@pytest.fixture(scope="module")
def cards():
    generator = SpecFormGenerator(CARD, seed=3)
    return [generator.render(i) for i in range(8)]


def test_the_lines_of_a_card_are_found_where_they_were_drawn(cards):
    for card in cards:
        boxes, found = find_line_boxes(to_grey(card.image), CARD)
        assert found and list(boxes) == list(CARD.line_names)
        for name, box in boxes.items():  # the printed outline, within a few pixels of where it was drawn
            assert max(abs(a - b) for a, b in zip(box, card.boxes[name])) <= 10, (name, box, card.boxes[name])
    lines = cut_lines(cards[0].image, LineSettings(form="order_card"))
    assert list(lines) == ["ORDER", "PAYMENT", "CSZ"] and all(line.shape[0] > 100 for line in lines.values())


def test_line_texts_and_back_for_every_card(cards):
    for card in cards:
        targets = line_targets(card.fields, CARD)
        assert set(targets) == set(CARD.line_names)
        assert fields_of_lines(targets, CARD) == card.fields
    # a line read without its separator: a field typed in digits takes the trailing number
    assert line_fields("12345678 12-13-89", ("ORDER_NO", "DATE"), CARD) == {"ORDER_NO": "12345678", "DATE": "12-13-89"}
    assert line_fields("Reno NV 89501", ("CITY", "STATE", "ZIP"), CARD) == {"CITY": "Reno", "STATE": "NV", "ZIP": "89501"}


def test_the_reader_of_a_form_outputs_its_characters():
    assert form_alphabet(hsf_form()) == ALPHABET  # the HSF reader is as it was
    alphabet = form_alphabet(CARD)
    assert alphabet.startswith(ALPHABET) and set("$()+") <= set(alphabet)
    reader = FieldReader.stock("order_card")
    assert reader.config.alphabet == alphabet and reader.form.name == "order_card"
    lp = reader.log_probs([torch.zeros(3, 48, 64).numpy()])[0]
    assert lp.shape[1] == len(alphabet) + 1


def test_a_reader_trained_on_cards_reads_cards_and_only_cards(cards, tmp_path):
    torch.manual_seed(0)
    reader = FieldReader.stock("order_card")
    reader.net.freeze_before(0.4)
    lines = prepare_lines(((f"c{i}", c.image, c.fields) for i, c in enumerate(cards)), reader.config.lines, progress=False)
    assert len(lines) == 3 * len(cards) and {line.key for line in lines} == set(CARD.line_names)
    data = LineDataset(lines, reader.config.lines, alphabet=reader.config.alphabet)

    def loss() -> float:
        batch = collate([data[i] for i in range(len(data))])
        with torch.no_grad():
            lp = torch.log_softmax(reader.net(batch["x"], softmax=False), -1)
        return float(torch.nn.functional.ctc_loss(lp.transpose(0, 1), batch["targets"], batch["frames"],
                                                  batch["target_lengths"], zero_infinity=True))

    before = loss()
    settings = {"epochs": 3, "batch_size": 8, "learning_rate": 3e-4, "weight_decay": 0.0, "warmup_ratio": 0.1,
                "augment": 0.0, "max_minutes": None, "patience": 10, "min_delta": 0.0, "gradient_clip_val": 1.0,
                "seed": 0, "progress_bar": False, "accelerator": "cpu"}
    train_reader(reader, lines, lines[:6], settings)
    assert loss() < before * 0.8

    reader.save(tmp_path / "model")
    loaded = FieldReader.load(tmp_path / "model")
    assert loaded.config.lines.form == "order_card" and loaded.config.alphabet == reader.config.alphabet
    readings = read_forms(loaded, [c.image for c in cards[:2]])
    for reading in readings:
        assert reading.error is None and list(reading.fields) == list(CARD.keys)
        assert set(reading.confidence) == set(CARD.keys) and set(reading.lines) == set(CARD.line_names)

    class Ref:  # what the catalog's fieldreader_model gives the engine
        available, path, fingerprint = True, str(tmp_path / "model"), "x"

        @staticmethod
        def bundle():
            return loaded

    assert FieldReaderEngine.form_problem(CARD, model=Ref()) is None
    problem = FieldReaderEngine.form_problem(hsf_form(), model=Ref())
    assert "trained on form 'order_card'" in problem and "form=hsf_top" in problem
    assert FieldReaderEngine.learns_form(CARD)


def test_hsf_only_engines_say_which_form_they_cannot_read():
    from handwriting_pipeline.registry import engine_class

    textract = engine_class("recorded_textract")
    assert textract.form_problem(hsf_form()) is None
    assert "order_card" in textract.form_problem(CARD) and not textract.learns_form(CARD)
    rapidocr = engine_class("rapidocr")  # reads any spec's line boxes, but training does not teach it one
    assert rapidocr.form_problem(CARD) is None and not rapidocr.learns_form(CARD)
