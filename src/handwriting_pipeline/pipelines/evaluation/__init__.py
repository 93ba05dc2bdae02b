"""The 'evaluation' pipeline."""

from handwriting_pipeline.metrics import ENGINE_METHODS, ENSEMBLE_METHODS, METHODS, predictions_dataset

from .pipeline import create_pipeline

__all__ = ["create_pipeline", "METHODS", "ENGINE_METHODS", "ENSEMBLE_METHODS", "predictions_dataset"]
