"""The curation sources, one registry: ``curation.source`` names one of :data:`SOURCES`.

A source is one or more reader nodes that end in a ``<source>_candidates`` dataset
(:class:`~.candidates.Candidates`); the pipeline is built from :data:`SOURCES`, and
``select_source`` hands on the chosen one's candidates. Only the chosen source does any work; the
others return an empty set without touching their raw folders.

Every reader takes the run's form (``params:form``, :func:`~.candidates.form_spec`; None: the
HSF form): ``synthetic`` renders it, ``donut_folder``, ``reviewed`` and ``hf_dataset`` read labels
with its keys (forms whose labels lack one are dropped, the reason naming the keys), and
``sd19_pages`` (NIST HSF pages) stops for any form but the HSF one, saying what to use instead.

**Adding a source** is its reader function(s) here and one :class:`Source` entry in
:data:`SOURCES` (its :class:`~handwriting_pipeline.registry.Step` s: function, catalog inputs by
keyword, output, node name), plus its raw catalog entries and parameters.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from handwriting_pipeline.curation import AnnotateSettings, CropSettings, CurationSettings
from handwriting_pipeline.datasets.forms import METADATA, LabelledForms, parse_metadata_line
from handwriting_pipeline.fields import KEYS, NONE, clean_fields
from handwriting_pipeline.fields.formspec import HSF_FORM, FormSpec, is_hsf_layout
from handwriting_pipeline.forms.registration import RegistrationError, crop_top_section
from handwriting_pipeline.registry import Step, select_one

from .candidates import (
    SPLIT_ALIASES,
    SPLITS,
    Candidates,
    PackedImage,
    _labels_frame,
    _size,
    form_label,
    form_spec,
)

logger = logging.getLogger(__name__)


def _chosen_source(params: Mapping[str, Any] | CurationSettings) -> str:
    """``curation.source``, checked against :data:`SOURCES`."""
    return select_one(CurationSettings.from_params(params).source_name, list(SOURCES), "curation.source")


def _selected(params: Mapping[str, Any] | CurationSettings, source: str) -> bool:
    chosen = _chosen_source(params)
    if chosen != source:
        logger.info("curation source '%s' not selected (curation.source=%s): skipped", source, chosen)
    return chosen == source


def _hsf_only(source: str, spec: FormSpec) -> None:
    """A source that reads NIST HSF pages stops for another form, saying what to use instead."""
    if not is_hsf_layout(spec):
        raise ValueError(
            f"curation.source={source} reads NIST SD19 HSF pages and their labels (the '{HSF_FORM}' form); "
            f"it cannot curate form '{spec.name}'. For '{spec.name}' run with curation.source=synthetic "
            f"(rendered '{spec.name}' forms) or curation.source=donut_folder,curation.data_dir=<folder> "
            f"(<folder>/<split>/metadata.jsonl labelled with its fields {', '.join(spec.keys)}, images "
            f"{spec.page.area[0]}x{spec.page.area[1]})."
        )


# --------------------------------------------------------------------------- source: synthetic
def generate_synthetic_forms(params: Mapping[str, Any] | CurationSettings,
                             form: str | FormSpec | None = None) -> Candidates:
    """Source ``synthetic``: ``curation.synthetic.n_forms`` seeded synthetic forms of the run's
    ``form`` (``params:form``; None: the HSF form).

    The HSF form is rendered by :class:`SyntheticFormGenerator`, any other spec by
    :class:`SpecFormGenerator`; ``n_forms``, ``seed`` and ``workers`` drive it, every other key of
    ``curation.synthetic`` is passed to it as a generator option (``blank_rate`` ...).
    """
    out = Candidates("synthetic")
    if not _selected(params, "synthetic"):
        return out
    from handwriting_pipeline.synthetic import SpecFormGenerator, SyntheticFormGenerator

    spec = form_spec(form)
    settings = CurationSettings.from_params(params).synthetic
    options = dict(settings.options)
    n_forms, seed, workers = int(settings.n_forms), int(settings.seed), int(settings.workers)
    if is_hsf_layout(spec):
        generator = SyntheticFormGenerator(seed=seed, **options)
    else:
        generator = SpecFormGenerator(spec, seed=seed, **options)
    out.keys = spec.keys
    rows = []
    forms = generator.generate(n_forms, start=0, workers=workers)
    for name, image, fields in tqdm(forms, total=n_forms, desc="synthetic forms", unit="form"):
        out.images[name] = PackedImage(image)
        rows.append({"file_name": name, "split": "", **clean_fields(fields, spec.keys), "group": name})
    out.labels = _labels_frame(rows, spec.keys)
    out.notes.append(f"{n_forms} synthetic {form_label(spec)}forms, seed {seed}, options {options or 'default'}")
    return out


# --------------------------------------------------------------------------- source: sd19_pages
def _form_name(partition_id: str) -> str:
    """'hsf_0/f0000_14.png' or 'hsf_0/f0000_14' -> 'f0000_14'."""
    name = PurePosixPath(partition_id).name
    return re.sub(r"\.(png|json|tiff?|jpe?g)$", "", name, flags=re.I)


def _unique_partitions(partitions: Mapping[str, Any], kind: str, out: Candidates) -> dict[str, tuple[str, Any]]:
    """form name -> (partition id, loader); names found twice are dropped (which is right is unknown)."""
    by_name: dict[str, list[str]] = {}
    for pid in sorted(partitions):
        by_name.setdefault(_form_name(pid), []).append(pid)
    unique = {}
    for name, pids in by_name.items():
        if len(pids) > 1:
            out.drop(f"{name}.png", f"{kind}", f"duplicate name: {len(pids)} {kind} files named {name} ({', '.join(pids)})")
        else:
            unique[name] = (pids[0], partitions[pids[0]])
    return unique


_WHAT_GOES = {"pages": "the full SD19 pages (PNG)", "labels": "one <form>.json per page"}


def _list_partitions(partitions: Callable[[], Mapping[str, Any]], what: str, folder: str, param: str) -> Mapping[str, Any]:
    """The partitions of a raw folder; a folder that cannot be listed raises, saying what to do."""
    try:
        return partitions()
    except Exception as err:  # noqa: BLE001 - missing folder, no partitions
        raise ValueError(
            f"curation.source=sd19_pages but no {what} could be listed ({err}). Put {_WHAT_GOES[what]} "
            f"in {folder} or run with --params=curation.{param}=<folder>."
        ) from err


def _crop_one(item: tuple[str, tuple[str, Callable]], options: CropSettings,
              page_size: tuple[int, int] | None) -> tuple[str, str, Any]:
    """(form name, "ok", (packed crop, registration)) or (form name, "error", why)."""
    name, (pid, load) = item
    try:
        page = load()
        page.load()
    except Exception as err:  # noqa: BLE001 - corrupt or non-image file
        return name, "error", f"page {pid} is not a readable image ({type(err).__name__}: {err})"
    if page_size and page.size != page_size:
        return name, "error", f"page {pid} is {page.size[0]}x{page.size[1]}, expected {page_size[0]}x{page_size[1]}"
    try:
        crop, registration = crop_top_section(
            page, box=tuple(options.box), register=bool(options.register), max_shift=int(options.max_shift),
            max_skew=float(options.max_skew), threshold=int(options.threshold),
            blackout_name=bool(options.blackout_name))
    except RegistrationError as err:
        return name, "error", f"page {pid}: registration failed: {err}"
    return name, "ok", (PackedImage(crop), registration)


def _registration_note(skews: list[tuple[float, float, float]]) -> str:
    arr = np.array(skews)
    return (f"registration of {len(skews)} pages: |skew| max {arr[:, 0].max():.2f} deg, "
            f"|shift| max {arr[:, 1].max():.0f} px (x) {arr[:, 2].max():.0f} px (y)")


def crop_pages(pages: Callable[[], Mapping[str, Callable[[], Image.Image]]],
               params: Mapping[str, Any] | CurationSettings, form: str | FormSpec | None = None) -> Candidates:
    """Source ``sd19_pages``, step 1: cut the top section of every full page (registered on the
    printed box lines, see :mod:`.crop`). Unreadable pages, pages of the wrong size and pages
    whose registration fails are dropped and reported. NIST HSF pages only: another ``form``
    (``params:form``) stops with a ValueError saying which sources read it."""
    out = Candidates("sd19_pages")
    if not _selected(params, "sd19_pages"):
        return out
    _hsf_only("sd19_pages", form_spec(form))
    options = CurationSettings.from_params(params).crop
    unique = _unique_partitions(_list_partitions(pages, "pages", "data/01_raw/sd19_pages", "pages_dir"), "page", out)
    crop_one = partial(_crop_one, options=options, page_size=_size(options.page_size))
    rows, skews = [], []
    with ThreadPoolExecutor(max(1, int(options.workers))) as pool:
        results = pool.map(crop_one, unique.items())
        for name, status, value in tqdm(results, total=len(unique), desc="cropping pages", unit="page"):
            if status == "error":
                out.drop(f"{name}.png", "crop", value)
                continue
            packed, registration = value
            out.images[f"{name}.png"] = packed
            rows.append({"file_name": f"{name}.png", "split": "", "group": name})
            if registration is not None:
                skews.append((abs(registration.angle), abs(registration.dx), abs(registration.dy)))
    out.labels = _labels_frame(rows)
    if skews:
        out.notes.append(_registration_note(skews))
    return out


def _parse_label(data: Any) -> dict[str, Any]:
    """A label file's content -> its fields (raises ValueError naming the problem)."""
    if isinstance(data, dict) and isinstance(data.get("gt_parse"), dict):
        data = {**data["gt_parse"], **{k: v for k, v in data.items() if k != "gt_parse"}}
    if not isinstance(data, dict):
        raise ValueError(f"label is a JSON {type(data).__name__}, expected an object with {list(KEYS)}")
    upper = {str(k).upper(): v for k, v in data.items()}
    missing = [k for k in KEYS if k not in upper]
    if missing:
        raise ValueError(f"label lacks keys {missing}")
    return upper


