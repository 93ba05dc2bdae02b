"""Synthetic filled-in forms: the offline default data source and Donut pretraining data.

>>> from handwriting_pipeline.synthetic import SyntheticFormGenerator
>>> gen = SyntheticFormGenerator(seed=0, blank_rate=0.03)
>>> image, fields = gen.sample(0)          # deterministic in (seed, options, 0)
>>> for file_name, image, fields in gen.generate(100, start=0, workers=2): ...

:class:`SyntheticFormGenerator` renders NIST SD19 top-section crops (the HSF layout);
:class:`SpecFormGenerator` renders any form spec (``SpecFormGenerator(load_form("order_card"))``)
with the same interface, its values drawn per field type (:data:`.values.VALUE_SAMPLERS`).

Floor 1. May import: floor 0 (``fields``).
"""

from .generator import DEFAULTS, SyntheticForm, SyntheticFormGenerator
from .spec_forms import SpecForm, SpecFormGenerator

__all__ = ["DEFAULTS", "SpecForm", "SpecFormGenerator", "SyntheticForm", "SyntheticFormGenerator"]
