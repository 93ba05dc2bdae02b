"""Datasets of the digitize pipeline: a lazy folder of scans in, streamed run files out.

* :class:`ImageInputsDataset` lists the image files of ``digitize.input_dir`` (any depth) and/or
  the ``digitize.inputs`` glob. Nothing is opened or copied: loading gives an
  :class:`ImageInputs` (the sorted paths), and each file is opened only when its form is read.
* :class:`RunFileDataset` is one file of a digitize run, versioned per run in a run folder
  (``<folder>/runs/<version>/<file>``) plus a stable ``<folder>/latest`` link to the newest run.
  ``.jsonl`` and ``.csv`` files are *streamed*: saving takes any iterable of records and writes
  them one by one (memory stays flat for any number of forms) into a temporary file that is
  renamed into place only when complete, so a killed run never leaves a half file. A record may
  carry files to write next to it (``record["_files"] = {relative name: bytes}``: the review
  crops). Loading gives a re-iterable :class:`RecordReader`. ``.json`` holds one object.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractDataset, AbstractVersionedDataset, DatasetError, Version

logger = logging.getLogger(__name__)

#: file name endings read as images (a text file named ``.png`` is listed, then rejected as "not an image")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".pbm", ".pgm", ".ppm")
FILES_KEY = "_files"


class ImageInputs:
    """The image files of one digitize run (paths only; ``missing`` says why there are none)."""

    def __init__(self, paths: list[str], source: str = "", missing: str | None = None, skipped: int = 0) -> None:
        self.paths = list(paths)
        self.source = source
        self.missing = missing
        self.skipped = skipped  # files of other kinds under input_dir (not listed)

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def partitions(self, size: int) -> Iterator[list[str]]:
        """Consecutive chunks of ``size`` paths."""
        size = max(1, int(size))
        for start in range(0, len(self.paths), size):
            yield self.paths[start:start + size]


def list_images(input_dir: str | None = None, pattern: str | None = None) -> ImageInputs:
    """Every image file under ``input_dir`` (recursive, hidden files skipped) and matching
    ``pattern`` (a glob, ``**`` allowed), sorted, as absolute paths."""
    paths: set[str] = set()
    skipped = 0
    sources = []
    if input_dir:
        root = Path(input_dir).expanduser()
        if not root.exists():
            return ImageInputs([], str(root), missing=f"digitize.input_dir {root} does not exist")
        sources.append(str(root))
        if root.is_file():
            paths.add(str(root.resolve()))
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith("."):
                    continue
                if name.lower().endswith(IMAGE_SUFFIXES):
                    paths.add(str((Path(folder) / name).resolve()))
                else:
                    skipped += 1
    if pattern:
        sources.append(pattern)
        for path in glob.iglob(str(Path(pattern).expanduser()), recursive=True):
            if Path(path).is_file():
                paths.add(str(Path(path).resolve()))
    if not input_dir and not pattern:
        return ImageInputs([], "", missing="no input given: set digitize.input_dir=<folder> or digitize.inputs=<glob>")
    if skipped:
        logger.info("digitize: %d files under %s are not images by their name (skipped)", skipped, input_dir)
    return ImageInputs(sorted(paths), " + ".join(sources), skipped=skipped)


class ImageInputsDataset(AbstractDataset[None, ImageInputs]):
    """The scans to digitize, listed lazily (read-only; never copied).

    Example::

        digitize_inputs:
          type: handwriting_pipeline.datasets.ImageInputsDataset
          input_dir: ${runtime_params:digitize.input_dir,""}
          inputs: ${runtime_params:digitize.inputs,""}
    """

    def __init__(self, input_dir: str = "", inputs: str = "", metadata: dict[str, Any] | None = None) -> None:
        self._input_dir = input_dir or None
        self._pattern = inputs or None
        self.metadata = metadata

    def _load(self) -> ImageInputs:
        return list_images(self._input_dir, self._pattern)

    def _save(self, data: None) -> None:
        raise DatasetError("digitize inputs are read-only")

    def _describe(self) -> dict[str, Any]:
        return {"input_dir": self._input_dir, "inputs": self._pattern}

    def _exists(self) -> bool:
        return True


class RecordReader:
    """Lazily re-readable records of a ``.jsonl`` or ``.csv`` run file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with open(self.path, encoding="utf-8", newline="") as handle:
            if self.path.suffix == ".csv":
                yield from csv.DictReader(handle)
                return
            for line in handle:
                if line.strip():
                    yield json.loads(line)


