"""Donut (DonutSwin encoder + MBart decoder) for the four HSF fields: tokenizer, model,
data, Lightning training and batched inference.

>>> from handwriting_pipeline.donut import DonutBundle, DonutPredictor
>>> bundle = DonutBundle.load("data/06_models/benchmark_small")
>>> DonutPredictor(bundle, batch_size=8).predict([image])[0].fields

Floor 3. May import: floors 0-2: ``fieldreader`` (the text-line encoder is built on the
field reader; never the other way round), ``forms``, ``training``, ``synthetic``, ``metrics``,
``fields``, ``config``.
"""

from handwriting_pipeline.donut.inference import DonutPredictor, Prediction, generate_fields
from handwriting_pipeline.donut.model import DonutBundle, Preprocessing, build_from_config, build_pretrained
from handwriting_pipeline.donut.tokenizer import train_tokenizer

__all__ = ["DonutBundle", "DonutPredictor", "Prediction", "Preprocessing", "build_from_config",
           "build_pretrained", "generate_fields", "train_tokenizer"]
