"""Several field readers read as one: their per-frame CTC posteriors are averaged.

Readers that share the architecture and the line settings give the same frames for the same
[3, 48, W] line; :class:`EnsembleReader` reads every line with each of them and averages the
per-frame posteriors (``log mean exp`` of the log-probabilities, the usual CTC ensemble). The
average is then decoded like one reading (:func:`~handwriting_pipeline.fieldreader.predict.read_lines`:
beam search, the first reader's re-ranker, field confidences), since :class:`EnsembleReader` has
the reader interface (``config``, ``log_probs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def average_log_probs(per_reader: Sequence[np.ndarray]) -> np.ndarray:
    """Per-frame mean of the posteriors, as log-probabilities (``log mean exp``)."""
    stacked = np.stack(per_reader)
    top = stacked.max(axis=0)
    return (top + np.log(np.exp(stacked - top).mean(axis=0))).astype(np.float32)


class EnsembleReader:
    """Several field readers as one: every reader reads each line and the per-frame posteriors are
    averaged. ``config`` and every other attribute are the first reader's (its line settings,
    lexicon, style layer)."""

    def __init__(self, readers: Sequence[Any]) -> None:
        if not readers:
            raise ValueError("an ensemble needs at least one field reader")
        self.readers = tuple(readers)

    @property
    def config(self):
        return self.readers[0].config

    def __getattr__(self, name: str) -> Any:  # threads, batch_size, session ... of the first reader
        if name == "readers":
            raise AttributeError(name)
        return getattr(self.readers[0], name)

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


__all__ = ["EnsembleReader", "average_log_probs"]
