"""Digitize new, unlabelled scans into JSON (see :mod:`handwriting_pipeline.digitize.core`).

``python -m handwriting_pipeline.digitize IMAGE [IMAGE ...]`` reads single files from the shell
with the same code, parameters and cache as ``kedro run --pipeline digitize``.

Floor 7: a library below the pipelines; the digitize pipeline's nodes call it, it calls no
node. May import: floors 0-6 (``methods``, ``engines``, ``ensemble``, ``datasets``, ``forms``,
``fields`` ...) — never ``pipelines``.
"""

from handwriting_pipeline.digitize.core import (
    COLUMNS,
    DigitizePlan,
    digitize_records,
    form_columns,
    make_plan,
    read_partition,
    review_columns,
    summarise,
)
from handwriting_pipeline.digitize.inputs import Form, read_forms, to_crop

__all__ = ["COLUMNS", "DigitizePlan", "Form", "digitize_records", "form_columns", "make_plan", "read_forms",
           "read_partition", "review_columns", "summarise", "to_crop"]
