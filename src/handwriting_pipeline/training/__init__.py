"""What both trained models (the field reader, Donut) share while training.

What lives here: the Lightning hardware choice and the stop reason of a fit
(:mod:`.lightning`), the label-preserving line augmentation (:mod:`.augment`) and the
per-field confidence calibration fitted on held-out training forms (:mod:`.calibration`), and
the marker a training step returns for a model it did not train (:mod:`.not_trained`).

Floor 1. May import: floor 0 (``fields``, ``config``) — never a model package, so ``fieldreader`` and
``donut`` both build on it without importing each other.
"""
