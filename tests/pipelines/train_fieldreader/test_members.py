"""The field reader ensemble (issue #20, lever 5): members' posteriors averaged on real lines,
members saved in the model folder and read back, the ``fieldreader_ensemble`` engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handwriting_pipeline.config import MembersSettings
from handwriting_pipeline.datasets.model import FieldReaderRef
from handwriting_pipeline.engines.fieldreader import FieldReaderEngine
from handwriting_pipeline.engines.fieldreader_ensemble import FieldReaderEnsembleEngine
from handwriting_pipeline.fieldreader.members import (
    EnsembleReader,
    copy_reader,
    ensemble_of,
    member_trainer_settings,
)
from handwriting_pipeline.fieldreader.model import FieldReader
from handwriting_pipeline.fieldreader.predict import read_lines
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.forms.lines import to_array
from handwriting_pipeline.registry import engine_class


@pytest.fixture(scope="module")
def stock():
    return FieldReader.stock()


def perturbed(reader: FieldReader) -> FieldReader:
    """A copy whose last layer is shifted: other posteriors on the same frames."""
    import torch

    other = copy_reader(reader)
    last = list(other.net.parameters())[-1]
    with torch.no_grad():
        last.add_(0.5 * torch.randn(last.shape, generator=torch.Generator().manual_seed(0)))
    return other


def test_two_identical_members_read_like_one(stock, shared_lines):
    _, lines, _, _ = shared_lines
    twin = copy_reader(stock)
    arrays = [to_array(line[key], stock.config.lines) for line in lines for key in ("DATE", "CSZ")]
    single, pair = stock.log_probs(arrays), EnsembleReader([stock, twin]).log_probs(arrays)
    assert [p.shape for p in pair] == [s.shape for s in single]
    assert all(np.allclose(p, s, atol=1e-5) for p, s in zip(pair, single))
    assert [r.fields for r in read_lines(EnsembleReader([stock, twin]), lines)] == [r.fields for r in read_lines(stock, lines)]
    assert EnsembleReader([stock]).config is stock.config


def test_a_different_member_moves_the_average_between_the_two(stock, shared_lines):
    _, lines, _, _ = shared_lines
    other = perturbed(stock)
    arrays = [to_array(lines[0]["CSZ"], stock.config.lines)]
    a, b = stock.log_probs(arrays)[0], other.log_probs(arrays)[0]
    mean = EnsembleReader([stock, other]).log_probs(arrays)[0]
    assert mean.shape == a.shape and np.allclose(np.exp(mean).sum(axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.exp(mean), (np.exp(a) + np.exp(b)) / 2, atol=1e-5)
    assert not np.allclose(a, b)


def test_member_settings_vary_seed_and_augmentation():
    settings = MembersSettings.from_params({"count": 3, "seeds": [1, 2, 3], "augment": [1.0, 1.5], "epochs": 2})
    first, second, third = (member_trainer_settings(settings, k, {"batch_size": 8}) for k in range(3))
    assert (first.seed, second.seed, third.seed) == (1, 2, 3)
    assert (first.augment, second.augment, third.augment) == (1.0, 1.5, 1.0)
    assert first.epochs == 2 and first.batch_size == 8 and first.learning_rate == settings.learning_rate
    with pytest.raises(ValueError, match="no seed"):
        member_trainer_settings(settings, 3)
    with pytest.raises(ValueError, match="unknown key 'size'"):
        MembersSettings.from_params({"size": 2})


def test_members_round_trip_and_the_engine_reads_with_their_calibration(stock, shared_lines, tmp_path):
    names, lines, _, forms = shared_lines
    assert engine_class("fieldreader_ensemble") is FieldReaderEnsembleEngine
    plain = tmp_path / "plain"
    stock.save(plain)
    ref = FieldReaderRef.from_path(plain)
    assert "no ensemble members" in FieldReaderEnsembleEngine.unavailable(model=ref)
    assert FieldReaderEnsembleEngine.vote_calibration(model=ref) is None

    reader = copy_reader(stock)
    reader.members = [copy_reader(stock), perturbed(stock)]
    calibration = {k: {"a": 0.1, "b": 2.0, "p_none": 0.5, "case": 0.8} for k in KEYS}
    reader.config.members = {"count": 2, "calibration": calibration}
    folder = tmp_path / "with_members"
    reader.save(folder)
    assert sorted(p.name for p in (folder / "members").iterdir()) == ["0", "1"]
    assert json.loads((folder / "fieldreader.json").read_text())["members"]["count"] == 2
    loaded = FieldReader.load(folder)
    assert len(loaded.members) == 2 and not loaded.members[0].members
    expected = [r.fields for r in read_lines(ensemble_of(reader), lines)]
    assert [r.fields for r in read_lines(ensemble_of(loaded), lines)] == expected

    ref = FieldReaderRef.from_path(folder)
    assert FieldReaderEnsembleEngine.unavailable(model=ref) is None
    assert FieldReaderEnsembleEngine.vote_calibration(model=ref) == calibration
    assert FieldReaderEngine.vote_calibration(model=ref) != calibration
    engine = FieldReaderEnsembleEngine.from_model(ref, beam=8, threads=1)
    assert len(engine.reader.readers) == 3
    assert len(FieldReaderEnsembleEngine.from_model(ref, members=1, threads=1).reader.readers) == 2
    assert engine.cache_key("x") != FieldReaderEnsembleEngine.from_model(ref, members=1, threads=1).cache_key("x")
    results = engine.read_batch([forms.images[n] for n in names], names)
    assert [r.fields for r in results] == expected and all(r.error is None for r in results)
    # saving without members removes the old ones
    reader.members = []
    reader.save(folder)
    assert not (folder / "members").exists() and not FieldReader.load(folder).members
