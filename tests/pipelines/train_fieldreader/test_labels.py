"""Training with the authors' second annotation: the two-label CTC loss, the lines that carry a
second label, the three ``train_fieldreader.labels`` modes wired into ``fine_tune``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from handwriting_pipeline.config import FieldReaderTrainSettings
from handwriting_pipeline.fieldreader import training
from handwriting_pipeline.fieldreader.labels import (
    check_mode,
    disagreements,
    read_second_annotation,
    second_labels,
    use_labels,
)
from handwriting_pipeline.fieldreader.text import ALPHABET, SEP, encode, line_targets
from handwriting_pipeline.fieldreader.training import Line, LineDataset, collate, ctc_loss_two_labels
from handwriting_pipeline.forms.lines import LineSettings


def _flat(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    codes = [encode(t) for t in texts]
    return (torch.tensor([c for code in codes for c in code], dtype=torch.long),
            torch.tensor([len(c) for c in codes], dtype=torch.long))


@pytest.fixture(scope="module")
def log_probs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.log_softmax(torch.randn(3, 40, 1 + len(ALPHABET)), -1), torch.tensor([40, 36, 30])


def test_two_label_loss_equals_the_one_label_loss_when_the_labels_agree(log_probs):
    lp, frames = log_probs
    texts = ["Ga.", "8/28/89", f"Waco{SEP}TX{SEP}76710"]
    targets, lengths = _flat(texts)
    one = ctc_loss_two_labels(lp, frames, targets, lengths)
    assert torch.isclose(one, ctc_loss_two_labels(lp, frames, targets, lengths, targets, lengths))
    plain = torch.nn.functional.ctc_loss(lp.transpose(0, 1), targets, frames, lengths, zero_infinity=True)
    assert torch.isclose(one, plain)  # without a second label: the loss as before


def test_two_label_loss_is_the_mean_over_the_two_labels_when_they_differ(log_probs):
    lp, frames = log_probs
    first, second = ["Ga.", "8/28/89", f"Waco{SEP}TX{SEP}76710"], ["GA", "8/28/89", f"WACO{SEP}TX{SEP}76710"]
    a, b = ctc_loss_two_labels(lp, frames, *_flat(first)), ctc_loss_two_labels(lp, frames, *_flat(second))
    both = ctc_loss_two_labels(lp, frames, *_flat(first), *_flat(second))
    assert not torch.isclose(a, b) and torch.isclose(both, (a + b) / 2)
    # per line too: the line whose labels agree counts once, the others half each
    per_line = [(ctc_loss_two_labels(lp[i:i + 1], frames[i:i + 1], *_flat([first[i]]))
                 + ctc_loss_two_labels(lp[i:i + 1], frames[i:i + 1], *_flat([second[i]]))) / 2 for i in range(3)]
    assert torch.isclose(both, torch.stack(per_line).mean())


def test_a_batch_gets_second_targets_only_when_a_line_has_a_second_label():
    image = np.full((48, 160), 255, np.uint8)
    plain = [Line(image, "Ga.", "CSZ", "a.png"), Line(image, "8/4/89", "DATE", "a.png")]
    batch = collate([LineDataset(plain, LineSettings())[i] for i in range(2)])
    assert "second_targets" not in batch  # the default: batches exactly as before
    lines = [Line(image, "Ga.", "CSZ", "a.png", second="GA"), plain[1]]
    batch = collate([LineDataset(lines, LineSettings())[i] for i in range(2)])
    assert batch["second_targets"].tolist() == encode("GA") + encode("8/4/89")
    assert batch["second_lengths"].tolist() == [2, 6] and batch["texts"] == ["Ga.", "8/4/89"]


def test_label_modes():
    image = np.zeros((4, 4), np.uint8)
    lines = [Line(image, "Ga.", "CSZ", "a.png", second="GA"), Line(image, "8/4/89", "DATE", "a.png")]
    assert [line.second for line in use_labels(lines, "first")] == [None, None]
    assert use_labels(lines, "both") == lines
    assert [line.text for line in use_labels(lines, "drop_disagreements")] == ["8/4/89"]
    with pytest.raises(ValueError, match="one of first, drop_disagreements, both"):
        check_mode("second")
    assert second_labels("first", "/nowhere/second_annotation.csv") is None  # not read by default
    with pytest.raises(FileNotFoundError, match="second annotation not found"):
        second_labels("both", "/nowhere/second_annotation.csv")
    assert FieldReaderTrainSettings().labels == "first"


def test_the_real_second_annotation(shared_hsf_top):
    from handwriting_pipeline.datasets.forms import read_donut_folder

    second = read_second_annotation(shared_hsf_top / "second_annotation.csv")
    forms, _ = read_donut_folder(shared_hsf_top / "train")
    first = {n: forms.fields(n) for n in forms.labels["file_name"]}
    table = disagreements(first, second)
    assert table["file_name"].nunique() == 232  # of the 1,400 train forms (../shared/data/README.md)


def _second_csv(tmp_path, forms, names, city: str) -> str:
    rows = [{"file_name": n, "split": "train", **forms.fields(n)} for n in names]
    rows[0]["CITY"] = city
    path = tmp_path / "second_annotation.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("mode", ["first", "drop_disagreements", "both"])
def test_fine_tune_trains_on_the_labels_asked_for(shared_hsf_top, tmp_path, monkeypatch, mode):
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.fieldreader.recipe import fine_tune

    forms, _ = read_donut_folder(shared_hsf_top / "train")
    names = forms.labels["file_name"].tolist()[:3]
    seen = {}

    def spy(reader, fit_lines, held_lines, settings, **kwargs):
        seen.update(fit=fit_lines, held=held_lines)
        return [], "spy: not trained"

    monkeypatch.setattr(training, "train_reader", spy)
    path = _second_csv(tmp_path, forms, names, "Elsewhere") if mode != "first" else str(tmp_path / "absent.csv")
    params = {"labels": mode, "second_annotation": path, "checkpoint_dir": None}
    fine_tune(forms, {"fit": names[:2], "holdout": names[2:]}, params)
    csz = line_targets({**forms.fields(names[0]), "CITY": "Elsewhere"})["CSZ"]
    first_form = [(line.key, line.second) for line in seen["fit"] if line.form == names[0]]
    if mode == "first":
        assert len(seen["fit"]) == 4 and all(line.second is None for line in seen["fit"])
    elif mode == "both":
        assert len(seen["fit"]) == 4 and first_form == [("DATE", None), ("CSZ", csz)]
        assert sum(line.second is not None for line in seen["fit"]) == 1
    else:
        assert len(seen["fit"]) == 3 and first_form == [("DATE", None)]
    assert len(seen["held"]) == 2 and all(line.second is None for line in seen["held"])  # chosen on first labels


def test_the_lightning_module_trains_on_the_mean_of_the_two_labels():
    from handwriting_pipeline.fieldreader.model import FieldReader

    torch.manual_seed(0)
    reader = FieldReader.stock()
    module = training.FieldReaderModule(reader, 1e-4, 0.0, 0.0)
    rng = np.random.default_rng(0)
    image = np.where(rng.random((48, 320)) < 0.05, 0, 255).astype(np.uint8)
    lines = [Line(image, "Ga.", "CSZ", "a.png", second="GA"), Line(image, "8/4/89", "DATE", "b.png")]
    firsts = [Line(image, "Ga.", "CSZ", "a.png"), lines[1]]
    seconds = [Line(image, "GA", "CSZ", "a.png"), lines[1]]

    def loss(items: list[Line]) -> torch.Tensor:
        data = LineDataset(items, reader.config.lines)
        with torch.no_grad():
            return module.ctc_loss(collate([data[i] for i in range(len(items))]))[0]

    assert torch.isclose(loss(lines), (loss(firsts) + loss(seconds)) / 2, atol=1e-5)
    assert not torch.isclose(loss(firsts), loss(seconds))
