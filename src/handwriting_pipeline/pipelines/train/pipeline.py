"""The 'train' pipeline (not built yet)."""

from kedro.pipeline import Pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'train' pipeline."""
    return Pipeline([])
