"""The Kedro pipelines: ``pipelines/<name>/{nodes,pipeline}.py``. Nodes are short functions that
take and return catalog data and call the library below; no library code lives here.

Floor 8 (the top floor of the package). May import: every room below (floors 0-7). Nothing
imports ``pipelines/`` but :mod:`handwriting_pipeline.pipeline_registry`.
"""
