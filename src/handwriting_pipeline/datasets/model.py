"""The trained Donut as a Kedro dataset: a ``save_pretrained`` folder, versioned.

Saving takes a :class:`~handwriting_pipeline.donut.model.DonutBundle` (model, processor,
preprocessing). Loading returns a :class:`DonutModelRef`: a lazy reference that says whether a
model is there (``available``/``reason``) and loads it on demand (``load()`` -> (model,
processor)). Loading never raises when nothing was saved yet, because the evaluate pipeline
loads ``donut_model`` even when the donut engine is disabled.

Example::

    donut_model:
      type: handwriting_pipeline.datasets.DonutModelDataset
      path: data/06_models/donut_model
      versioned: true
"""

from __future__ import annotations

import logging
import pickle
from functools import wraps
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, VersionNotFoundError, get_filepath_str

from handwriting_pipeline.training.not_trained import NotTrained

logger = logging.getLogger(__name__)


class DonutModelRef:
    """A saved Donut that is loaded only when asked for.

    Attributes:
        path: the ``save_pretrained`` folder (or hub name), or None.
        available: True when the folder holds a model.
        reason: why it is not available ("" when it is).
    """

    kind = "Donut"

    def __init__(self, path: str | Path | None, reason: str = "") -> None:
        self.path = str(path) if path is not None else None
        self.reason = reason
        self._bundle = None
        self._fingerprint: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        """A reference travels without its loaded model (a worker process loads it from ``path``)."""
        return {**self.__dict__, "_bundle": None}

    @property
    def available(self) -> bool:
        return self.path is not None and not self.reason

    @property
    def fingerprint(self) -> str | None:
        """SHA-256 (16 hex digits) of the folder's files: changes whenever the model is retrained
        into the same folder, so cached predictions of the old weights are not reused. None for
        a hub name or a missing folder."""
        if not self.available or not Path(self.path).is_dir():
            return None
        if self._fingerprint is None:
            import hashlib

            digest = hashlib.sha256()
            root = Path(self.path)
            for file in sorted(p for p in root.rglob("*") if p.is_file()):  # an ensemble's members/ too
                digest.update(file.relative_to(root).as_posix().encode())
                with file.open("rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    @staticmethod
    def is_model_folder(path: Path) -> bool:
        from handwriting_pipeline.donut.model import is_model_folder

        return is_model_folder(path)

    @classmethod
    def from_path(cls, path: str | Path) -> "DonutModelRef":
        """A reference to a model folder, or to the newest version of a versioned one."""
        path = Path(path)
        if cls.is_model_folder(path):
            return cls(path)
        versions = sorted(p for p in path.glob(f"*/{path.name}") if cls.is_model_folder(p)) if path.is_dir() else []
        if versions:
            return cls(versions[-1])
        return cls(path, reason=f"no saved {cls.kind} model at '{path}' (run `kedro run --pipeline train` first, "
                                "or point the parameter at a saved model folder)")

    @staticmethod
    def load_folder(path: str) -> Any:
        from handwriting_pipeline.donut.model import DonutBundle

        return DonutBundle.load(path)

    def bundle(self):
        """The loaded model (a :class:`~handwriting_pipeline.donut.model.DonutBundle` here; loaded
        once, then cached); raises ``DatasetError`` naming the reason when unavailable."""
        if not self.available:
            raise DatasetError(f"{self.kind} model not available: {self.reason}")
        if self._bundle is None:
            self._bundle = self.load_folder(self.path)
        return self._bundle

    def load(self) -> tuple[Any, Any]:
        """``(model, processor)``; raises ``DatasetError`` naming the reason when unavailable."""
        bundle = self.bundle()
        return bundle.model, bundle.processor

    @property
    def preprocessing(self):
        """The ROI / input size / max length the model was trained with."""
        return self.bundle().preprocessing

    def __repr__(self) -> str:
        state = "available" if self.available else f"unavailable: {self.reason}"
        return f"{type(self).__name__}({self.path!r}, {state})"


class DonutModelDataset(AbstractVersionedDataset[Any, DonutModelRef]):
    """Kedro dataset for a trained Donut (``save_pretrained`` folder with the processor).

    Loading accepts a versioned folder (newest version) or a plain ``save_pretrained`` folder,
    whether the entry is versioned or not, so ``path`` may point at any trained model.
    """

    ref_class: type[DonutModelRef] = DonutModelRef

    def __init__(self, path: str, version: Version | None = None, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(filepath=PurePosixPath(path), version=version)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._filepath), "version": self._version}

    @classmethod
    def _save_wrapper(cls, save_func: Any) -> Any:
        """Kedro's versioned save, except for :class:`NotTrained`: nothing is written, so there is
        no new version to check (Kedro's check after a save would fail with VersionNotFoundError
        when no model was ever saved, e.g. a fresh checkout training only some ``train.models``)."""
        versioned_save = super()._save_wrapper(save_func)

        @wraps(save_func)
        def save(self: Any, data: Any) -> None:
            if isinstance(data, NotTrained):
                logger.info("%s not saved (%s); the last saved version stays", self, data.reason)
                return
            versioned_save(self, data)

        return save

    def _load(self) -> DonutModelRef:
        try:
            load_path = Path(get_filepath_str(self._get_load_path(), "file"))
        except VersionNotFoundError:
            plain = self.ref_class.from_path(Path(str(self._filepath)))
            if plain.available:  # a plain save_pretrained folder (e.g. a benchmark's model)
                return plain
            return self.ref_class(self._filepath, reason=f"no version of the {self.ref_class.kind} model saved under "
                                 f"'{self._filepath}' yet (run `kedro run --pipeline train` first)")
        ref = self.ref_class.from_path(load_path)
        if not ref.available:
            logger.info("%s model: %s", self.ref_class.kind, ref.reason)
        return ref

    def _save(self, data: Any) -> None:
        folder = Path(get_filepath_str(self._get_save_path(), "file"))
        if not hasattr(data, "save"):
            raise DatasetError(f"{type(self).__name__} saves a model with a save() method, got {type(data).__name__}")
        data.save(folder)
        logger.info("Saved %s model to %s", self.ref_class.kind, folder)

    def _exists(self) -> bool:
        try:
            load_path = Path(get_filepath_str(self._get_load_path(), "file"))
        except DatasetError:
            return False
        return self.ref_class.from_path(load_path).available


