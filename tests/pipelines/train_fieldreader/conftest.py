"""Fixtures of the field reader's tests: cut lines of real held-out train forms."""

from __future__ import annotations

import pytest

from handwriting_pipeline.forms.lines import cut_lines


@pytest.fixture(scope="module")
def shared_lines(shared_hsf_top):
    """(names, cut lines, gold fields, the LabelledForms) of the last 4 shared train forms (held
    out from the field reader's training)."""
    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, _ = read_donut_folder(shared_hsf_top / "train")
    names = forms.labels["file_name"].tolist()[-4:]
    return names, [cut_lines(forms.images[n]) for n in names], [forms.fields(n) for n in names], forms