def _join_labels(crops: Candidates, unique: dict[str, tuple[str, Any]], out: Candidates) -> list[dict[str, Any]]:
    """Each crop with its label's fields (labels used are removed from ``unique``); crops without
    a usable label, or marked illegible, are dropped into ``out``."""
    rows = []
    for row in tqdm(crops.labels.to_dict("records"), desc="joining labels", unit="form"):
        name = _form_name(row["file_name"])
        if name not in unique:
            already = any(d["file_name"] == row["file_name"] and d["stage"] == "label" for d in out.dropped)
            if not already:  # (duplicate label files were reported by _unique_partitions)
                out.drop(row["file_name"], "annotate", f"no label file {name}.json")
            continue
        pid, load = unique.pop(name)
        try:
            fields = _parse_label(load())
        except Exception as err:  # noqa: BLE001 - not JSON, wrong shape, missing keys
            out.drop(row["file_name"], "annotate", f"label {pid}: {err}")
            continue
        if fields.get("ILLEGIBLE") in (True, "true", "True", 1):
            out.drop(row["file_name"], "annotate", f"label {pid} marks the form illegible")
            continue
        rows.append({**row, **clean_fields({k: fields[k] for k in KEYS})})
        out.images[row["file_name"]] = crops.images[row["file_name"]]
    return rows


