"""The style layer: forced alignment, glyph features on real crops, decoding that
decides case/dots/spaces without respelling, saving it with the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from handwriting_pipeline.fieldreader.align import align, viterbi_path
from handwriting_pipeline.fieldreader.decode import beam_search
from handwriting_pipeline.fieldreader.glyphs import CASE_FEATURES, GAP_FEATURES, Parsed, letter_indices, line_style
from handwriting_pipeline.fieldreader.lexicon import Lexicon
from handwriting_pipeline.fieldreader.model import FieldReader
from handwriting_pipeline.fieldreader.style import Examples, StyleModel, StyleReranker, base_variant, fit_weights, style_of
from handwriting_pipeline.fieldreader.text import SEP, line_targets
from handwriting_pipeline.forms.lines import LineSettings, cut_lines, to_array
from tests.conftest import SHARED as SHARED_DATA
from tests.pipelines.train_fieldreader.conftest import ctc_matrix

SHARED = SHARED_DATA / "hsf_top"
needs_shared = pytest.mark.skipif(not (SHARED / "train").is_dir(),
                                  reason=f"shared data not found at {SHARED} (tests that need ../shared/data skip without it)")
H_X, TOP_CAP = CASE_FEATURES.index("h_x"), CASE_FEATURES.index("top_cap")
MARKS, MARK_BOTTOM = GAP_FEATURES.index("marks"), GAP_FEATURES.index("mark_bottom")


@pytest.fixture(scope="module")
def forms() -> dict[str, tuple[Image.Image, dict]]:
    if not (SHARED / "train").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    rows = [json.loads(line) for line in (SHARED / "train" / "metadata.jsonl").read_text().splitlines()]
    return {r["file_name"]: (SHARED / "train" / r["file_name"], json.loads(r["ground_truth"])["gt_parse"]) for r in rows}


@pytest.fixture(scope="module")
def stock() -> FieldReader:
    torch.manual_seed(0)
    return FieldReader.stock()


def _style(reader: FieldReader, forms, name: str, key: str = "CSZ"):
    path, fields = forms[name]
    line = cut_lines(Image.open(path), reader.config.lines)[key]
    log_probs = reader.log_probs([to_array(line, reader.config.lines)])[0]
    return style_of(log_probs, line, line_targets(fields)[key], key, reader.config.lines)


def test_viterbi_alignment_of_a_hand_made_matrix():
    text = f"GA.{SEP}30134"
    path = viterbi_path(ctc_matrix(text), text)
    # each character is emitted on its own two frames, the blanks in between
    assert path.tolist() == [v for i in range(len(text)) for v in (i, i, -1)]
    assert viterbi_path(ctc_matrix("GA"), "GAAAA") is None  # more characters than frames can hold


@needs_shared
def test_forced_alignment_on_a_tiny_trained_reader(forms, tmp_path):
    from handwriting_pipeline.fieldreader.training import Line, train_reader

    torch.manual_seed(0)
    reader = FieldReader.stock()
    reader.net.freeze_before(0.6)
    names = list(forms)[:3]
    lines = [Line(cut_lines(Image.open(forms[n][0]))["DATE"], forms[n][1]["DATE"], "DATE", n) for n in names]
    settings = {"epochs": 1, "batch_size": 3, "learning_rate": 1e-4, "weight_decay": 0.0, "warmup_ratio": 0.0,
                "augment": 0.0, "max_minutes": None, "patience": 5, "min_delta": 0.0, "gradient_clip_val": 1.0,
                "seed": 0, "progress_bar": False, "accelerator": "cpu"}
    train_reader(reader, lines, [], settings)
    for line in lines:
        log_probs = reader.log_probs([to_array(line.image, reader.config.lines)])[0]
        columns = align(log_probs, line.text, line.image.shape, reader.config.lines)
        assert columns.shape == (len(line.text), 3)
        # spans tile the line left to right; each character's centre lies in its span and on ink
        assert columns[0, 0] == 0 and columns[-1, 1] == line.image.shape[1]
        assert (columns[1:, 0] == columns[:-1, 1]).all()
        assert ((columns[:, 2] >= columns[:, 0]) & (columns[:, 2] <= columns[:, 1])).all()
        ink = (line.image < 128).any(axis=0)
        digits = [i for i, c in enumerate(line.text) if c.isdigit()]
        assert all(ink[int(columns[i, 0]):int(columns[i, 1])].any() for i in digits)


@needs_shared
def test_a_capital_inside_a_word_stands_taller_than_the_writers_small_letters(stock, forms):
    for name, word in (("f0802_22.png", "GreeNsburg"), ("f1254_34.png", "MorgaNton")):
        style = _style(stock, forms, name)
        letters = [style.parsed.glyphs[i] for i in letter_indices(style.parsed)]
        assert "".join(letters).startswith(word)
        heights = dict(zip(range(len(word)), style.case[: len(word), H_X]))
        capital = word.index("N", 1)
        small = [heights[i] for i, c in enumerate(word) if c in "aenorsu"]  # x-height letters
        assert heights[capital] > np.median(small), (word, heights)  # taller than the writer's typical one


@needs_shared
def test_a_states_dot_is_a_mark_on_the_baseline_and_its_absence_is_none(stock, forms):
    dotted = _style(stock, forms, "f1502_33.png")  # Ft. Worth|Tx.|76118
    plain = _style(stock, forms, "f1499_12.png")  # Arlington|Tx|76013

    def after_state(style):
        i = [k for k, gap in enumerate(style.parsed.gaps) if SEP in gap][1]  # the STATE's last glyph
        assert style.parsed.glyphs[i] == "x"
        return style.gaps[i]

    with_dot, without = after_state(dotted), after_state(plain)
    assert with_dot[MARKS] >= 1 and abs(with_dot[MARK_BOTTOM]) < 0.25  # its bottom within a quarter cap height
    assert without[MARKS] == 0


def test_variants_keep_the_letters_and_render_the_base_exactly():
    text = f"Ft. Worth{SEP}Tx.{SEP}76118"
    parsed = Parsed.of(text)
    assert base_variant(parsed).render(parsed) == text
    assert parsed.key() == Parsed.of(f"FT WORTH{SEP}TX{SEP}76118").key() != Parsed.of(f"Ft Worth{SEP}Tz{SEP}76118").key()


def _units(text: str, upper: dict[int, float] | None = None) -> dict[str, np.ndarray]:
    """Style log-probs for ``text``: no opinion except P(upper) of some letters."""
    parsed = Parsed.of(text)
    n_letters, n_gaps = len(letter_indices(parsed)), len(parsed.glyphs)
    case = np.log(np.full((n_letters, 2), 0.5))
    for i, p in (upper or {}).items():
        case[i] = np.log([1 - p, p])
    return {"case": case, "punct": np.log(np.full((n_gaps, 3), 1 / 3)), "space": np.log(np.full((n_gaps, 2), 0.5))}


def test_decoding_keeps_a_spelling_the_image_supports_and_lets_the_glyphs_decide_case():
    lexicon = Lexicon.from_labels([{"DATE": "None", "CITY": "Lebanon", "STATE": "PA", "ZIP": "17042"}], penalty=2.0)
    text = f"LebaNoN{SEP}PA{SEP}17042"
    reranker = StyleReranker(LineSettings(), None, lexicon, weights={"case": 1.0, "punct": 1.0, "space": 1.0})
    # the image reads the writer's capitals surely: the style layer keeps them, even told otherwise
    lp = ctc_matrix(text, sure=0.95)
    choices = reranker.weigh(lp, lexicon.rerank(lp, beam_search(lp), "CSZ"), "CSZ", _units(text, {5: 0.1}))
    assert choices.ranked(reranker.weights)[0][0] == text
    # the 6th letter is o or O to the reader alike: the glyph (P(upper) 0.9) decides
    lp = ctc_matrix(text, alternatives={5: {"O": 0.44}})
    beam = lexicon.rerank(lp, beam_search(lp), "CSZ")
    assert beam[0][0] == text
    choices = reranker.weigh(lp, beam, "CSZ", _units(text, {5: 0.9}))
    assert choices.ranked(reranker.weights)[0][0] == f"LebaNON{SEP}PA{SEP}17042"
    assert choices.ranked({"case": 0.0})[0][0] == text  # without the style weight the image's slight lead stays
    made = set(choices.texts) - {t for t, _ in beam}  # what the style layer added: never respelled
    assert made and all(Parsed.of(t).key() == Parsed.of(text).key() for t in made)
    weights, share = fit_weights([{"CSZ": choices}], [{"DATE": "None", "CITY": "LebaNON", "STATE": "PA", "ZIP": "17042"}])
    assert share == 1.0 and weights["case"] > 0


@needs_shared
def test_style_model_fits_saves_with_the_reader_and_the_engine_uses_it(stock, forms, tmp_path):
    from handwriting_pipeline.engines.fieldreader import FieldReaderEngine

    examples = Examples()
    for name in list(forms)[:6]:
        for key in ("DATE", "CSZ"):
            style = _style(stock, forms, name, key)
            if style is not None:
                examples.add(style)
    model = StyleModel.fit(examples)
    assert "punct" in model.models and model.summary["case"]["rows"] > 20
    stock.style = model
    try:
        stock.save(tmp_path / "model")
    finally:
        stock.style = None
    loaded = FieldReader.load(tmp_path / "model")
    assert isinstance(loaded.style, StyleModel)
    engine = FieldReaderEngine.from_model(tmp_path / "model", beam=4)
    assert isinstance(engine.rerank, StyleReranker)
    assert not isinstance(FieldReaderEngine.from_model(tmp_path / "model", beam=4, style=False).rerank, StyleReranker)
    name = list(forms)[0]
    result = engine.read(Image.open(forms[name][0]), name)
    assert result.error is None and set(result.fields) == {"DATE", "CITY", "STATE", "ZIP"}


@pytest.mark.parametrize("text", ["", " "])
def test_a_reading_without_glyphs_has_no_style_features_and_does_not_fail(text):
    """A reader that reads nothing on a line (an untrained or tiny model on a real scan) gives a
    reading with no glyphs: the style layer has nothing to weigh, and must not fail the form."""
    line = np.full((48, 200), 255, np.uint8)
    line[10:40, 20:30] = 0  # ink the reader did not read
    style = line_style(line, text, np.zeros((len(text), 3), int), date_line=False)
    assert style.case.shape == (0, len(CASE_FEATURES)) and style.gaps.shape == (0, len(GAP_FEATURES))
