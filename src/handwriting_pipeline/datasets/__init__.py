"""Custom Kedro datasets of this project (image sets, model folders, caches).

Floor 4. May import: floors 0-3 (the model packages, to save and load trained models;
``recorded_csv``, ``fields``, ``training``) — never engines, ensembles or pipelines.
"""

from handwriting_pipeline.datasets.cache import ResponseCache, ResponseCacheDataset
from handwriting_pipeline.datasets.digitize import ImageInputs, ImageInputsDataset, RunFileDataset
from handwriting_pipeline.datasets.forms import (
    FolderImages,
    LabelledForms,
    LabelledFormsDataset,
    read_donut_folder,
)
from handwriting_pipeline.datasets.model import (
    DonutModelDataset,
    DonutModelRef,
    FieldReaderModelDataset,
    FieldReaderRef,
    PickledModelDataset,
    PickledModelRef,
)
from handwriting_pipeline.datasets.raw import DonutSplitsDataset, HFHubDataset, LazyDataset
from handwriting_pipeline.datasets.recorded import RecordedOutputsDataset

__all__ = [
    "DonutModelDataset", "DonutModelRef", "DonutSplitsDataset", "FieldReaderModelDataset", "FieldReaderRef",
    "FolderImages", "HFHubDataset", "ImageInputs", "ImageInputsDataset", "LabelledForms", "LabelledFormsDataset",
    "LazyDataset", "PickledModelDataset", "PickledModelRef",
    "RecordedOutputsDataset", "ResponseCache", "ResponseCacheDataset", "RunFileDataset", "read_donut_folder",
]