def _add_blank_copies(crops: Candidates, rows: list[dict[str, Any]], out: Candidates, options: AnnotateSettings) -> None:
    """``annotate.blank_copies`` copies of the blank form ``annotate.blank_form`` (all fields
    "None"), in one group with the original."""
    copies, blank = int(options.blank_copies or 0), options.blank_form
    if copies <= 0 or not blank:
        return
    blank = _form_name(str(blank))
    source = crops.images.get(f"{blank}.png")
    if source is None:
        out.notes.append(f"blank form {blank} not among the cropped pages: no blank copies added")
        logger.warning("blank form %s not found: no blank copies added", blank)
        return
    for k in range(1, copies + 1):
        copy_name = f"{blank}_{k}.png"
        out.images[copy_name] = source
        rows.append({"file_name": copy_name, "split": "", **{key: NONE for key in KEYS}, "group": blank})
    for row in rows:
        if row["file_name"] == f"{blank}.png":
            row["group"] = blank
    out.notes.append(f"added {copies} copies of blank form {blank} (all fields 'None')")


def annotate_forms(crops: Candidates, labels: Callable[[], Mapping[str, Callable[[], Any]]],
                   params: Mapping[str, Any] | CurationSettings) -> Candidates:
    """Source ``sd19_pages``, step 2: join each crop with its ``<form>.json`` label.

    Forms without a label, with a label that is not JSON or lacks keys, or marked
    ``"ILLEGIBLE": true`` are dropped; missing values become "None". Then
    ``annotate.blank_copies`` copies of the blank form ``annotate.blank_form`` are added
    (all four fields "None", one group so they stay in one split).
    """
    if not _selected(params, "sd19_pages"):
        return crops
    out = Candidates("sd19_pages", dropped=list(crops.dropped), notes=list(crops.notes))
    unique = _unique_partitions(_list_partitions(labels, "labels", "data/01_raw/sd19_labels", "labels_dir"),
                                "label", out)
    rows = _join_labels(crops, unique, out)
    for name, (pid, _) in sorted(unique.items()):
        if not any(d["file_name"] == f"{name}.png" for d in out.dropped):
            out.drop(f"{name}.png", "annotate", f"label {pid} has no page")
    _add_blank_copies(crops, rows, out, CurationSettings.from_params(params).annotate)
    out.labels = _labels_frame(rows)
    return out


