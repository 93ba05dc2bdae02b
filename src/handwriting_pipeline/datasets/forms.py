"""Labelled form sets in the Donut / Hugging Face ``imagefolder`` layout.

A folder holds the images and a ``metadata.jsonl`` with one line per form::

    {"file_name": "f1698_35.png", "ground_truth": "{\"gt_parse\": {\"DATE\": \"9/17/89\", ...}}"}

:class:`LabelledForms` is the in-memory object (a labels table + lazily opened images);
:class:`LabelledFormsDataset` is the Kedro dataset that saves and loads it (versioned or not).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    VersionNotFoundError,
    get_filepath_str,
)
from PIL import Image

from handwriting_pipeline.fields import KEYS, clean_fields, normalize_key

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ["file_name", "split", *KEYS]
METADATA = "metadata.jsonl"
SOURCE_INFO = "source.json"  # written next to metadata.jsonl: description, problems, image folder


def write_atomic(path: str | Path, text: str) -> None:
    """Write a text file so that readers see the old content or the new one, never a part
    (temp file in the same folder, fsync, rename). A failed write (full disk, read-only folder)
    leaves no file behind and raises."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FolderImages(Mapping[str, Image.Image]):
    """Images of a folder, opened only when asked for: ``images["f0002_01.png"]``."""

    def __init__(self, folder: str | Path, names: list[str]) -> None:
        self.folder = Path(folder)
        self._names = list(names)

    def __getitem__(self, name: str) -> Image.Image:
        if name not in self._names:
            raise KeyError(name)
        path = self.folder / name
        with Image.open(path) as img:
            img.load()
            return img.copy()

    def path(self, name: str) -> Path:
        """Where the image file lies (for engines that want a file)."""
        return self.folder / name

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class LabelledForms:
    """A set of forms: ``labels`` (file_name, split and the form's fields: ``keys``, by default
    the HSF form's DATE, CITY, STATE, ZIP) and ``images`` (a mapping file_name -> PIL image, lazy
    when loaded from disk)."""

    labels: pd.DataFrame
    images: Mapping[str, Image.Image] = field(default_factory=dict)
    source: str = ""  # where the forms came from (a folder), for reports
    missing: str | None = None  # why an optional entry is empty (nothing saved yet, no path given)
    # what the forms are, for reports: e.g. "synthetic, seed 0, 72 forms (test split)"
    description: str = ""
    # entries that could not be used: {"file_name", "problem"} (bad metadata lines, missing or
    # rejected images); kept so reports can list them
    problems: list[dict[str, str]] = field(default_factory=list)
    keys: tuple[str, ...] = KEYS  # the form's fields (its spec's keys), in order

    def __post_init__(self) -> None:
        self.keys = tuple(self.keys)
        labels = self.labels.copy()
        if "split" not in labels.columns:
            labels["split"] = ""
        for key in self.keys:
            if key not in labels.columns:
                labels[key] = None
        records = [clean_fields({k: r[k] for k in self.keys}, self.keys) for r in labels[list(self.keys)].to_dict("records")]
        for key in self.keys:
            labels[key] = [r[key] for r in records]
        labels["split"] = labels["split"].fillna("").astype(str)
        self.labels = labels[["file_name", "split", *self.keys]].reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.labels)

    def fields(self, file_name: str) -> dict[str, str]:
        """Gold fields of one form."""
        row = self.labels.loc[self.labels["file_name"] == file_name].iloc[0]
        return {k: row[k] for k in self.keys}

    def subset(self, file_names: list[str]) -> "LabelledForms":
        """The forms named, in that order."""
        index = self.labels.set_index("file_name")
        labels = index.loc[file_names].reset_index()
        return LabelledForms(labels, _SubsetImages(self.images, file_names), source=self.source,
                             description=self.description, problems=list(self.problems), keys=self.keys)

    @classmethod
    def empty(cls, missing: str | None = None, keys: tuple[str, ...] = KEYS) -> "LabelledForms":
        """No forms (``missing`` says why)."""
        return cls(pd.DataFrame(columns=["file_name", "split", *keys]), {}, missing=missing, keys=keys)


