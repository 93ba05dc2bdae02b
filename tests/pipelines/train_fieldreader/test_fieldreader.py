"""The field reader: conversion parity, fine-tuning, save/load, lexicon decoding, bad input."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from handwriting_pipeline.fieldreader.decode import beam_search, greedy, text_log_likelihood
from handwriting_pipeline.fieldreader.graph import stock_onnx_path
from handwriting_pipeline.fieldreader.lexicon import Lexicon, case_pattern
from handwriting_pipeline.fieldreader.model import FieldReader, build_network
from handwriting_pipeline.fieldreader.predict import read_forms
from handwriting_pipeline.fieldreader.text import ALPHABET, SEP, fields_from_lines, line_targets
from handwriting_pipeline.fieldreader.training import Line, LineDataset, collate, train_reader
from handwriting_pipeline.forms.lines import LineSettings, batch_arrays, cut_lines, to_array
from tests.conftest import SHARED as SHARED_DATA
from tests.pipelines.train_fieldreader.conftest import ctc_matrix

SHARED = SHARED_DATA / "hsf_top"
needs_shared = pytest.mark.skipif(not (SHARED / "train").is_dir(),
                                  reason=f"shared data not found at {SHARED} (tests that need ../shared/data skip without it)")


def _shared_forms(n: int = 4) -> list[tuple[str, Image.Image, dict]]:
    rows = [json.loads(line) for line in (SHARED / "train" / "metadata.jsonl").read_text().splitlines()[:n]]
    return [(r["file_name"], Image.open(SHARED / "train" / r["file_name"]),
             json.loads(r["ground_truth"])["gt_parse"]) for r in rows]


@pytest.fixture(scope="module")
def stock() -> FieldReader:
    torch.manual_seed(0)
    return FieldReader.stock()


def test_targets_round_trip():
    fields = {"DATE": "8/28/89", "CITY": "EAGAN,", "STATE": "None", "ZIP": "55122"}
    targets = line_targets(fields)
    assert targets == {"DATE": "8/28/89", "CSZ": f"EAGAN,{SEP}{SEP}55122"}
    assert fields_from_lines(targets["DATE"], targets["CSZ"]) == fields
    # without its separators the line is split by rules
    assert fields_from_lines("", "Murray KY 42071") == {"DATE": "None", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"}
    assert line_targets({"DATE": "None", "CITY": "None", "STATE": "None", "ZIP": "None"}) == {"DATE": "", "CSZ": ""}


@needs_shared
def test_torch_graph_matches_onnx_runtime_on_real_lines():
    import onnxruntime as ort

    lines = [line for _, image, _ in _shared_forms(3) for line in cut_lines(image).values()]
    batch, _ = batch_arrays([to_array(line, LineSettings()) for line in lines])
    session = ort.InferenceSession(str(stock_onnx_path()), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: batch})[0]
    from handwriting_pipeline.fieldreader.graph import OnnxRecognizer

    with torch.no_grad():
        got = OnnxRecognizer.from_onnx(stock_onnx_path())(torch.from_numpy(batch)).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3
    assert (got.argmax(-1) == expected.argmax(-1)).mean() > 0.999


@needs_shared
def test_stock_reader_reads_a_real_date_line(stock):
    name, image, fields = _shared_forms(1)[0]
    log_probs = stock.log_probs([to_array(cut_lines(image)["DATE"], stock.config.lines)])[0]
    assert greedy(log_probs) == fields["DATE"]  # "8-4-89": the stock model already reads digits


@needs_shared
def test_a_line_reads_the_same_whatever_is_read_with_it(stock):
    """Padding to a multiple of pad_multiple columns, batched by padded width: a line's
    log-probabilities alone equal those read among wider and narrower lines of other forms."""
    lines = [to_array(line, stock.config.lines) for _, image, _ in _shared_forms(4) for line in cut_lines(image).values()]
    alone = [stock.log_probs([array])[0] for array in lines]
    together = stock.log_probs(lines)
    assert len({a.shape[2] for a in lines}) > 2  # the lines really differ in width
    for a, b, array in zip(alone, together, lines):
        assert a.shape == b.shape == (array.shape[2] // 8, 1 + len(ALPHABET))
        np.testing.assert_allclose(a, b, atol=1e-4)


@needs_shared
def test_a_few_fine_tune_steps_lower_the_ctc_loss(tmp_path):
    torch.manual_seed(0)
    reader = FieldReader.stock()
    reader.net.freeze_before(0.4)
    lines = [Line(line, line_targets(f)[k], k, n) for n, image, f in _shared_forms(4)
             for k, line in cut_lines(image).items()]
    data = LineDataset(lines, reader.config.lines)

    def loss() -> float:
        batch = collate([data[i] for i in range(len(data))])
        with torch.no_grad():
            lp = torch.log_softmax(reader.net(batch["x"], softmax=False), -1)
        return float(torch.nn.functional.ctc_loss(lp.transpose(0, 1), batch["targets"], batch["frames"],
                                                  batch["target_lengths"], zero_infinity=True))

    before = loss()
    settings = {"epochs": 5, "batch_size": 4, "learning_rate": 2e-4, "weight_decay": 0.0, "warmup_ratio": 0.1,
                "augment": 0.0, "max_minutes": None, "patience": 10, "min_delta": 0.0, "gradient_clip_val": 1.0,
                "seed": 0, "progress_bar": False, "accelerator": "cpu"}
    history, reason = train_reader(reader, lines, lines, settings, checkpoint_dir=tmp_path / "ckpt")
    assert loss() < before * 0.7
    assert len(history) >= 1 and "val_cer" in history[0]
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    assert reason


@needs_shared
def test_save_load_gives_identical_predictions_in_torch_and_onnx(stock, tmp_path):
    images = [image for _, image, _ in _shared_forms(2)]
    stock.save(tmp_path / "model")
    onnx_reader = FieldReader.load(tmp_path / "model")
    torch_reader = FieldReader.load(tmp_path / "model", with_torch=True)
    torch_reader.onnx_file = None  # force the torch path
    a, b, c = (read_forms(r, images) for r in (stock, onnx_reader, torch_reader))
    assert [r.fields for r in a] == [r.fields for r in b] == [r.fields for r in c]
    for x, y in zip(a, b):
        assert x.confidence == pytest.approx(y.confidence, abs=1e-3)


@needs_shared
def test_a_reader_of_taller_lines_reads_them_alike_in_torch_and_onnx(tmp_path):
    """``line_height`` 64: lines scaled to 64 rows, saved with the model; the ONNX graph written
    back takes them (its input height is symbolic) and reads as the torch network does."""
    reader = FieldReader.stock(height=64)
    name, image, _ = _shared_forms(1)[0]
    arrays = [to_array(line, reader.config.lines) for line in cut_lines(image).values()]
    assert {a.shape[1] for a in arrays} == {64} and batch_arrays(arrays)[0].shape[2] == 64
    reader.save(tmp_path / "tall")
    loaded = FieldReader.load(tmp_path / "tall")
    assert loaded.config.lines.height == 64 and loaded.onnx_file is not None
    for a, b in zip(reader.log_probs(arrays), loaded.log_probs(arrays)):
        np.testing.assert_allclose(np.exp(a), np.exp(b), atol=1e-4)  # (one of them floors log p at about -27.6)
    assert [r.fields for r in read_forms(loaded, [image])] == [r.fields for r in read_forms(reader, [image])]
    assert FieldReader.stock().config.lines == LineSettings()  # the default stays 48 rows


def test_beam_search_and_likelihood_on_a_hand_made_matrix():
    lp = ctc_matrix("Ky.")
    assert greedy(lp) == "Ky."
    best, score = beam_search(lp)[0]
    assert best == "Ky."
    ll = text_log_likelihood(lp, ["Ky.", "KY.", "Ky"])
    # the beam keeps only the likelier alignments: its score is a lower bound of the exact one
    assert score <= ll[0] + 1e-6 and ll[0] - score < 0.05
    assert ll[0] > ll[1] and ll[0] > ll[2]


def test_lexicon_keeps_the_writers_case_and_fixes_a_supported_city():
    lexicon = Lexicon.from_labels([{"DATE": "None", "CITY": "Garland", "STATE": "TX", "ZIP": "75040"}], penalty=2.0)
    # the image reads "GARLANd" (the writer's own case): a known city, nothing to change
    lp = ctc_matrix(f"GARLANd{SEP}TX{SEP}75040")
    assert lexicon.rerank(lp, beam_search(lp), "CSZ")[0][0] == f"GARLANd{SEP}TX{SEP}75040"
    # "Garlamd" with an ambiguous 4th-from-last letter: the known city wins, in the writer's case
    lp = ctc_matrix(f"Garlamd{SEP}TX{SEP}75040", alternatives={5: {"n": 0.35}})
    assert lexicon.rerank(lp, beam_search(lp), "CSZ")[0][0] == f"Garland{SEP}TX{SEP}75040"


def test_lexicon_rejects_a_city_the_image_does_not_support():
    lexicon = Lexicon.from_labels([{"DATE": "None", "CITY": "Garland", "STATE": "TX", "ZIP": "75040"}], penalty=2.0)
    # "Garlomd" read with certainty: two letters off a known city, the image wins
    lp = ctc_matrix(f"Garlomd{SEP}TX{SEP}75040", sure=0.99)
    assert lexicon.rerank(lp, beam_search(lp), "CSZ")[0][0] == f"Garlomd{SEP}TX{SEP}75040"


def test_case_patterns():
    assert [case_pattern(t) for t in ("WACO", "Waco", "waco", "DouglasVILLE")] == ["upper", "title", "lower", "mixed"]


def _truncated_png() -> Image.Image:
    buffer = io.BytesIO()
    Image.effect_noise((2460, 350), 60).save(buffer, format="PNG")
    return Image.open(io.BytesIO(buffer.getvalue()[:5000]))  # opens lazily; pixels are cut off


@pytest.mark.parametrize("make, error", [
    (lambda: Image.new("1", (2460, 350), 1), None),  # blank crop: "None" everywhere, no error
    (lambda: Image.new("L", (800, 600), 128), "800x600: not a registered 'hsf_top' image (expected about 2460x350)"),
    (_truncated_png, "truncated"),
], ids=["blank", "wrong-size", "truncated-png"])
def test_bad_images_give_none_with_the_error(stock, make, error):
    reading = read_forms(stock, [make()])[0]
    assert set(reading.fields.values()) == {"None"}
    if error is None:
        assert reading.error is None
    else:
        assert error in (reading.error or "")


def test_network_head_is_cut_to_the_alphabet():
    net = build_network()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 48, 64), softmax=False)
    assert out.shape == (1, 8, 1 + len(ALPHABET))
