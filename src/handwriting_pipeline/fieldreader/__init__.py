"""The field reader: the PP-OCRv6 recognizer from the ``rapidocr`` wheel fine-tuned on the forms'
two handwritten lines (CTC), with lexicon-aware beam search and its own vote calibration.

:mod:`.graph` runs the ONNX graph with torch ops, :mod:`.model` is the saved model
(:class:`~.model.FieldReader`), :mod:`.training` fine-tunes it with Lightning, :mod:`.decode` /
:mod:`.lexicon` / :mod:`.predict` read with it, :mod:`.ensemble` reads with several readers
at once (posteriors averaged), :mod:`.tuning` fits the lexicon settings, the style layer and
the calibration on held-out training forms. The lines it reads are cut by
:mod:`handwriting_pipeline.forms.lines`.

Floor 2. May import: floors 0-1 (``forms``, ``training``, ``fields``, ``config``) — never
``donut`` (Donut's text-line encoder is built on the field reader, not the other way round).
"""
