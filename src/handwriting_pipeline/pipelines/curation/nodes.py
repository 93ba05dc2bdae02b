"""Nodes of the 'curation' pipeline after the source: the chosen source's candidates ->
validated, split, exported form sets.

The sources (their reader nodes and registry) are :mod:`.sources`; ``select_source`` picks the
active one, ``validate_forms`` opens every image (unreadable, wrong size, duplicate -> dropped
and reported), ``split_forms`` makes train/validation/test and ``export_splits`` writes the
catalog outputs and the curation report.

The run's form (``params:form``, a form spec's name or path; None: the HSF form) gives the label
columns (its keys), the image size (``curation.image_size: null``: the form's size) and the
form's name in the descriptions and the report (for any form but the HSF one, whose outputs stay
as they were).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from handwriting_pipeline.curation import CurationSettings, SplitSettings
from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.engines.base import image_sha256
from handwriting_pipeline.fields import NONE
from handwriting_pipeline.fields.formspec import FormSpec, is_hsf_layout

from .candidates import SPLITS, Candidates, _labels_frame, _open, _OpenedImages, _size, form_label, form_spec
from .sources import _chosen_source

logger = logging.getLogger(__name__)

DEFAULT_SIZES = SplitSettings().sizes  # the YAML's curation.split.sizes


# --------------------------------------------------------------------------- common steps
def select_source(params: Mapping[str, Any] | CurationSettings, **candidates: Candidates) -> Candidates:
    """The forms of the source named by ``curation.source`` (``candidates``: every registered
    source's candidates by source name, :data:`~.sources.SOURCES`)."""
    source = _chosen_source(params)
    chosen = candidates[source]
    logger.info("curation source '%s': %d forms, %d dropped so far", source, len(chosen), len(chosen.dropped))
    return chosen


def _valid_rows(candidates: Candidates, size: tuple[int, int] | None, out: Candidates) -> list[dict[str, Any]]:
    """The candidates whose image opens and has ``size``, each name once (images go to ``out``);
    identical images share a group."""
    rows, seen, by_hash = [], set(), {}
    for row in tqdm(candidates.labels.to_dict("records"), desc="validating forms", unit="form"):
        name = row["file_name"]
        if name in seen:
            out.drop(name, "validate", "duplicate file_name")
            continue
        try:
            image = _open(candidates.images[name])
            image.load()
        except Exception as err:  # noqa: BLE001 - corrupt, truncated or non-image file
            out.drop(name, "validate", f"not a readable image ({type(err).__name__}: {err})")
            continue
        if size and image.size != size:
            out.drop(name, "validate", f"image is {image.size[0]}x{image.size[1]}, expected {size[0]}x{size[1]}")
            continue
        seen.add(name)
        digest = image_sha256(image)
        if digest in by_hash:
            row["group"] = by_hash[digest]["group"]  # copies of one image share a group
        else:
            by_hash[digest] = row
        rows.append(row)
        out.images[name] = candidates.images[name]
    return rows


def _copies_across_splits(labels: pd.DataFrame) -> str | None:
    """A note when a pre-split source has identical images in different splits."""
    crossing = labels.groupby("group")["split"].nunique()
    if not (crossing > 1).any():
        return None
    names = labels[labels["group"].isin(crossing[crossing > 1].index)]["file_name"]
    return (f"{len(names)} forms have an identical image in another split "
            f"(e.g. {', '.join(sorted(names)[:3])}); the folder's splits are kept as given")


def _no_usable_forms(out: Candidates) -> ValueError:
    reasons = sorted({d['reason'] for d in out.dropped})[:3]
    return ValueError(
        f"curation found no usable forms from source '{out.source}' "
        f"({len(out.dropped)} dropped, e.g.: {'; '.join(reasons) or 'the source is empty'}). "
        "Check the source's folder (curation.pages_dir / labels_dir / data_dir / hf_name), fix or "
        "remove the files named in the warnings above, or run with curation.source=synthetic."
    )


def image_size(value: Any, spec: FormSpec) -> tuple[int, int] | None:
    """The size every curated form must have: ``curation.image_size`` (``[width, height]``), the
    form's size (``spec.page.area``: its crop, else its page) when null, no check when ``"any"``."""
    if isinstance(value, str):
        if value.strip().lower() != "any":
            raise ValueError(f"curation.image_size is '{value}': give [width, height], null (the form's size) "
                             "or 'any' (no size check)")
        return None
    return tuple(int(v) for v in spec.page.area) if value is None else _size(value)


def _form_keys(candidates: Candidates, spec: FormSpec) -> tuple[str, ...]:
    """The form's keys, checked against the candidates' (a source reads the run's form)."""
    if len(candidates) and tuple(candidates.keys) != spec.keys:
        raise ValueError(f"curation: the '{candidates.source}' forms have the fields {', '.join(candidates.keys)}, "
                         f"form '{spec.name}' has {', '.join(spec.keys)}; give every node the same params:form")
    return spec.keys


def validate_forms(candidates: Candidates, params: Mapping[str, Any] | CurationSettings,
                   form: str | FormSpec | None = None) -> Candidates:
    """Open every image: unreadable files, wrong sizes (``curation.image_size``; null: the size
    of the run's ``form``, ``params:form``) and duplicate names are dropped and reported.
    Identical images are put in one group (kept in one split when splitting). Fails only if no
    usable form is left, saying what to do."""
    spec = form_spec(form)
    keys = _form_keys(candidates, spec)
    size = image_size(CurationSettings.from_params(params).image_size, spec)
    out = Candidates(candidates.source, dropped=list(candidates.dropped), notes=list(candidates.notes),
                     presplit=candidates.presplit, keys=keys)
    out.labels = _labels_frame(_valid_rows(candidates, size, out), keys)
    note = _copies_across_splits(out.labels) if candidates.presplit and len(out) else None
    if note:
        out.notes.append(note)
    if not len(out):
        raise _no_usable_forms(out)
    return out


def split_sizes(total: int, sizes: Mapping[str, int] | None = None, surplus: str = "train") -> dict[str, int]:
    """How many forms each split gets: ``sizes`` when there are that many forms, scaled down
    proportionally (largest remainders) when there are fewer; a surplus goes to ``surplus``
    (a split name) or is left out (``"drop"``)."""
    sizes = {s: int((sizes or DEFAULT_SIZES).get(s, 0)) for s in SPLITS}
    wanted = sum(sizes.values())
    if wanted <= 0:
        raise ValueError("curation.split.sizes must ask for at least one form")
    if total >= wanted:
        if surplus in sizes:
            sizes[surplus] += total - wanted
        return sizes
    exact = {s: total * n / wanted for s, n in sizes.items()}
    out = {s: int(v) for s, v in exact.items()}
    for s in sorted(SPLITS, key=lambda s: exact[s] - out[s], reverse=True)[: total - sum(out.values())]:
        out[s] += 1
    return out


def assign_splits(groups: Mapping[str, int], targets: Mapping[str, int], seed: int) -> dict[str, str]:
    """Group -> split. Groups are shuffled (seeded), the largest placed first, each into the split
    with the most room left, so sizes are met exactly whenever the groups allow it."""
    rng = np.random.default_rng(seed)
    names = list(groups)
    order = rng.permutation(len(names))
    ranked = sorted((names[i] for i in order), key=lambda g: -groups[g])  # stable: ties stay shuffled
    room = {s: int(targets.get(s, 0)) for s in SPLITS}
    out = {}
    for group in ranked:
        fits = [s for s in SPLITS if room[s] >= groups[group]]
        if not fits:
            if not any(room[s] > 0 for s in SPLITS):
                out[group] = ""  # surplus, left out
                continue
            fits = [s for s in SPLITS if room[s] > 0]
        split = max(fits, key=lambda s: room[s])
        out[group] = split
        room[split] -= groups[group]
    return out


def split_forms(candidates: Candidates, params: Mapping[str, Any] | CurationSettings) -> Candidates:
    """Train / validation / test split: ``curation.split.sizes`` (1400/199/500 by default,
    proportional when there are fewer forms), seeded, copies of one image kept together.
    Sources that come split (donut_folder, hf_dataset) keep their splits."""
    out = Candidates(candidates.source, candidates.labels.copy(), candidates.images, list(candidates.dropped),
                     list(candidates.notes), candidates.presplit, candidates.keys)
    if candidates.presplit:
        return out
    options = CurationSettings.from_params(params).split
    targets = split_sizes(len(candidates), options.sizes, options.surplus)
    groups = candidates.labels.groupby("group").size().to_dict()
    assignment = assign_splits(groups, targets, int(options.seed))
    out.labels["split"] = out.labels["group"].map(assignment)
    left_out = out.labels[out.labels["split"] == ""]
    for name in left_out["file_name"]:
        out.dropped.append({"file_name": name, "stage": "split", "reason": "surplus beyond curation.split.sizes"})
    out.labels = out.labels[out.labels["split"] != ""].reset_index(drop=True)
    got = out.labels["split"].value_counts().to_dict()
    if any(got.get(s, 0) != targets[s] for s in SPLITS):
        out.notes.append(f"split sizes {got} differ from the targets {targets}: groups of copies did not fit")
    return out


def _describe_split(source: str, split: str, n: int, params: Mapping[str, Any] | CurationSettings,
                    spec: FormSpec | None = None) -> str:
    """What a curated split is, for reports: "synthetic, seed 0, 72 forms (test split)"; another
    form than the HSF one is named: "synthetic, seed 0, 72 'order_card' forms (test split)"."""
    settings = CurationSettings.from_params(params)
    forms = f"{n} {form_label(spec or form_spec(None))}forms ({split} split)"
    if source == "synthetic":
        return f"synthetic, seed {settings.synthetic.seed}, {forms}"
    where = {"sd19_pages": settings.pages_dir, "donut_folder": settings.data_dir,
             "hf_dataset": settings.hf_name}.get(source)
    return f"{source}{f' from {where}' if where else ''}, {forms}"


def export_splits(candidates: Candidates, params: Mapping[str, Any] | CurationSettings,
                  form: str | FormSpec | None = None) -> tuple[LabelledForms, LabelledForms, LabelledForms,
                                                               pd.DataFrame, dict]:
    """The curation outputs: one LabelledForms per split (``keys``: the fields of the run's
    ``form``, ``params:form``), the labels table of all splits (file_name, split, the form's
    fields) and the curation report (counts per split, every dropped form with its reason; for
    another form than the HSF one also ``form`` and ``fields``)."""
    spec = form_spec(form)
    keys = _form_keys(candidates, spec)
    columns = ["file_name", "split", *keys]
    labels = candidates.labels.copy()
    order = {s: i for i, s in enumerate(SPLITS)}
    labels = labels.sort_values(["split", "file_name"], key=lambda c: c.map(order) if c.name == "split" else c)
    sets = []
    for split in SPLITS:
        part = labels[labels["split"] == split]
        names = part["file_name"].tolist()
        sets.append(LabelledForms(part[columns].reset_index(drop=True), _OpenedImages(candidates.images, names),
                                  description=_describe_split(candidates.source, split, len(names), params, spec),
                                  keys=keys))
    table = labels[columns].reset_index(drop=True)
    counts = {s: int((labels["split"] == s).sum()) for s in SPLITS}
    report = {
        "source": candidates.source,
        **({} if is_hsf_layout(spec) else {"form": spec.name, "fields": list(keys)}),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": counts,
        "total": int(sum(counts.values())),
        "blank_forms": {s: int(((labels["split"] == s) & (labels[list(keys)] == NONE).all(axis=1)).sum()) for s in SPLITS},
        "dropped_count": len(candidates.dropped),
        "dropped": candidates.dropped,
        "notes": candidates.notes,
        "parameters": params.to_dict() if isinstance(params, CurationSettings) else params,
    }
    logger.info("curated %s forms from '%s' (train %d, validation %d, test %d); %d dropped",
                report["total"], candidates.source, counts["train"], counts["validation"], counts["test"],
                len(candidates.dropped))
    return sets[0], sets[1], sets[2], table, report
