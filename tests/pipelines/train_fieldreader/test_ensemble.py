"""Field readers read as one: their CTC posteriors averaged per frame on real lines."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from handwriting_pipeline.fieldreader.ensemble import EnsembleReader, average_log_probs
from handwriting_pipeline.fieldreader.model import FieldReader
from handwriting_pipeline.fieldreader.predict import read_lines
from handwriting_pipeline.forms.lines import to_array


@pytest.fixture(scope="module")
def stock():
    return FieldReader.stock()


def copy_reader(reader: FieldReader) -> FieldReader:
    """A copy with its own torch weights and config."""
    return FieldReader(copy.deepcopy(reader.net), copy.deepcopy(reader.config), None, reader.threads)


def perturbed(reader: FieldReader) -> FieldReader:
    """A copy whose last layer is shifted: other posteriors on the same frames."""
    import torch

    other = copy_reader(reader)
    last = list(other.net.parameters())[-1]
    with torch.no_grad():
        last.add_(0.5 * torch.randn(last.shape, generator=torch.Generator().manual_seed(0)))
    return other


def test_averaged_posteriors_are_a_distribution():
    a, b = np.log(np.full((5, 3), 1 / 3)), np.log(np.array([[0.8, 0.1, 0.1]] * 5))
    mean = average_log_probs([a, b])
    assert np.allclose(np.exp(mean).sum(axis=1), 1.0)
    assert np.allclose(np.exp(mean[0]), [(1 / 3 + 0.8) / 2, (1 / 3 + 0.1) / 2, (1 / 3 + 0.1) / 2])


def test_two_identical_readers_read_like_one(stock, shared_lines):
    _, lines, _, _ = shared_lines
    twin = copy_reader(stock)
    arrays = [to_array(line[key], stock.config.lines) for line in lines for key in ("DATE", "CSZ")]
    single, pair = stock.log_probs(arrays), EnsembleReader([stock, twin]).log_probs(arrays)
    assert [p.shape for p in pair] == [s.shape for s in single]
    assert all(np.allclose(p, s, atol=1e-5) for p, s in zip(pair, single))
    assert [r.fields for r in read_lines(EnsembleReader([stock, twin]), lines)] == [r.fields for r in read_lines(stock, lines)]
    assert EnsembleReader([stock]).config is stock.config
    with pytest.raises(ValueError, match="at least one"):
        EnsembleReader([])


def test_a_different_reader_moves_the_average_between_the_two(stock, shared_lines):
    _, lines, _, _ = shared_lines
    other = perturbed(stock)
    arrays = [to_array(lines[0]["CSZ"], stock.config.lines)]
    a, b = stock.log_probs(arrays)[0], other.log_probs(arrays)[0]
    mean = EnsembleReader([stock, other]).log_probs(arrays)[0]
    assert mean.shape == a.shape and np.allclose(np.exp(mean).sum(axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.exp(mean), (np.exp(a) + np.exp(b)) / 2, atol=1e-5)
    assert not np.allclose(a, b)


def test_a_model_saved_with_retired_keys_still_loads(stock, tmp_path):
    """Models saved before the test-time views and the fine-tuned members were removed carry
    ``views`` / ``members`` in fieldreader.json: ignored on load."""
    import json

    stock.save(tmp_path)
    config = json.loads((tmp_path / "fieldreader.json").read_text())
    config.update(views={"views": "dy=-2;dy=2"}, members={"count": 0})
    (tmp_path / "fieldreader.json").write_text(json.dumps(config))
    loaded = FieldReader.load(tmp_path)
    assert loaded.config.lines == stock.config.lines and not hasattr(loaded.config, "views")
