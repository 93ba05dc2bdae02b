"""The 'select_forms' pipeline: which labelled forms the evaluate pipeline reads."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
