"""Synthetic NIST SD19 top-section forms: the offline default data source and Donut pretraining data.

>>> from handwriting_pipeline.synthetic import SyntheticFormGenerator
>>> gen = SyntheticFormGenerator(seed=0, blank_rate=0.03)
>>> image, fields = gen.sample(0)          # deterministic in (seed, options, 0)
>>> for file_name, image, fields in gen.generate(100, start=0, workers=2): ...

Floor 1. May import: floor 0 (``fields``).
"""

from .generator import DEFAULTS, SyntheticForm, SyntheticFormGenerator

__all__ = ["DEFAULTS", "SyntheticForm", "SyntheticFormGenerator"]
