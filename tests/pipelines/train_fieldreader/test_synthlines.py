"""Real-glyph synthetic lines (issue #20, lever 4) on real shared crops: a glyph bank per writer,
lines deterministic by seed, only the reader's alphabet, glyphs at their writer's heights."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from handwriting_pipeline.config import FieldReaderTrainSettings, SyntheticLinesSettings
from handwriting_pipeline.fieldreader.glyphs import LineInk
from handwriting_pipeline.fieldreader.synthlines import (
    Vocabulary,
    compose,
    donors_of,
    gap_ratios,
    glyph_bank,
    in_writers_case,
    recase,
    synthesize,
)
from handwriting_pipeline.fieldreader.text import ALPHABET, SEP
from handwriting_pipeline.fieldreader.training import prepare_lines
from handwriting_pipeline.forms.lines import LineSettings
from tests.conftest import SHARED as SHARED_DATA

SHARED = SHARED_DATA / "hsf_top"
N_FORMS = 60


@pytest.fixture(scope="module")
def real_lines() -> list:
    if not (SHARED / "train").is_dir():
        pytest.skip(f"shared data not found at {SHARED} (tests that need ../shared/data skip without it)")
    rows = [json.loads(line) for line in (SHARED / "train" / "metadata.jsonl").read_text().splitlines()][:N_FORMS]
    forms = [(r["file_name"], Image.open(SHARED / "train" / r["file_name"]), json.loads(r["ground_truth"])["gt_parse"])
             for r in rows]
    return prepare_lines(forms, LineSettings(), progress=False)


@pytest.fixture(scope="module")
def bank(real_lines) -> dict:
    # no reader: every line is banked where its ink matches its label piece by piece
    return glyph_bank(None, real_lines, progress=False)


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x.text == y.text and np.array_equal(x.image, y.image) for x, y in zip(a, b))


def test_the_bank_holds_each_writers_own_glyphs(bank, real_lines):
    assert len(bank) >= N_FORMS // 2, "most writers give some glyphs"
    labels = {}
    for line in real_lines:
        labels.setdefault(line.form, "")
        labels[line.form] += line.text
    for name, writer in bank.items():
        assert set(writer.glyphs) <= set(labels[name]), "a writer's bank holds only characters its labels have"
        assert all(ink.image.dtype == np.uint8 and set(np.unique(ink.image)) <= {0, 255}
                   for inks in writer.glyphs.values() for ink in inks)


def test_synthetic_lines_are_deterministic_by_seed(bank, real_lines):
    vocab = Vocabulary.of(real_lines)
    first = synthesize(bank, vocab, 12, SyntheticLinesSettings(seed=3))
    again = synthesize(bank, vocab, 12, SyntheticLinesSettings(seed=3))
    other = synthesize(bank, vocab, 12, SyntheticLinesSettings(seed=4))
    assert len(first) >= 6
    assert _same(first, again), "the same seed gives the same pixels and texts"
    assert not _same(first, other), "another seed gives other lines"


def test_synthetic_lines_read_only_the_alphabet_and_look_like_the_scans(bank, real_lines):
    lines = synthesize(bank, Vocabulary.of(real_lines), 24, SyntheticLinesSettings(seed=0, date_share=0.5))
    assert {line.key for line in lines} == {"DATE", "CSZ"}
    for line in lines:
        assert line.text and set(line.text) <= set(ALPHABET), line.text
        if line.key == "CSZ":
            assert line.text.count(SEP) == 2, line.text
        assert set(np.unique(line.image)) <= {0, 255}, "binary ink like the scans"
        assert (line.image == 0).any() and line.form.startswith("synthetic:")


def test_a_generated_line_keeps_its_writers_heights(bank, real_lines):
    donors, ratios = donors_of(bank), gap_ratios(bank)
    refs = {}
    for name, writer in bank.items():
        real = [ln for ln in real_lines if ln.form == name and ln.key in writer.lines]
        text = "".join(c for c in real[0].text if c in writer.glyphs or c in " " + SEP).strip(" " + SEP)
        if sum(c.isalnum() for c in text) < 4:
            continue
        image, placed = compose(np.random.default_rng(0), writer, text, real[0].key, donors, ratios)
        assert all(p.source == name for p in placed), "characters the writer has are the writer's own"
        assert image.shape[0] == writer.lines[real[0].key][0], "the canvas has the writer's line height"
        ink = LineInk.of(image)
        letters = ~ink.marks & ~ink.noise
        bottoms = ink.stats[letters, 1] + ink.stats[letters, 3]
        refs[name] = (ink.ref, writer.cap, float(np.median(bottoms)), writer.lines[real[0].key][1])
    assert len(refs) >= 4
    for ref, cap, bottom, baseline in refs.values():
        assert abs(bottom - baseline) < 0.25 * cap, "the glyphs stand on the writer's baseline"
        assert 0.6 < ref / cap < 1.5, "letters as tall as the writer's own"
    small, tall = min(refs, key=lambda n: refs[n][1]), max(refs, key=lambda n: refs[n][1])
    if refs[tall][1] > 1.3 * refs[small][1]:
        assert refs[tall][0] > refs[small][0], "a tall writer's synthetic line is taller than a small writer's"


def test_case_follows_what_the_writer_wrote(bank):
    capitals = next(w for w in bank.values() if all(not c.islower() for c in w.glyphs) and "A" in w.glyphs)
    assert in_writers_case("a", capitals) == "A", "a writer of capitals writes capitals"
    rng = np.random.default_rng(0)
    cased = {recase(rng, "Corpus Christi") for _ in range(60)}
    assert "CORPUS CHRISTI" in cased and "Corpus Christi" in cased
    assert any(any(c.isupper() for c in word[1:]) and not word.isupper() for text in cased for word in text.split()), \
        "capitals inside words, like the labels' ChiNook"


def test_the_synthetic_block_is_a_typed_setting():
    settings = FieldReaderTrainSettings.from_params({"synthetic": {"enabled": True, "per_line": 1.0}})
    assert settings.synthetic.enabled and settings.synthetic.per_line == 1.0
    with pytest.raises(ValueError, match="unknown key 'ratio'"):
        FieldReaderTrainSettings.from_params({"synthetic": {"ratio": 1.0}})


def test_the_synthetic_stage_trains_on_real_and_synthetic_lines(real_lines, tmp_path):
    import torch

    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.recipe import with_synthetic_lines

    torch.manual_seed(0)
    reader = FieldReader.stock()
    reader.net.freeze_before(0.6)
    reader.config.summary = {}
    settings = FieldReaderTrainSettings.from_params({
        "checkpoint_dir": str(tmp_path / "ckpt"),
        "trainer": {"epochs": 5, "batch_size": 4, "progress_bar": False, "accelerator": "cpu"},
        "synthetic": {"enabled": True, "per_line": 0.5, "epochs": 1}})
    fit = [ln for ln in real_lines if ln.key == "DATE"][:8]
    history, _ = with_synthetic_lines(reader, fit, fit[:2], settings)
    assert len(history) == 1, "synthetic.epochs, not trainer.epochs"
    assert isinstance(reader.config.summary["synthetic_lines"], int)  # what the reader's check let through
