"""The 'extract' pipeline (not built yet)."""

from kedro.pipeline import Pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'extract' pipeline."""
    return Pipeline([])