class _SubsetImages(Mapping[str, Image.Image]):
    def __init__(self, images: Mapping[str, Image.Image], names: list[str]) -> None:
        self._images, self._names = images, list(names)

    def __getitem__(self, name: str) -> Image.Image:
        if name not in self._names:
            raise KeyError(name)
        return self._images[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def path(self, name: str) -> Path | None:
        """Where the image file lies, when the underlying images are files."""
        finder = getattr(self._images, "path", None)
        return finder(name) if finder else None


def parse_metadata_line(line: str, keys: tuple[str, ...] | None = None) -> tuple[str, dict[str, str]]:
    """One ``metadata.jsonl`` line -> (file_name, its fields). Raises ValueError with the reason.

    ``keys``: the form's fields; None: the HSF form's four when every key of the label is one of
    them (noisy keys such as ``date`` mapped), else the label's own keys, in its order (another
    form's labels, e.g. an order card's ORDER_NO, DATE, ..., ZIP)."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"line is not JSON ({err.msg})") from err
    if not isinstance(entry, dict) or "file_name" not in entry:
        raise ValueError("line has no 'file_name'")
    truth = entry.get("ground_truth")
    if isinstance(truth, str):
        try:
            truth = json.loads(truth)
        except json.JSONDecodeError as err:
            raise ValueError(f"'ground_truth' of {entry['file_name']} is not JSON ({err.msg})") from err
    parse = truth.get("gt_parse", truth) if isinstance(truth, dict) else None
    if not isinstance(parse, dict):
        raise ValueError(f"{entry['file_name']} has no 'ground_truth.gt_parse' object")
    if keys is None:
        keys = KEYS if all(normalize_key(str(k)) for k in parse) else tuple(str(k) for k in parse)
    missing = [k for k in keys if k not in parse]
    if missing:
        raise ValueError(f"{entry['file_name']} label lacks keys {missing}")
    return str(entry["file_name"]), clean_fields(parse, tuple(keys))


def metadata_line(file_name: str, fields: Mapping[str, Any], keys: tuple[str, ...] = KEYS) -> str:
    """One ``metadata.jsonl`` line in the Donut layout (the form's ``keys``)."""
    truth = json.dumps({"gt_parse": clean_fields(fields, keys)})
    return json.dumps({"file_name": file_name, "ground_truth": truth})


def read_donut_folder(folder: str | Path, split: str = "",
                      images_dir: str | Path | None = None) -> tuple[LabelledForms, list[dict[str, str]]]:
    """Read a Donut-layout folder, keeping what is usable.

    Returns the forms and a list of problems ``{"file_name", "problem"}``: lines that are not
    JSON or lack keys, duplicate names, and listed images that are missing. Image content is
    not opened here (see the curation pipeline's validation). ``images_dir``: where the images
    are when not next to ``metadata.jsonl`` (a run's reference to the folder it read).
    """
    folder = Path(folder)
    image_folder = Path(images_dir) if images_dir else folder
    meta = folder / METADATA
    if not meta.is_file():
        raise DatasetError(
            f"{meta} not found: a Donut / imagefolder split needs a '{METADATA}' next to its "
            "images (one JSON line per form with 'file_name' and 'ground_truth')."
        )
    rows, problems, seen, keys = [], [], set(), None
    for number, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            name, fields = parse_metadata_line(line, keys)  # the first label's keys are the form's
            keys = keys or tuple(fields)
        except ValueError as err:
            problems.append({"file_name": f"{meta}:{number}", "problem": str(err)})
            continue
        if name in seen:
            problems.append({"file_name": name, "problem": f"duplicate file_name in {meta}"})
            continue
        if not (image_folder / name).is_file():
            problems.append({"file_name": name, "problem": f"image listed in {meta} is missing"})
            continue
        seen.add(name)
        rows.append({"file_name": name, "split": split, **fields})
    keys = keys or KEYS
    labels = pd.DataFrame(rows, columns=["file_name", "split", *keys])
    for problem in problems:
        logger.warning("%s: %s", problem["file_name"], problem["problem"])
    images = FolderImages(image_folder, labels["file_name"].tolist())
    info = _read_source_info(folder)
    return LabelledForms(labels, images, source=str(images_dir and info.get("source") or image_folder),
                         description=str(info.get("description", "")),
                         problems=[*info.get("problems", []), *problems], keys=keys), problems


def _read_source_info(folder: Path) -> dict[str, Any]:
    path = folder / SOURCE_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        logger.warning("%s unreadable (%s): ignored", path, err)
        return {}
    return info if isinstance(info, dict) else {}


def _image_folder(images: Mapping[str, Image.Image], names: list[str]) -> Path | None:
    """The one folder holding every named image as ``<folder>/<name>``, or None."""
    find_file = getattr(images, "path", None)
    if find_file is None or not names:
        return None
    folders = set()
    for name in names:
        path = find_file(name)
        if path is None:
            return None
        path = Path(path).resolve()
        folder = path.parent
        for _ in PurePosixPath(name).parts[:-1]:
            folder = folder.parent
        if not path.is_file() or (folder / name).resolve() != path:
            return None
        folders.add(folder)
    return folders.pop() if len(folders) == 1 else None


def resolve_forms_folder(path: str | Path) -> Path:
    """The folder with ``metadata.jsonl`` for ``path``: the path itself, or the newest version
    when ``path`` is a Kedro versioned folder (``path/<version>/<name>/metadata.jsonl``)."""
    path = Path(path)
    if (path / METADATA).is_file():
        return path
    versions = sorted(p for p in path.glob(f"*/{path.name}") if (p / METADATA).is_file()) if path.is_dir() else []
    if versions:
        return versions[-1]
    raise DatasetError(
        f"No labelled forms at '{path}': expected '{path / METADATA}' (Donut / imagefolder "
        "layout) or a versioned folder of them. Run the curation pipeline first, or point "
        "the parameter at a folder with metadata.jsonl and images."
    )


class LabelledFormsDataset(AbstractVersionedDataset[LabelledForms, LabelledForms]):
    """Kedro dataset for :class:`LabelledForms` stored as a Donut-layout folder.

    ``path`` may be versioned (``versioned: true`` in the catalog). Loading a non-versioned
    entry also accepts a versioned folder and reads its newest version, so a parameterised
    path can name either (``evaluation.data_dir``). With ``optional: true`` an empty path or a
    versioned entry with nothing saved yet loads as :meth:`LabelledForms.empty` instead of
    failing (the reason is in ``.missing``). Saving a non-versioned entry replaces the folder.
    ``folder`` may stand for ``path`` when the value can be empty (runtime parameters).

    With ``copy_images: false`` saving writes only the labels (``metadata.jsonl``) and a
    ``source.json`` naming the folder the images are read from (when all images are files of one
    folder; otherwise they are copied): a run's record of *which* forms it read, without a copy
    that another run could overwrite. ``metadata.jsonl`` is written last and atomically, so a
    save interrupted by a crash or a full disk never leaves a folder that loads as valid.

    Example::

        test_forms:
          type: handwriting_pipeline.datasets.LabelledFormsDataset
          path: data/05_model_input/test
          versioned: true
    """

    def __init__(self, path: str = "", version: Version | None = None, split: str = "",
                 optional: bool = False, folder: str = "", copy_images: bool = True,
                 metadata: dict[str, Any] | None = None) -> None:
        # ``folder`` is ``path`` untouched by Kedro (which makes ``path`` absolute, so an empty
        # ``path`` could not mean "not given"): use it for user-supplied, possibly empty paths.
        path = str(path or folder or "").strip()
        self._unset = path in {"", "."}
        super().__init__(filepath=PurePosixPath(path or "."), version=version)
        self._split = split
        self._optional = optional
        self._copy_images = copy_images
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._filepath), "version": self._version, "split": self._split}

    def _load(self) -> LabelledForms:
        if self._unset and self._optional:
            return LabelledForms.empty(missing="no path given")
        try:
            load_path = Path(get_filepath_str(self._get_load_path(), "file"))
        except VersionNotFoundError:
            if self._optional:
                return LabelledForms.empty(missing=f"nothing saved yet at {self._filepath}")
            raise
        folder = resolve_forms_folder(load_path)
        # a run's reference names the folder its images are read from (no copy)
        forms, problems = read_donut_folder(folder, split=self._split,
                                            images_dir=_read_source_info(folder).get("images_dir"))
        if problems:
            logger.warning("%d unusable entries in %s (see warnings above)", len(problems), folder)
        return forms

    def _save(self, data: LabelledForms) -> None:
        folder = Path(get_filepath_str(self._get_save_path(), "file"))
        if not self._version and (folder / METADATA).is_file():
            if data.source and Path(data.source).resolve() == folder.resolve():
                return  # saving forms onto the folder they are read from: nothing to do
            shutil.rmtree(folder)  # a forms folder this dataset wrote before: replace it
        folder.mkdir(parents=True, exist_ok=True)
        names = data.labels["file_name"].tolist()
        info: dict[str, Any] = {"source": data.source, "description": data.description, "problems": data.problems}
        images_dir = None if self._copy_images else _image_folder(data.images, names)
        if images_dir is not None:
            info["images_dir"] = str(images_dir)
        else:
            find_file = getattr(data.images, "path", None)  # files on disk are copied, not re-encoded
            for name in names:
                source = find_file(name) if find_file else None
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if source is not None and Path(source).suffix.lower() == Path(name).suffix.lower():
                    shutil.copyfile(source, target)
                else:
                    data.images[name].save(target)
        lines = [metadata_line(row["file_name"], row, data.keys) for row in data.labels.to_dict("records")]
        if data.source or data.description or data.problems or images_dir is not None:
            write_atomic(folder / SOURCE_INFO, json.dumps(info, indent=1, default=str))
        write_atomic(folder / METADATA, "\n".join(lines) + ("\n" if lines else ""))

    def _exists(self) -> bool:
        try:
            load_path = Path(get_filepath_str(self._get_load_path(), "file"))
        except DatasetError:
            return False
        return (load_path / METADATA).is_file()
