"""Digitize new, unlabelled scans: the code path shared by ``kedro run --pipeline digitize`` and
``python -m handwriting_pipeline.digitize``.

:func:`make_plan` decides what reads the forms (``digitize.method``: ``vote`` over
``digitize.engines``, ``llm``, or one engine name) and stops before any form is read when an
engine cannot work. :func:`digitize_records` streams one record per input image, partition by
partition (``digitize.partition_size`` files), so memory stays flat for any number of files:

1. each file is opened, split into pages, told page from crop and cropped
   (:mod:`handwriting_pipeline.digitize.inputs`);
2. every engine reads the partition's crops through the extract runner
   (:func:`~handwriting_pipeline.engines.runner.run_engine`: the shared response cache, the
   engine's own parallel strategy), so a form read once - by extract or by an earlier,
   killed digitize run - is never read (or paid for) again;
3. the ensemble (the calibrated vote, or the LLM merge) gives the four fields and a confidence
   each (``<FIELD>_conf``, the same as ``<FIELD>_written_conf``: right as written); beside it
   ``<FIELD>_value_conf`` says how sure the normalized value is
   (:func:`~handwriting_pipeline.ensemble.trust.field_trust`); fields whose confidence - as
   written, or of the value with ``digitize.review.on: value`` - is below
   ``digitize.review_threshold`` are flagged, with why they are doubtful, and a PNG of their box
   is cut;
4. :func:`~handwriting_pipeline.fields.normalize.normalize_record` adds the normalized columns.

Where the partitions are read - this process, a pool of ``digitize.workers`` processes, or a
Dask ``distributed`` cluster (``digitize.dask.scheduler`` / ``digitize.dask.n_workers``) - is
:mod:`handwriting_pipeline.digitize.parallel`: each worker builds its engines once and reads
whole partitions; records come back in input order.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from tqdm.auto import tqdm

from handwriting_pipeline.config import Settings
from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.digitize import FILES_KEY, ImageInputs
from handwriting_pipeline.digitize.inputs import Form, read_forms
from handwriting_pipeline.engines.base import Engine
from handwriting_pipeline.engines.runner import run_engine
from handwriting_pipeline.ensemble.settings import CascadeSettings, EnsembleSettings, LLMSettings, VoteSettings
from handwriting_pipeline.ensemble.trust import FieldTrust, field_trust
from handwriting_pipeline.ensemble.vote import default_vote_inputs
from handwriting_pipeline.fields import KEYS, NONE
from handwriting_pipeline.fields.normalize import normalize_record
from handwriting_pipeline.methods import (
    EngineSpec,
    chosen_engines,
    model_calibrations,
    model_guarantees,
    ready_engines,
    vote_calibration,
)
from handwriting_pipeline.predictions import readings_by_form
from handwriting_pipeline.registry import engine_methods, ensemble_methods

#: ``digitize.method`` values that combine engines: the registered ensembles, the cascade among
#: them (:mod:`handwriting_pipeline.ensemble.cascade`: the fast reader reads everything, the
#: others only the forms it is unsure of, the vote merges)
CASCADE = "cascade"
COMBINED = ensemble_methods()

logger = logging.getLogger(__name__)

NORMALIZED = ["DATE_iso", "CITY_name", "STATE_code", "ZIP5", "ZIP4",
              "DATE_verified", "CITY_verified", "STATE_verified", "ZIP_verified"]
#: columns of forms.jsonl / forms.csv, in order (forms.jsonl adds ``review``: the doubtful
#: fields' candidates and crops)
#: the two levels of trust per field beside ``<FIELD>_conf``: right as written (= ``<FIELD>_conf``)
#: and right in value (the normalized value)
TRUST = [*[f"{k}_written_conf" for k in KEYS], *[f"{k}_value_conf" for k in KEYS]]
COLUMNS = ["source", "page", "kind", *KEYS, *NORMALIZED, *[f"{k}_conf" for k in KEYS], "needs_review", "method",
           "engines", "seconds", "error", *TRUST]
REVIEW_COLUMNS = ["source", "page", "field", "chosen", "confidence", "candidates", "crop", "DATE", "CITY", "STATE",
                  "ZIP", "written_conf", "value_conf", "why", "normalized"]
#: ``digitize.review.on``: which confidence sends a field to review
REVIEW_ON = ("writing", "value")


# --------------------------------------------------------------------------- the settings
@dataclass(frozen=True)
class ReviewSettings(Settings):
    """``digitize.review``: ``on: writing`` sends a field to review when its confidence as written
    (letter case and dots included) is below the threshold; ``on: value`` when the confidence of
    its normalized value is (a field certain to be Michigan but written ``Mi`` or ``MI`` stays out)."""

    block: ClassVar[str] = "digitize.review"
    source: ClassVar[str] = "conf/base/parameters_digitize.yml"
    on: str = "writing"
    #: measured guarantees: ``"<method>:<engine>+<engine>"`` -> ``{"value" | "writing": {alpha,
    #: delta, fitted_on, fields: {FIELD: {threshold, n, sure, errors, bound}}}}``
    #: (guarantee_benchmark.py). When the run's method and engines match a key that has an entry
    #: for ``on``, a field is sure only at or above its threshold (None: never sure) and the
    #: summary states alpha, delta and the bounds
    guarantees: dict[str, Any] = field(default_factory=dict)
    #: the error rate accepted among sure fields, per level, and the chance the promise may fail:
    #: what training fits a trained reader's guarantees at (digitize.guarantee.add_guarantees)
    alpha: dict[str, float] = field(default_factory=lambda: {"value": 0.01, "writing": 0.05})
    delta: float = 0.1

    def __post_init__(self) -> None:
        if self.on not in REVIEW_ON:
            raise ValueError(f"digitize.review.on is {self.on!r}; choose one of {', '.join(REVIEW_ON)} "
                             f"({self.source})")


@dataclass(frozen=True)
class DigitizeSettings(Settings):
    """``digitize`` (``conf/base/parameters_digitize.yml``; defaults = the YAML's)."""

    block: ClassVar[str] = "digitize"
    source: ClassVar[str] = "conf/base/parameters_digitize.yml"
    method: str = "cascade"                    # cascade, vote, llm or one engine name
    engines: list[str] | str = "default"       # the engines of the vote / llm
    review_threshold: float | None = None      # None: ensemble.vote.review_threshold
    review: ReviewSettings = field(default_factory=ReviewSettings)
    partition_size: int = 256
    workers: int | None = None                 # None: extract.workers
    progress: bool = True
    input_checks: dict[str, Any] = field(default_factory=lambda: {
        "crop_box": [100, 300, 2560, 650], "max_shift": 200, "max_skew": 3.0, "aspect_tolerance": 0.04,
        "min_ink_share": 0.01, "max_ink_share": 0.6})
    normalize: dict[str, Any] = field(default_factory=lambda: {"two_digit_year_from": 1900})
    dask: dict[str, Any] = field(default_factory=lambda: {
        "scheduler": None, "n_workers": 0, "host": "127.0.0.1", "cache_dir": None, "in_flight": None})
    input_dir: str | None = None               # read by the catalog's digitize_inputs
    inputs: str | None = None                  # (a folder and/or a glob, given on the command line)


# --------------------------------------------------------------------------- the plan
@dataclass
class DigitizePlan:
    """Everything a partition needs to be read, anywhere (picklable: engines are rebuilt, once
    per process, from their specs)."""

    method: str
    specs: list[EngineSpec]
    cache: ResponseCache | None = None
    workers: int = 1
    partition_size: int = 256
    review_threshold: float = 0.6
    review_on: str = "writing"
    guarantee: dict[str, Any] | None = None  # the digitize.review.guarantees entry of this run, if any
    vote: VoteSettings = field(default_factory=VoteSettings)
    llm: LLMSettings | None = None
    llm_api_key: str | None = None
    llm_cache: ResponseCache | None = None
    cascade: CascadeSettings = field(default_factory=CascadeSettings)
    input_checks: dict[str, Any] = field(default_factory=dict)
    normalize: dict[str, Any] = field(default_factory=dict)
    review_margin: int = 25
    dask: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    _engines: dict[str, Engine] | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_engines"] = None  # rebuilt where the plan is used
        return state

    @property
    def methods(self) -> list[str]:
        return [s.method for s in self.specs]

    @property
    def token(self) -> str:
        text = json.dumps([self.method, self.methods, self.vote, self.cascade, str(self.cache and self.cache.folder),
                           self.review_threshold, self.review_on, self.guarantee],
                          default=str, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def engines(self) -> dict[str, Engine]:
        """The engines, built once per process."""
        if self._engines is None:
            self._engines = {s.method: s.build() for s in self.specs}
        return self._engines


def digitize_engines(params: Mapping[str, Any] | DigitizeSettings) -> tuple[list[str], bool]:
    """``(engines the method uses, explicitly named?)``: ``digitize.method`` an engine name ->
    that engine; ``vote``/``llm`` -> ``digitize.engines`` (``default``: every registered engine
    with ``default = True`` that reads images - recorded replays of labelled folders do not)."""
    settings = DigitizeSettings.from_params(params)
    method = str(settings.method or CASCADE)
    if method not in COMBINED:
        return [method], True
    return chosen_engines(settings.engines, images_only=True)


def make_plan(params: Mapping[str, Any] | DigitizeSettings, extract_params: Mapping[str, Any], ensemble_params: Mapping[str, Any],
              credentials: Mapping[str, Any] | None = None, cache: ResponseCache | None = None,
              llm_credentials: Mapping[str, Any] | None = None, llm_cache: ResponseCache | None = None,
              datasets: Mapping[str, Any] | None = None) -> DigitizePlan:
    """The engines and ensemble of a digitize run, checked before any form is read.

    Engines get their ``extract.<method>`` settings and credentials (the same answers, the same
    cache keys as extract); trained engines their catalog inputs (``datasets``). Raises a
    RuntimeError naming every problem; engines skipped in a default run are logged.
    """
    params = DigitizeSettings.from_params(params)
    method = str(params.method or CASCADE)
    wanted, explicit = digitize_engines(params)
    known = set(engine_methods())
    if method not in known and method not in COMBINED:
        raise RuntimeError(f"digitize.method '{method}' is unknown; choose vote, cascade, llm or an engine: "
                           f"{sorted(known)}")
    specs, skipped = ready_engines(wanted, explicit, extract_params, credentials, datasets, where="digitize",
                                   images_only=True)
    if not specs:
        raise RuntimeError(f"digitize: no engine can read forms ({skipped or 'none enabled'}); "
                           "set digitize.engines or digitize.method")
    ensemble = EnsembleSettings.from_params(ensemble_params)
    vote = replace(ensemble.vote, calibration=vote_calibration(ensemble.vote.calibration, model_calibrations(datasets)))
    if method in ("vote", CASCADE) and not explicit:  # as the ensemble's default vote: calibrated engines only
        kept = default_vote_inputs({s.method: s for s in specs}, vote.calibration, where="digitize vote")
        specs = list(kept.values())
    llm, api_key = None, None
    if method == "llm":
        from handwriting_pipeline.ensemble.llm import LLMMerger

        llm = ensemble.llm
        api_key = ((llm_credentials or {}).get("openai") or {}).get("api_key")
        LLMMerger(llm, llm_cache, api_key=api_key).check_ready()
    dask = dict(params.dask or {})
    if cache is not None and (dask.get("scheduler") or dask.get("n_workers")):
        cache = ResponseCache(Path(dask.get("cache_dir") or cache.folder).resolve())  # a path every worker sees
    threshold = params.review_threshold
    # a trained model's own guarantees (fitted with it on the out-of-fold forms) win over the parameters'
    review = replace(params.review, guarantees={**params.review.guarantees, **model_guarantees(datasets)})
    guarantee = run_guarantee(review, method, specs)
    plan = DigitizePlan(
        method=method, specs=specs, cache=cache, workers=int(params.workers or extract_params.get("workers") or 1),
        partition_size=int(params.partition_size or 256),
        review_threshold=float(threshold if threshold is not None else vote.review_threshold),
        review_on=params.review.on, guarantee=guarantee,
        vote=vote, llm=llm, llm_api_key=api_key, llm_cache=llm_cache,
        cascade=ensemble.cascade,
        input_checks=dict(params.input_checks or {}), normalize=dict(params.normalize or {}),
        dask=dask, progress=bool(params.progress),
    )
    logger.info("digitize: method %s over %s; %s", method, ", ".join(plan.methods), guarantee_line(plan))
    return plan


def guarantee_key(method: str, engines: list[str]) -> str:
    """The key of ``digitize.review.guarantees`` for a method over these engines."""
    return f"{method}:{'+'.join(sorted(engines))}"


def run_guarantee(review: ReviewSettings, method: str, specs: list[EngineSpec]) -> dict[str, Any] | None:
    """The guarantee fitted for this method, engine set and review level, or None. An entry that
    names the trained models it was fitted for (``models``: engine -> weights fingerprint) applies
    only to those very models: a retrained reader has other confidences (the run logs why)."""
    key = guarantee_key(method, [s.method for s in specs])
    entry = ((review.guarantees or {}).get(key) or {}).get(review.on)
    if not entry:
        return None
    found = {s.method: getattr(s.inputs.get("model"), "fingerprint", None) for s in specs}
    other = {m: f for m, f in (entry.get("models") or {}).items() if found.get(m) != f}
    if other:
        logger.warning("digitize: the guarantee %s (%s) was fitted for other weights of %s; refit it with "
                       "benchmarks/review/guarantee_benchmark.py. Sure fields use the plain review threshold",
                       key, review.on, ", ".join(sorted(other)))
        return None
    return {"key": key, "on": review.on, **entry}


def field_thresholds(plan: DigitizePlan) -> dict[str, float]:
    """Per field, the confidence at or above which it is sure: the guarantee's threshold (no
    threshold: never sure) or the run's plain review threshold."""
    if not plan.guarantee:
        return {k: plan.review_threshold for k in KEYS}
    fields = plan.guarantee.get("fields") or {}
    found = {k: (fields.get(k) or {}).get("threshold") for k in KEYS}
    return {k: (float(t) if t is not None else math.inf) for k, t in found.items()}


def guarantee_line(plan: DigitizePlan) -> str:
    """One sentence on what "sure" means in this run."""
    g = plan.guarantee
    if not g:
        return (f"no measured guarantee for {guarantee_key(plan.method, plan.methods)} ({plan.review_on}): a field "
                f"is sure at confidence >= {plan.review_threshold:g}")
    return (f"sure fields under the guarantee {g['key']}: error among sure {plan.review_on} <= {g['alpha']:g} "
            f"with probability {1 - float(g['delta']):g} (fitted on {g.get('fitted_on', '?')})")


def guarantee_summary(plan: DigitizePlan | None) -> dict[str, Any]:
    """summary.json's ``guarantee``: what "sure" means in this run, with alpha, delta and the bounds."""
    if plan is None:
        return {}
    base = {"method": plan.method, "engines": plan.methods, "review_on": plan.review_on,
            "statement": guarantee_line(plan)}
    if not plan.guarantee:
        return {**base, "applies": False, "review_threshold": plan.review_threshold}
    g = plan.guarantee
    return {**base, "applies": True, "key": g["key"], "alpha": g["alpha"], "delta": g["delta"],
            "fitted_on": g.get("fitted_on"), "fields": g.get("fields") or {}}


# --------------------------------------------------------------------------- one partition
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[-120:]


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def field_crops(crop: Any, fields: list[str], margin: int = 25) -> dict[str, Any]:
    """The box each field is written in (DATE; the shared CITY/STATE/ZIP box), with a margin."""
    from handwriting_pipeline.forms.boxes import find_boxes, to_grey

    date_box, csz_box, _ = find_boxes(to_grey(crop))
    out = {}
    for key in fields:
        x0, y0, x1, y1 = date_box if key == "DATE" else csz_box
        out[key] = crop.crop((max(0, x0 - margin), max(0, y0 - margin), min(crop.width, x1 + margin),
                              min(crop.height, y1 + margin)))
    return out


def _merge(plan: DigitizePlan, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ensemble's table (file_name, fields, *_conf, error)."""
    if plan.method == "llm":
        from handwriting_pipeline.ensemble.llm import LLMMerger, merge_forms, prompt_files, prompt_template

        settings = replace(plan.llm or LLMSettings(), check_server=False)
        fallback = settings.fallback if settings.fallback in tables else next(iter(tables))
        merger = LLMMerger(settings, plan.llm_cache, api_key=plan.llm_api_key)
        template = prompt_template(prompt_files(settings.prompt_dir), settings.prompt)
        table, _ = merge_forms(merger, settings, tables, fallback, template, None)
        return table
    from handwriting_pipeline.ensemble.vote import vote

    table, _ = vote(tables, plan.vote)
    return table


def _float(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else round(value, 4)


def read_tables(plan: DigitizePlan, engines: Mapping[str, Engine], images: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Every engine's predictions table of the forms it read: all forms, or with the cascade the
    slower engines only the forms the fast reader escalates."""

    def read(method: str, names: list[str]) -> pd.DataFrame:
        engine = engines[method]
        return run_engine(engine, names, images, cache=plan.cache if engine.cacheable else None,
                          workers=plan.workers, progress=False)

    wanted = {m: e.forms_to_read(list(images)) for m, e in engines.items()}
    if plan.method == CASCADE:
        from handwriting_pipeline.ensemble.cascade import cascade_tables, stages

        fast, slow = stages([m for m in engines if wanted[m]], lambda m: engines[m].fast)
        return cascade_tables(read, list(images), fast, slow, plan.vote, plan.cascade)
    return {m: read(m, names) for m, names in wanted.items() if names}


def read_partition(plan: DigitizePlan, paths: list[str], review_crops: bool = True) -> list[dict[str, Any]]:
    """One record per image of ``paths`` (see :data:`COLUMNS`); review crops under ``_files``."""
    forms: list[Form] = [form for path in paths for form in read_forms(path, plan.input_checks)]
    good = {f.form_id: f for f in forms if f.crop is not None}
    images = {name: f.crop for name, f in good.items()}
    engines = plan.engines()
    tables = read_tables(plan, engines, images)
    merged = _merge(plan, tables) if tables and images else pd.DataFrame(columns=["file_name"])
    merged = {row["file_name"]: row for row in merged.to_dict("records")}
    readings = readings_by_form(tables) if tables else {}
    errors = {name: [f"{m}: {row['error']}" for m, t in tables.items() for row in t.to_dict("records")
                     if row["file_name"] == name and isinstance(row.get("error"), str) and row["error"]]
              for name in images} if any(t["error"].notna().any() for t in tables.values()) else {}
    seconds = {name: sum(float(r.get("seconds") or 0) for t in tables.values()
                         for r in t[t["file_name"] == name].to_dict("records")) for name in images}
    read_by = {m: set(t["file_name"]) for m, t in tables.items()}
    limits = field_thresholds(plan)
    records = []
    for form in forms:
        record: dict[str, Any] = {"source": form.source, "page": form.page, "kind": form.kind,
                                  **{k: NONE for k in KEYS}}
        row = merged.get(form.form_id) if form.crop is not None else None
        error = form.error
        if form.crop is not None and (row is None or (isinstance(row.get("error"), str) and row.get("error")
                                                      and all(row.get(k) in (None, NONE) for k in KEYS))):
            error = "; ".join(errors.get(form.form_id, [])) or (row or {}).get("error") or "no engine read this form"
        conf = {k: None for k in KEYS}
        doubtful: list[str] = []
        trust = {k: FieldTrust(None, None) for k in KEYS}
        if row is not None and error is None:
            record.update({k: str(row.get(k) or NONE) for k in KEYS})
            conf = {k: _float(row.get(f"{k}_conf")) for k in KEYS}
            if readings.get(form.form_id):
                trust = field_trust(readings[form.form_id], plan.vote, {k: record[k] for k in KEYS}, conf,
                                    plan.normalize or None)
            else:
                trust = {k: FieldTrust(conf[k], conf[k]) for k in KEYS}
            judged = {k: trust[k].value_conf for k in KEYS} if plan.review_on == "value" else conf
            doubtful = [k for k in KEYS if judged[k] is None or judged[k] < limits[k]]
        record.update(normalize_record({k: record[k] for k in KEYS}, plan.normalize or None))
        record.update({f"{k}_conf": conf[k] for k in KEYS})
        read_with = ";".join(m for m in engines if form.form_id in read_by.get(m, ())) or ";".join(engines)
        record.update({"needs_review": doubtful, "method": plan.method, "engines": read_with,
                       "seconds": round(seconds.get(form.form_id, 0.0), 3), "error": error})
        record.update({f"{k}_written_conf": trust[k].written_conf for k in KEYS})
        record.update({f"{k}_value_conf": trust[k].value_conf for k in KEYS})
        if doubtful:
            cands = readings.get(form.form_id, {})
            crops = field_crops(form.crop, doubtful, plan.review_margin) if review_crops else {}
            stem = _safe(f"{Path(form.source).stem}_{hashlib.sha256(form.form_id.encode()).hexdigest()[:8]}")
            files, review = {}, []
            top = f"review/{stem}_top.png" if review_crops else None  # the whole top section, on demand
            if top:
                files[top] = _png(form.crop)
            for key in doubtful:
                name = f"review/{stem}_{key}.png" if key in crops else None
                if name:
                    files[name] = _png(crops[key])
                review.append({"field": key, "chosen": record[key], "confidence": conf[key],
                               "candidates": {m: fields[key] for m, (fields, _) in cands.items()}, "crop": name,
                               "top": top, "written_conf": trust[key].written_conf,
                               "value_conf": trust[key].value_conf,
                               "why": doubt_reasons(key, trust[key], plan), "normalized": trust[key].normalized})
            record["review"] = review
            if files:
                record[FILES_KEY] = files
        records.append(record)
    return records


def doubt_reasons(key: str, trust: FieldTrust, plan: DigitizePlan) -> list[str]:
    """Why a field went to review: the confidence that sent it (as written or of the value) and
    the signals of :func:`~handwriting_pipeline.ensemble.trust.field_trust`."""
    on_value = plan.review_on == "value"
    judged = trust.value_conf if on_value else trust.written_conf
    what = "value" if on_value else "writing"
    limit = field_thresholds(plan)[key]
    if judged is None:
        low = f"no confidence ({what})"
    elif plan.guarantee and math.isinf(limit):
        low = f"no threshold meets the guarantee for {key} ({what}, alpha {plan.guarantee['alpha']:g})"
    elif plan.guarantee:
        low = f"below the guaranteed threshold ({what} {judged:g} < {limit:g}, alpha {plan.guarantee['alpha']:g})"
    else:
        low = f"low confidence ({what} {judged:g} < {limit:g})"
    return [low, *trust.why]


# --------------------------------------------------------------------------- all partitions
class DigitizedStream:
    """The records of a digitize run, computed while they are consumed (saved line by line)."""

    def __init__(self, plan: DigitizePlan, inputs: ImageInputs, review_crops: bool = True) -> None:
        self.plan, self.inputs, self.review_crops = plan, inputs, review_crops

    def __iter__(self) -> Iterator[dict[str, Any]]:
        plan, inputs = self.plan, self.inputs
        from handwriting_pipeline.digitize.parallel import partitions

        batches = partitions(plan, read_partition, iter(inputs), len(inputs))
        start, n_forms, n_files = time.perf_counter(), 0, 0
        with tqdm(total=len(inputs), desc="digitize", unit="file", disable=not plan.progress) as bar:
            for records in batches:
                files = len({r["source"] for r in records})
                n_files += files
                n_forms += len(records)
                bar.update(files)
                for record in records:
                    if not self.review_crops:
                        record.pop(FILES_KEY, None)
                    yield record
        elapsed = time.perf_counter() - start
        logger.info("digitize: %d forms from %d files in %.1f s (%.2f forms/s)", n_forms, n_files, elapsed,
                    n_forms / elapsed if elapsed else 0.0)


def digitize_records(plan: DigitizePlan, inputs: ImageInputs, review_crops: bool = True) -> DigitizedStream:
    """The records of every input image, lazily (see :class:`DigitizedStream`)."""
    return DigitizedStream(plan, inputs, review_crops)


# --------------------------------------------------------------------------- derived outputs
def csv_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A forms.csv row: the record's columns, ``needs_review`` joined with ';'."""
    row = {c: record.get(c) for c in COLUMNS}
    row["needs_review"] = ";".join(record.get("needs_review") or [])
    return row


def review_rows(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """review_queue.csv rows of one record: one per doubtful field."""
    for item in record.get("review") or []:
        yield {"source": record["source"], "page": record["page"], "field": item["field"], "chosen": item["chosen"],
               "confidence": item["confidence"], "candidates": json.dumps(item["candidates"], ensure_ascii=False),
               "crop": item.get("crop") or "", **{k: record.get(k) for k in KEYS},
               "written_conf": item.get("written_conf"), "value_conf": item.get("value_conf"),
               "why": "; ".join(item.get("why") or []), "normalized": item.get("normalized") or ""}


def summarise(records: Any) -> dict[str, Any]:
    """Counts of a run: files, forms, read, needs review, rejected (by reason), fields to review
    (count and % of the read forms' fields: the share a person reviews at the run's threshold)."""
    files, forms, read, review, fields, rejected, reasons, methods = set(), 0, 0, 0, 0, 0, {}, set()
    for record in records:
        files.add(record["source"])
        forms += 1
        methods.add(record.get("method"))
        if record.get("error"):
            rejected += 1
            reason = re.sub(r"\(.*", "", str(record["error"])).strip()
            reasons[reason] = reasons.get(reason, 0) + 1
            continue
        read += 1
        doubtful = record.get("needs_review") or []
        if isinstance(doubtful, str):
            doubtful = [d for d in doubtful.split(";") if d]
        review += bool(doubtful)
        fields += len(doubtful)
    return {"files": len(files), "forms": forms, "read": read, "needs_review": review, "fields_to_review": fields,
            "fields_to_review_pct": round(100.0 * fields / (len(KEYS) * read), 2) if read else 0.0,
            "rejected": rejected, "rejected_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
            "method": ", ".join(sorted(m for m in methods if m))}
