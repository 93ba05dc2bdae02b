"""Floor 1: what both trained models (the field reader, Donut) share while training.

What lives here: the Lightning hardware choice and the stop reason of a fit
(:mod:`.lightning`), the label-preserving line augmentation (:mod:`.augment`) and the
per-field confidence calibration fitted on held-out training forms (:mod:`.calibration`).

May import: ``fields``, ``config`` (floor 0) — never a model package, so ``fieldreader`` and
``donut`` both build on it without importing each other.
"""
