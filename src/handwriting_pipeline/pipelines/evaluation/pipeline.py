"""The 'evaluation' pipeline (not built yet)."""

from kedro.pipeline import Pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'evaluation' pipeline."""
    return Pipeline([])
