"""Lazy, read-only catalog entries for raw inputs of the curation pipeline.

The curation pipeline has several sources (``curation.source``) but one DAG, so every source's
raw entry is an input of some node. These datasets load *nothing* until the node that needs
them calls the returned function, so a source that is not selected never touches (or fails
on) its folder, and one bad file is caught by the node, reported and dropped.

* :class:`LazyDataset` wraps any Kedro dataset config; ``load()`` returns a zero-argument
  function that builds and loads the wrapped dataset (like a ``PartitionedDataset``
  partition).
* :class:`HFHubDataset` is ``datasets.load_dataset(name, **kwargs)`` (a hub id or a local
  folder) without kedro-datasets' ``HFDataset`` describe-time hub query, which fails offline.
* :class:`DonutSplitsDataset` is a folder of Donut / imagefolder splits
  (``<path>/<split>/metadata.jsonl`` + images); ``load()`` returns ``{split: function}`` for
  the splits present, each function giving ``(LabelledForms, problems)`` from
  :func:`~handwriting_pipeline.datasets.forms.read_donut_folder`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset
from kedro.io.core import DatasetError

from handwriting_pipeline.datasets.forms import METADATA, read_donut_folder


class LazyDataset(AbstractDataset[None, Callable[[], Any]]):
    """Defer loading of a wrapped dataset until the node asks for it.

    Example (a folder of pages that may not exist unless its source is selected)::

        sd19_pages:
          type: handwriting_pipeline.datasets.LazyDataset
          dataset:
            type: partitions.PartitionedDataset
            path: ${runtime_params:curation.pages_dir,data/01_raw/sd19_pages}
            dataset: pillow.ImageDataset
            filename_suffix: .png
    """

    def __init__(self, dataset: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        if not isinstance(dataset, dict) or "type" not in dataset:
            raise DatasetError("LazyDataset needs 'dataset': a dataset config with a 'type'")
        self._config = dict(dataset)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._config}

    def load(self) -> Callable[[], Any]:
        config = dict(self._config)

        def load_wrapped() -> Any:
            return AbstractDataset.from_config("lazy", config).load()

        return load_wrapped

    def save(self, data: Any) -> None:
        raise DatasetError("LazyDataset is read-only (raw inputs are never modified)")


class DonutSplitsDataset(AbstractDataset[None, dict[str, Callable[[], Any]]]):
    """A read-only folder of already split forms: ``<path>/<split>/metadata.jsonl`` + images.

    ``load()`` returns ``{split: function}`` for each of ``splits`` present (an absent folder
    gives ``{}``); calling a function reads that split with ``read_donut_folder`` and returns
    ``(LabelledForms, problems)``.
    """

    def __init__(self, path: str, splits: list[str] | tuple[str, ...] = ("train", "validation", "test"),
                 metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self._splits = list(splits)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "splits": self._splits}

    def load(self) -> dict[str, Callable[[], Any]]:
        return {split: partial(read_donut_folder, self._path / split, split)
                for split in self._splits if (self._path / split / METADATA).is_file()}

    def save(self, data: Any) -> None:
        raise DatasetError("DonutSplitsDataset is read-only (raw inputs are never modified)")

    def _exists(self) -> bool:
        return bool(self.load())


class HFHubDataset(AbstractDataset[None, Any]):
    """``datasets.load_dataset(dataset_name, **dataset_kwargs)``: a hub dataset id (needs
    internet) or a local folder (e.g. imagefolder layout, offline). Read-only."""

    def __init__(self, dataset_name: str, dataset_kwargs: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self.dataset_name = str(dataset_name)
        self._dataset_kwargs = dict(dataset_kwargs or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"dataset_name": self.dataset_name, "dataset_kwargs": self._dataset_kwargs}

    def load(self) -> Any:
        from datasets import load_dataset

        return load_dataset(self.dataset_name, **self._dataset_kwargs)

    def save(self, data: Any) -> None:
        raise DatasetError("HFHubDataset is read-only")