# --------------------------------------------------------------------------- source: donut_folder
def _metadata_lines(forms: LabelledForms) -> dict[str, str]:
    """file_name -> its ``metadata.jsonl`` line, when ``forms`` were read from a Donut folder
    (``forms.source``); else {}."""
    meta = Path(forms.source) / METADATA if forms.source else None
    if meta is None or not meta.is_file():
        return {}
    lines = {}
    for line in meta.read_text(encoding="utf-8").splitlines():
        try:
            name = json.loads(line).get("file_name") if line.strip() else None
        except (ValueError, AttributeError):
            continue  # (reported when the folder was read)
        if name is not None:
            lines.setdefault(str(name), line)
    return lines


def _form_fields(forms: LabelledForms, spec: FormSpec, split: str, out: Candidates) -> list[tuple[str, dict[str, str]]]:
    """(file_name, fields with the form's keys) for each form of a split; forms whose labels lack
    one of the keys are dropped into ``out``, the reason naming the keys missing.

    A folder is read with the keys of its first label, the HSF form's four whenever a label has
    one of them, so another form's labels (which may carry DATE ... too) are read again here with
    the spec's keys."""
    records = forms.labels.to_dict("records")
    missing = [k for k in spec.keys if k not in forms.keys]
    if not missing:
        extra = [k for k in forms.keys if k not in spec.keys]
        if extra:
            out.notes.append(f"split '{split}': label keys {extra} are not fields of form '{spec.name}': ignored")
        return [(r["file_name"], {k: r[k] for k in spec.keys}) for r in records]
    lines, kept, reasons = _metadata_lines(forms), [], []
    fields_of = f"form '{spec.name}' has the fields {', '.join(spec.keys)}"
    for row in records:
        name = row["file_name"]
        try:
            if name not in lines:
                raise ValueError(f"{name} label lacks keys {missing}")
            kept.append(parse_metadata_line(lines[name], spec.keys))
        except ValueError as err:
            reasons.append(f"{err} ({fields_of})")
            out.dropped.append({"file_name": name, "stage": f"read {split}", "reason": reasons[-1]})
    if reasons:
        note = (f"split '{split}': {len(reasons)} of {len(records)} forms dropped, their labels lack keys of "
                f"form '{spec.name}' (e.g. {reasons[0]})")
        out.notes.append(note)
        logger.warning("%s", note)
    return kept


def read_donut_splits(folder: Mapping[str, Callable[[], tuple[LabelledForms, list]]],
                      params: Mapping[str, Any] | CurationSettings, form: str | FormSpec | None = None) -> Candidates:
    """Source ``donut_folder``: an already split Donut / imagefolder folder
    (``<curation.data_dir>/<split>/metadata.jsonl`` + images) of the run's ``form``
    (``params:form``; None: the HSF form). Splits are kept as they are; a split missing from the
    folder stays empty and is noted in the report; forms whose labels lack a field of the form
    are dropped (the reason names the keys)."""
    out = Candidates("donut_folder", presplit=True)
    if not _selected(params, "donut_folder"):
        return out
    spec = form_spec(form)
    out.keys = spec.keys
    if not folder:
        raise ValueError(
            "curation.source=donut_folder but the folder has none of the splits "
            f"{', '.join(SPLITS)} (<dir>/<split>/metadata.jsonl). Run with "
            "--params=curation.data_dir=<folder>, e.g. ../shared/data/hsf_top."
        )
    rows = []
    for split in SPLITS:
        if split not in folder:
            out.notes.append(f"split '{split}' not in the folder: left empty")
            logger.warning("donut folder has no '%s' split: it stays empty", split)
            continue
        forms, problems = folder[split]()
        for problem in problems:
            out.dropped.append({"file_name": problem["file_name"], "stage": f"read {split}", "reason": problem["problem"]})
        for name, fields in _form_fields(forms, spec, split, out):
            rows.append({"file_name": name, "split": split, **fields, "group": name})
            out.images[name] = _FolderImage(forms.images, name)
    out.labels = _labels_frame(rows, spec.keys)
    return out


