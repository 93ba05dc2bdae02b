"""Review of doubtful fields and what it buys: the review curve (:mod:`.curve`), the corrections
store (:mod:`.store`), the review page (:mod:`.app`), the export of reviewed runs and Label Studio
tasks (:mod:`.export`) and reviewed forms as training forms (:mod:`.training`).

``python -m handwriting_pipeline.review <run folder>`` opens the page (see ``__main__``)."""
