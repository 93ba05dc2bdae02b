"""Custom Kedro datasets of this project (image sets, model folders, caches)."""

from handwriting_pipeline.datasets.forms import (
    FolderImages,
    LabelledForms,
    LabelledFormsDataset,
    read_donut_folder,
)

__all__ = ["FolderImages", "LabelledForms", "LabelledFormsDataset", "read_donut_folder"]
