"""Review of doubtful fields and what it buys: the review curve (:mod:`.curve`), the corrections
store (:mod:`.store`), the review page (:mod:`.app`), the export of reviewed runs and Label Studio
tasks (:mod:`.export`) and reviewed forms as training forms (:mod:`.training`).

``python -m handwriting_pipeline.review <run folder>`` opens the page (see ``__main__``).

Floor 7: beside ``digitize`` - it reads a digitize run folder's files (``forms.jsonl``, the review
crops) and imports no ``digitize`` code. May import: floors 0-6 (``fields``, ``metrics``,
``datasets``, ``ensemble`` ...) — never ``digitize``, ``pipelines`` or ``hooks``. The evaluation
pipeline (curves) and the curation source ``reviewed`` call it.
"""
