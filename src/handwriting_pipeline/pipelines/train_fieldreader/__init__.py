"""The 'train_fieldreader' pipeline: fine-tune the PP-OCRv6 recognizer on the train forms' lines."""

from handwriting_pipeline.pipelines.train_fieldreader.pipeline import create_pipeline

__all__ = ["create_pipeline"]