class FieldReaderRef(DonutModelRef):
    """A saved field reader (:mod:`handwriting_pipeline.fieldreader`), loaded only when asked for."""

    kind = "field reader"

    @staticmethod
    def is_model_folder(path: Path) -> bool:
        from handwriting_pipeline.fieldreader.model import CONFIG_FILE

        return (Path(path) / CONFIG_FILE).is_file()

    @staticmethod
    def load_folder(path: str) -> Any:
        """The :class:`~handwriting_pipeline.fieldreader.model.FieldReader` (or the
        :class:`~handwriting_pipeline.fieldreader.ensemble.EnsembleReader`) saved there."""
        from handwriting_pipeline.fieldreader.ensemble import load_reader

        return load_reader(path)

    def load(self):
        return self.bundle()


class FieldReaderModelDataset(DonutModelDataset):
    """Kedro dataset for a trained field reader folder (weights.pt, model.onnx, fieldreader.json).

    Loading gives a lazy :class:`FieldReaderRef` that says whether a model is there; it never
    fails when nothing was trained yet.
    """

    ref_class = FieldReaderRef


class PickledModelRef(DonutModelRef):
    """Any other trained engine's model, pickled as ``model.pkl`` in its folder (the catalog
    factory ``{engine}_model``), loaded only when asked for."""

    kind = "trained"
    FILE = "model.pkl"

    @staticmethod
    def is_model_folder(path: Path) -> bool:
        return (Path(path) / PickledModelRef.FILE).is_file()

    @staticmethod
    def load_folder(path: str) -> Any:
        with (Path(path) / PickledModelRef.FILE).open("rb") as handle:
            return pickle.load(handle)  # a model this project trained and saved

    def load(self) -> Any:
        """The trained model object (loaded once)."""
        return self.bundle()


class PickledModelDataset(DonutModelDataset):
    """Kedro dataset for a trained engine's model without a format of its own: the object its
    training step returns, pickled into a versioned folder. Loading gives a lazy
    :class:`PickledModelRef`; nothing trained yet is not an error (the engine is skipped)."""

    ref_class = PickledModelRef

    def _save(self, data: Any) -> None:
        folder = Path(get_filepath_str(self._get_save_path(), "file"))
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / PickledModelRef.FILE).open("wb") as handle:
            pickle.dump(data, handle)
        logger.info("Saved trained model to %s", folder)