def _publish(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class RunFileDataset(AbstractVersionedDataset[Any, Any]):
    """One file of a digitize run: ``<folder>/runs/<version>/<file>`` and ``<folder>/latest``.

    Example::

        digitized_forms:
          type: handwriting_pipeline.datasets.RunFileDataset
          folder: data/08_reporting/digitize
          file: forms.jsonl
          versioned: true
          columns: [...]   # .csv only: column order (others follow)
    """

    def __init__(self, folder: str, file: str, versioned: bool = True, columns: list[str] | None = None,
                 latest: str | None = "latest", version: Version | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self._folder = PurePosixPath(folder)
        self._file = file
        self._columns = list(columns or [])
        self._latest = latest
        super().__init__(self._folder / file, version if versioned else None)
        if version is None and versioned:
            self._version = Version(None, None)
        self.metadata = metadata

    # a run folder per version: <folder>/runs/<version>/<file>
    def _get_versioned_path(self, version: str) -> PurePosixPath:
        if not self._version:
            return self._folder / self._file
        return self._folder / "runs" / version / self._file

    def _get_version_from_path(self, path: str) -> str:
        return PurePosixPath(path).parent.name

    def _describe(self) -> dict[str, Any]:
        return {"folder": str(self._folder), "file": self._file, "version": self._version}

    def _exists(self) -> bool:
        try:
            return Path(str(self._get_load_path())).exists()
        except DatasetError:
            return False

    @property
    def suffix(self) -> str:
        return Path(self._file).suffix.lower()

    def _load(self) -> Any:
        path = Path(str(self._get_load_path()))
        if self.suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        if not path.is_file():
            raise DatasetError(f"{path} not found")
        return RecordReader(path)

    def _save(self, data: Any) -> None:
        path = Path(str(self._get_save_path()))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                if self.suffix == ".json":
                    json.dump(data, handle, indent=2, default=str)
                elif self.suffix == ".csv":
                    self._write_csv(handle, data, path.parent)
                else:
                    self._write_jsonl(handle, data, path.parent)
            _publish(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._point_latest(path.parent)

    @staticmethod
    def _write_files(record: dict[str, Any], where: Path) -> dict[str, Any]:
        files = record.pop(FILES_KEY, None) or {}
        for relative, content in files.items():
            target = where / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return record

    def _write_jsonl(self, handle: io.TextIOBase, records: Iterable[dict[str, Any]], where: Path) -> None:
        for record in records:
            record = self._write_files(dict(record), where)
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            handle.flush()

    def _write_csv(self, handle: io.TextIOBase, records: Iterable[dict[str, Any]], where: Path) -> None:
        columns = list(getattr(records, "columns", None) or self._columns)  # the form's own columns, when given
        writer = None
        for record in records:
            record = self._write_files(dict(record), where)
            if writer is None:
                fields = columns + [k for k in record if k not in columns]
                writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
                writer.writeheader()
            writer.writerow({k: ("" if v is None else v) for k, v in record.items()})
        if writer is None:  # no record: the header only
            csv.writer(handle).writerow(columns)

    def _point_latest(self, run_folder: Path) -> None:
        """``<folder>/latest`` -> this run's folder (a relative symlink, replaced atomically)."""
        if not self._version or not self._latest:
            return
        link = Path(str(self._folder)) / self._latest
        target = os.path.relpath(run_folder, link.parent)
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        try:
            tmp.unlink(missing_ok=True)
            os.symlink(target, tmp, target_is_directory=True)
            os.replace(tmp, link)
        except OSError as err:  # e.g. a file system without symlinks: the versioned files are enough
            tmp.unlink(missing_ok=True)
            logger.warning("could not point %s at %s (%s)", link, run_folder, err)
