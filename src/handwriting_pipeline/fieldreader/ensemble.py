"""Several field readers read as one: their per-frame CTC posteriors are averaged.

Readers that share the architecture and the line settings give the same frames for the same
[3, 48, W] line; :class:`EnsembleReader` reads every line with each of them and averages the
per-frame posteriors (``log mean exp`` of the log-probabilities, the usual CTC ensemble). The
average is then decoded like one reading (:func:`~handwriting_pipeline.fieldreader.predict.read_lines`:
beam search, the first reader's re-ranker, field confidences), since :class:`EnsembleReader` has
the reader interface (``config``, ``log_probs``).

Saved (:meth:`EnsembleReader.save`), an ensemble is a field reader folder like any other: its own
``fieldreader.json`` (the line settings, and the lexicon, calibration and choices learned for the
ensemble, e.g. on the out-of-fold forms by :mod:`.oof`) and ``members/<i>/`` (each member's ONNX
graph and ``fieldreader.json``). :func:`load_reader` loads either kind of folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MEMBERS_DIR = "members"


def average_log_probs(per_reader: Sequence[np.ndarray]) -> np.ndarray:
    """Per-frame mean of the posteriors, as log-probabilities (``log mean exp``)."""
    stacked = np.stack(per_reader)
    top = stacked.max(axis=0)
    return (top + np.log(np.exp(stacked - top).mean(axis=0))).astype(np.float32)


class EnsembleReader:
    """Several field readers as one: every reader reads each line and the per-frame posteriors are
    averaged. ``config`` is the ensemble's own when given (its lexicon and calibration), else the
    first reader's; every other attribute (batch_size ...) is the first reader's. The ensemble
    has no style layer of its own unless one is set."""

    def __init__(self, readers: Sequence[Any], config: Any = None) -> None:
        if not readers:
            raise ValueError("an ensemble needs at least one field reader")
        self.readers = tuple(readers)
        self._config = config
        self.style = None

    @property
    def config(self):
        return self._config if self._config is not None else self.readers[0].config

    @config.setter
    def config(self, value: Any) -> None:
        self._config = value

    @property
    def threads(self) -> int:
        return self.readers[0].threads

    @threads.setter
    def threads(self, value: int) -> None:  # the engine's onnxruntime threads, for every member
        for reader in self.readers:
            reader.threads = value

    def __getattr__(self, name: str) -> Any:  # batch_size, session ... of the first reader
        if name in ("readers", "_config"):
            raise AttributeError(name)
        return getattr(self.readers[0], name)

    def save(self, folder: str | Path) -> Path:
        """The ensemble's ``fieldreader.json`` and each member's ONNX graph and config under
        ``members/<i>/`` (members must be loaded from a folder with ``model.onnx``)."""
        from handwriting_pipeline.fieldreader.model import CONFIG_FILE, ONNX_FILE

        folder = Path(folder)
        members, part = folder / MEMBERS_DIR, folder / (MEMBERS_DIR + ".part")
        if part.exists():
            shutil.rmtree(part)
        for i, reader in enumerate(self.readers):  # written beside the old members (it may be read from them)
            if getattr(reader, "onnx_file", None) is None:
                raise ValueError(f"ensemble member {i} has no ONNX graph to save (load it from its folder)")
            here = part / str(i)
            here.mkdir(parents=True)
            shutil.copyfile(reader.onnx_file, here / ONNX_FILE)
            (here / CONFIG_FILE).write_text(json.dumps(reader.config.to_json(), indent=2))
        if members.exists():
            shutil.rmtree(members)
        part.rename(members)
        (folder / CONFIG_FILE).write_text(json.dumps(self.config.to_json(), indent=2))
        return folder

    def log_probs(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        per_reader = [r.log_probs(arrays) for r in self.readers]
        if len(per_reader) == 1:
            return per_reader[0]
        out = []
        for i in range(len(arrays)):
            shapes = {p[i].shape for p in per_reader}
            if len(shapes) > 1:
                raise ValueError(f"ensemble readers disagree on the frames of line {i}: {sorted(shapes)}; they "
                                 "must share the architecture and line settings")
            out.append(average_log_probs([p[i] for p in per_reader]))
        return out


def is_ensemble_folder(folder: str | Path) -> bool:
    return (Path(folder) / MEMBERS_DIR).is_dir()


def load_reader(folder: str | Path, threads: int = 1) -> Any:
    """The field reader saved in ``folder``: a :class:`~.model.FieldReader`, or an
    :class:`EnsembleReader` when the folder holds ``members/``."""
    from handwriting_pipeline.fieldreader.model import CONFIG_FILE, FieldReader, FieldReaderConfig

    folder = Path(folder)
    if not is_ensemble_folder(folder):
        return FieldReader.load(folder, threads=threads)
    members = sorted((p for p in (folder / MEMBERS_DIR).iterdir() if p.is_dir()), key=lambda p: int(p.name))
    config = FieldReaderConfig.from_json(json.loads((folder / CONFIG_FILE).read_text()))
    return EnsembleReader([FieldReader.load(p, threads=threads) for p in members], config)


__all__ = ["MEMBERS_DIR", "EnsembleReader", "average_log_probs", "is_ensemble_folder", "load_reader"]
