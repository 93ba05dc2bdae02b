"""Donut (DonutSwin encoder + MBart decoder) for the four HSF fields: tokenizer, model,
data, Lightning training and batched inference.

>>> from handwriting_pipeline.donut import DonutBundle, DonutPredictor
>>> bundle = DonutBundle.load("data/06_models/benchmark_small")
>>> DonutPredictor(bundle, batch_size=8).predict([image])[0].fields

Floor 3. May import: floors 0-2: ``fieldreader`` (the text-line encoder is built on the
field reader; never the other way round), ``forms``, ``training``, ``synthetic``, ``metrics``,
``fields``, ``config``.
"""

from __future__ import annotations

import importlib
from typing import Any

#: the package's names, imported from their module when first asked for: importing a light module
#: of the package (``donut.recipe``, for the train pipeline's graph) loads no torch / transformers
_EXPORTS = {
    "DonutPredictor": "inference", "Prediction": "inference", "generate_fields": "inference",
    "DonutBundle": "model", "Preprocessing": "model", "build_from_config": "model", "build_pretrained": "model",
    "train_tokenizer": "tokenizer",
}

__all__ = ["DonutBundle", "DonutPredictor", "Prediction", "Preprocessing", "build_from_config",
           "build_pretrained", "generate_fields", "train_tokenizer"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