# --------------------------------------------------------------------------- source: reviewed
def _run_folders(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    return [str(v) for v in value or []]


def read_reviewed_runs(folder: Mapping[str, Callable[[], tuple[LabelledForms, list]]],
                       params: Mapping[str, Any] | CurationSettings, form: str | FormSpec | None = None) -> Candidates:
    """Source ``reviewed``: the split folder of ``curation.data_dir`` (as ``donut_folder``) plus the
    reviewed forms of the digitize runs in ``curation.reviewed_runs`` (folders, ``;``-separated on
    the command line) added to the train split: every doubtful field decided by a person, labels
    = the decisions + the machine's confident values (:func:`handwriting_pipeline.review.training.reviewed_forms`).
    Labels lacking a field of the run's ``form`` (``params:form``) are dropped, the reason naming it."""
    from handwriting_pipeline.review.training import reviewed_forms

    out = Candidates("reviewed", presplit=True)
    if not _selected(params, "reviewed"):
        return out
    settings = CurationSettings.from_params(params)
    runs = _run_folders(settings.reviewed_runs)
    if not runs:
        raise ValueError("curation.source=reviewed but curation.reviewed_runs names no digitize run folder; "
                         "e.g. --params \"curation.source=reviewed,curation.data_dir=../shared/data/hsf_top,"
                         "curation.reviewed_runs=data/08_reporting/digitize/latest\"")
    spec = form_spec(form)
    base = read_donut_splits(folder, dataclasses.replace(settings, source_name="donut_folder"), spec)
    out.images, out.dropped, out.notes, out.keys = base.images, base.dropped, base.notes, spec.keys
    rows = []
    for run in runs:
        added = 0
        for reviewed in reviewed_forms(run):
            name = reviewed["file_name"]
            if name in out.images:
                out.drop(name, "read reviewed", "name already in the folder")
                continue
            missing = [k for k in spec.keys if k not in reviewed["labels"]]
            if missing:
                out.drop(name, "read reviewed", f"reviewed labels lack keys {missing} of form '{spec.name}'")
                continue
            out.images[name] = PackedImage(reviewed["image"])
            rows.append({"file_name": name, "split": "train", **clean_fields(reviewed["labels"], spec.keys),
                         "group": name})
            added += 1
        out.notes.append(f"{added} reviewed forms from the digitize run {run} added to train")
    out.labels = pd.concat([base.labels, _labels_frame(rows, spec.keys)], ignore_index=True)
    return out


class _FolderImage:
    """Opens one image of a lazy folder mapping when called."""

    __slots__ = ("images", "name")

    def __init__(self, images: Mapping[str, Image.Image], name: str) -> None:
        self.images, self.name = images, name

    def __call__(self) -> Image.Image:
        return self.images[self.name]


# --------------------------------------------------------------------------- source: hf_dataset
def _row_fields(row: Mapping[str, Any], keys: tuple[str, ...] = KEYS) -> dict[str, str]:
    """A dataset row's fields with the form's ``keys`` (its Donut ``ground_truth`` or its columns)."""
    if "ground_truth" in row:
        line = json.dumps({"file_name": "-", "ground_truth": row["ground_truth"]})
        return parse_metadata_line(line, keys)[1]
    upper = {str(k).upper(): v for k, v in row.items()}
    missing = [k for k in keys if k.upper() not in upper]
    if missing:
        raise ValueError(f"row has no 'ground_truth' and lacks keys {missing}")
    return clean_fields({k: upper[k.upper()] for k in keys}, keys)


def _load_hf(hf_forms: Callable[[], Any]) -> dict[str, Any]:
    """split name -> dataset (a dataset without splits is ``train``)."""
    try:
        dataset = hf_forms()
    except Exception as err:  # noqa: BLE001
        raise ValueError(
            f"curation.source=hf_dataset could not load the dataset ({type(err).__name__}: {err}). "
            "The hub dataset needs internet; offline, point --params=curation.hf_name=<local folder> "
            "at a local copy (imagefolder layout)."
        ) from err
    return dict(dataset) if hasattr(dataset, "keys") else {"train": dataset}


def _read_hf_split(ds: Any, raw_split: str, split: str, seen: set[str], out: Candidates) -> list[dict[str, Any]]:
    """The rows of one dataset split with usable fields (``out.keys``) and an image (images go to ``out``)."""
    rows = []
    image_column = "image" if "image" in ds.column_names else None
    meta = ds.remove_columns([image_column]) if image_column else ds
    for i, row in enumerate(tqdm(meta, total=len(meta), desc=f"reading {raw_split}", unit="form")):
        name = str(row.get("file_name") or f"{split}_{i:05d}.png")
        if image_column is None:
            out.drop(name, f"read {raw_split}", "dataset has no 'image' column")
            continue
        if name in seen:
            out.drop(name, f"read {raw_split}", "duplicate file_name in the dataset")
            continue
        try:
            fields = _row_fields(row, out.keys)
        except ValueError as err:
            out.drop(name, f"read {raw_split}", str(err))
            continue
        seen.add(name)
        rows.append({"file_name": name, "split": split, **fields, "group": name})
        out.images[name] = _HFImage(ds, i, image_column)
    return rows


def read_hf_dataset(hf_forms: Callable[[], Any], params: Mapping[str, Any] | CurationSettings,
                    form: str | FormSpec | None = None) -> Candidates:
    """Source ``hf_dataset``: a Hugging Face dataset (``datasets.load_dataset(curation.hf_name)``;
    the default ``ift/handwriting_forms`` (HSF forms) needs internet, a local imagefolder works offline).

    Rows need an image column (``image``) and either a Donut ``ground_truth`` or a column per
    field of the run's ``form`` (``params:form``; None: the HSF form's four); rows lacking a
    field are dropped, the reason naming it; the dataset's own splits are kept."""
    out = Candidates("hf_dataset", presplit=True)
    if not _selected(params, "hf_dataset"):
        return out
    out.keys = form_spec(form).keys
    splits = _load_hf(hf_forms)
    rows, seen = [], set()
    for raw_split, ds in splits.items():
        split = SPLIT_ALIASES.get(raw_split, raw_split)
        if split not in SPLITS:
            out.notes.append(f"split '{raw_split}' ({len(ds)} rows) is not train/validation/test: left out")
            continue
        rows += _read_hf_split(ds, raw_split, split, seen, out)
    for split in SPLITS:
        if split not in {SPLIT_ALIASES.get(s, s) for s in splits}:
            out.notes.append(f"split '{split}' not in the dataset: left empty")
    out.labels = _labels_frame(rows, out.keys)
    return out


class _HFImage:
    __slots__ = ("ds", "i", "column")

    def __init__(self, ds: Any, i: int, column: str) -> None:
        self.ds, self.i, self.column = ds, i, column

    def __call__(self) -> Image.Image:
        return self.ds[self.i][self.column]


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Source:
    """A curation source: its reader :class:`~handwriting_pipeline.registry.Step` s; the last
    one's output are its candidates."""

    steps: tuple[Step, ...]

    @property
    def output(self) -> str:
        return self.steps[-1].outputs


PARAMS = "params:curation"
FORM = "params:form"  # the run's form (conf/base/parameters.yml)

#: ``curation.source`` -> its reader steps (report order)
SOURCES: dict[str, Source] = {
    "synthetic": Source((
        Step(generate_synthetic_forms, {"params": PARAMS, "form": FORM}, "synthetic_candidates",
             "generate_synthetic_forms"),
    )),
    "sd19_pages": Source((
        Step(crop_pages, {"pages": "sd19_pages", "params": PARAMS, "form": FORM}, "sd19_crops", "crop_pages"),
        Step(annotate_forms, {"crops": "sd19_crops", "labels": "sd19_labels", "params": PARAMS}, "sd19_candidates",
             "annotate_forms"),
    )),
    "donut_folder": Source((
        Step(read_donut_splits, {"folder": "donut_folder", "params": PARAMS, "form": FORM}, "donut_candidates",
             "read_donut_splits"),
    )),
    "hf_dataset": Source((
        Step(read_hf_dataset, {"hf_forms": "hf_forms", "params": PARAMS, "form": FORM}, "hf_candidates",
             "read_hf_dataset"),
    )),
    "reviewed": Source((
        Step(read_reviewed_runs, {"folder": "donut_folder", "params": PARAMS, "form": FORM}, "reviewed_candidates",
             "read_reviewed_runs"),
    )),
}
