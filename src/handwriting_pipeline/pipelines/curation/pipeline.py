"""The 'curation' pipeline (not built yet)."""

from kedro.pipeline import Pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'curation' pipeline."""
    return Pipeline([])
