"""Fixtures and helpers of the field reader's tests: cut lines of real held-out train forms, a
hand-made CTC log-probability matrix."""

from __future__ import annotations

import numpy as np
import pytest

from handwriting_pipeline.fieldreader.text import ALPHABET
from handwriting_pipeline.forms.lines import cut_lines


def ctc_matrix(text: str, frames_per_char: int = 3, sure: float = 0.9, alternatives: dict | None = None) -> np.ndarray:
    """A hand-made [frames, symbols] log-probability matrix that spells ``text``: per character
    ``frames_per_char - 1`` frames of it, then a blank (``alternatives``: {position: {other symbol: share}})."""
    symbols = 1 + len(ALPHABET)
    rows = []
    for i, ch in enumerate(text):
        for f in range(frames_per_char):
            p = np.full(symbols, (1 - sure) / (symbols - 1))
            if f == frames_per_char - 1:
                p[0] = sure  # blank between characters
            else:
                p[ALPHABET.index(ch) + 1] = sure
                for alt, share in (alternatives or {}).get(i, {}).items():
                    p[ALPHABET.index(alt) + 1] = share
                    p[ALPHABET.index(ch) + 1] = sure - share
            rows.append(p / p.sum())
    return np.log(np.array(rows))


@pytest.fixture(scope="module")
def shared_lines(shared_hsf_top):
    """(names, cut lines, gold fields, the LabelledForms) of the last 4 shared train forms (held
    out from the field reader's training)."""
    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, _ = read_donut_folder(shared_hsf_top / "train")
    names = forms.labels["file_name"].tolist()[-4:]
    return names, [cut_lines(forms.images[n]) for n in names], [forms.fields(n) for n in names], forms
