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
   ``digitize.review_threshold`` are flagged, with why they are doubtful, and a PNG of their
   line's box is cut;
4. :func:`~handwriting_pipeline.fields.normalize.normalize_record` adds the normalized columns.

The form read is the run's form spec (``form`` in ``parameters.yml``; :func:`make_plan`'s
``form``): its page and crop (:mod:`handwriting_pipeline.digitize.inputs`), its fields (the
records' keys, in the spec's order) and its line boxes (the review crops). On the HSF top
section everything is as described above (:data:`COLUMNS`, :data:`REVIEW_COLUMNS`). A form of
another layout (:func:`hsf_layout`) is read by the engines that can read it - a field reader
trained on it (:meth:`~handwriting_pipeline.engines.base.Engine.form_problem`). The vote and the
cascade read the form's spec (:mod:`handwriting_pipeline.ensemble.spec`: validators per field
type, the gazetteer across its us_city / us_state / us_zip fields), so they merge there too, with
the two levels of trust of :func:`~handwriting_pipeline.ensemble.trust.field_trust`; the LLM
merge asks for the HSF fields, so ``digitize.method: llm`` falls back to the one ready engine
(logged, and recorded in summary.json's ``fallback``; with several ready engines the run stops
and asks for one by name). Its records (:func:`form_columns`) have the form's fields as read,
``<FIELD>_normalized`` (the field type's normalized value with the form's other fields as
context; null when it has none), ``<FIELD>_conf`` with ``<FIELD>_written_conf`` (the same) and
``<FIELD>_value_conf``. One engine named as ``digitize.method`` gives its own confidence
(calibrated per field where its model carries a calibration; :func:`one_reading`, :func:`spec_trust`).
A field goes to review when its confidence is below the threshold or its value is not valid for its
type. No guarantee is fitted for such a form yet (summary.json says so).

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
from handwriting_pipeline.ensemble.vote import calibration_for, default_vote_inputs, engine_probability
from handwriting_pipeline.fields import KEYS, NONE
from handwriting_pipeline.fields.formspec import HSF_FORM, FormSpec, hsf_form, is_hsf_layout, load_form
from handwriting_pipeline.fields.normalize import normalize_record
from handwriting_pipeline.fields.schema import is_missing
from handwriting_pipeline.fields.types import form_context, type_of
from handwriting_pipeline.methods import (
    EngineSpec,
    chosen_engines,
    model_calibrations,
    model_guarantees,
    model_recalibrations,
    ready_engines,
    with_models,
)
from handwriting_pipeline.predictions import readings_by_form
from handwriting_pipeline.registry import engine_class, engine_methods, ensemble_methods

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
#: on a form of another layout than the HSF top section, the normalized value of ``<FIELD>`` is
#: ``<FIELD>_normalized`` (its field type's normalized value; the review export's name too)
NORMALIZED_SUFFIX = "_normalized"


# --------------------------------------------------------------------------- the form
def form_spec(form: FormSpec | str | Path | None = None) -> FormSpec:
    """The form spec of a run: a spec, a shipped form's name or a spec file (None: the HSF form)."""
    if form is None:
        return hsf_form()
    return form if isinstance(form, FormSpec) else load_form(form)


def hsf_layout(spec: FormSpec | str | Path | None = None) -> bool:
    """Whether the form has the HSF top section's layout (:func:`~handwriting_pipeline.fields.formspec.is_hsf_layout`;
    None: the HSF form): then the ensembles, the trust levels, the guarantees and the HSF columns apply."""
    return spec is None or is_hsf_layout(form_spec(spec))


def normalized_columns(spec: FormSpec | str | Path | None = None) -> list[str]:
    """The normalized columns of a form's records: :data:`NORMALIZED` on the HSF layout, else
    ``<FIELD>_normalized`` per field."""
    if hsf_layout(spec):
        return list(NORMALIZED)
    spec = form_spec(spec)
    return [f"{k}{NORMALIZED_SUFFIX}" for k in spec.keys]


def form_columns(spec: FormSpec | str | Path | None = None) -> list[str]:
    """forms.jsonl / forms.csv columns of a form, in order (:data:`COLUMNS` on the HSF layout)."""
    if hsf_layout(spec):
        return list(COLUMNS)
    spec = form_spec(spec)
    keys = spec.keys
    return ["source", "page", "kind", *keys, *normalized_columns(spec), *[f"{k}_conf" for k in keys], "needs_review",
            "method", "engines", "seconds", "error", *[f"{k}_written_conf" for k in keys],
            *[f"{k}_value_conf" for k in keys]]


def review_columns(spec: FormSpec | str | Path | None = None) -> list[str]:
    """review_queue.csv columns of a form (:data:`REVIEW_COLUMNS` on the HSF layout): the form's
    fields as chosen after the crop."""
    if hsf_layout(spec):
        return list(REVIEW_COLUMNS)
    spec = form_spec(spec)
    return ["source", "page", "field", "chosen", "confidence", "candidates", "crop", *spec.keys, "written_conf",
            "value_conf", "why", "normalized"]


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
    #: where the Learn-then-Test sequence starts: at the fewest sure fields that could pass with
    #: ``start_rate * alpha`` of them wrong (0: the first testable threshold; trust.start_fields)
    start_rate: float = 0.5

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
    form: FormSpec | None = None  # the form read (None: the HSF top section)
    #: when a merging ``digitize.method`` could not merge on this form: {requested, used, reason}
    fallback: dict[str, str] | None = None
    _engines: dict[str, Engine] | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_engines"] = None  # rebuilt where the plan is used
        return state

    @property
    def methods(self) -> list[str]:
        return [s.method for s in self.specs]

    @property
    def spec(self) -> FormSpec:
        """The form read."""
        return form_spec(self.form)

    @property
    def keys(self) -> tuple[str, ...]:
        """The form's fields, in order: the records' keys."""
        return self.spec.keys

    @property
    def hsf(self) -> bool:
        """Whether the form has the HSF layout (:func:`hsf_layout`)."""
        return hsf_layout(self.form)

    @property
    def voted(self) -> bool:
        """Whether the vote merges the readings (the vote or the cascade on any form; on the HSF
        form also one engine's reading, calibrated by the vote), else one engine's reading is taken
        as it is (:func:`one_reading`)."""
        return self.hsf or self.method in ("vote", CASCADE)

    @property
    def token(self) -> str:
        cache = str(self.cache.folder) if self.cache is not None else None  # an empty cache is falsy
        text = json.dumps([self.method, self.methods, self.vote, self.cascade, cache, self.review_threshold,
                           self.review_on, self.guarantee, self.spec.name], default=str, sort_keys=True)
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
              datasets: Mapping[str, Any] | None = None, form: FormSpec | str | Path | None = None) -> DigitizePlan:
    """The engines and ensemble of a digitize run, checked before any form is read.

    Engines get their ``extract.<method>`` settings and credentials (the same answers, the same
    cache keys as extract); trained engines their catalog inputs (``datasets``). ``form`` is the
    form read (a spec, a shipped form's name or a spec file; None: the HSF top section): an
    engine that cannot read it is skipped, or stops the run when named. Raises a RuntimeError
    naming every problem; engines skipped in a default run are logged.
    """
    spec = form_spec(form)
    hsf = hsf_layout(spec)
    params = DigitizeSettings.from_params(params)
    method = str(params.method or CASCADE)
    wanted, explicit = digitize_engines(params)
    known = set(engine_methods())
    if method not in known and method not in COMBINED:
        raise RuntimeError(f"digitize.method '{method}' is unknown; choose vote, cascade, llm or an engine: "
                           f"{sorted(known)}")
    specs, skipped = ready_engines(wanted, explicit, extract_params, credentials, datasets, where="digitize",
                                   images_only=True, form=spec)
    if not specs and not hsf:
        raise RuntimeError(f"digitize: no engine can read form '{spec.name}' ({skipped or 'none enabled'}); a field "
                           f"reader trained on it can: kedro run --pipeline train --params form={spec.name}")
    if not specs:
        raise RuntimeError(f"digitize: no engine can read forms ({skipped or 'none enabled'}); "
                           "set digitize.engines or digitize.method")
    fallback = None
    if not hsf and method == "llm":
        method, fallback = one_engine(spec, method, [s.method for s in specs])
    ensemble = EnsembleSettings.from_params(ensemble_params)
    vote = with_models(ensemble.vote, model_calibrations(datasets), model_recalibrations(datasets), spec)
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
    guarantee = run_guarantee(review, method, specs) if hsf else None  # fitted on the HSF layout only
    plan = DigitizePlan(
        method=method, specs=specs, cache=cache, workers=int(params.workers or extract_params.get("workers") or 1),
        partition_size=int(params.partition_size or 256),
        review_threshold=float(threshold if threshold is not None else vote.review_threshold),
        review_on=params.review.on, guarantee=guarantee,
        vote=vote, llm=llm, llm_api_key=api_key, llm_cache=llm_cache,
        cascade=ensemble.cascade,
        input_checks=dict(params.input_checks or {}), normalize=dict(params.normalize or {}),
        dask=dask, progress=bool(params.progress), form=spec, fallback=fallback,
    )
    logger.info("digitize: method %s over %s; %s", method, ", ".join(plan.methods), guarantee_line(plan))
    return plan


def one_engine(spec: FormSpec, method: str, ready: list[str]) -> tuple[str, dict[str, str]]:
    """``(engine, fallback)``: on a form of another layout the LLM merge (``method``: its prompt
    asks for the HSF fields) reads with one engine: the one that can read the form, or among
    several the one fast reader; a RuntimeError when that does not settle it (name one as
    ``digitize.method``, or merge with the vote or the cascade)."""
    fast = [m for m in ready if engine_class(m).fast]
    if len(ready) > 1 and len(fast) != 1:
        raise RuntimeError(f"digitize: digitize.method '{method}' merges engines on the '{HSF_FORM}' layout only, "
                           f"and {len(ready)} engines can read form '{spec.name}' ({', '.join(ready)}); set "
                           f"digitize.method to vote, cascade or one of them, e.g. --params digitize.method={ready[0]}")
    used = ready[0] if len(ready) == 1 else fast[0]
    which = "the one engine that can read it" if len(ready) == 1 else f"its fast reader (of {', '.join(ready)})"
    reason = (f"digitize.method '{method}' merges engines on the '{HSF_FORM}' layout only (its prompt asks for that "
              f"form's fields); form '{spec.name}' is read by {which}, {used} (set digitize.method={used} to say so, "
              "or vote / cascade to merge engines)")
    logger.warning("digitize: %s", reason)
    return used, {"requested": method, "used": used, "reason": reason}


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
        return {k: plan.review_threshold for k in plan.keys}
    fields = plan.guarantee.get("fields") or {}
    found = {k: (fields.get(k) or {}).get("threshold") for k in plan.keys}
    return {k: (float(t) if t is not None else math.inf) for k, t in found.items()}


def guarantee_line(plan: DigitizePlan) -> str:
    """One sentence on what "sure" means in this run."""
    g = plan.guarantee
    if not plan.hsf:
        return (f"no guarantee is fitted for form '{plan.spec.name}' (guarantees are fitted on the '{HSF_FORM}' "
                f"layout only): a field is sure at confidence >= {plan.review_threshold:g} with a value valid "
                "for its type")
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


def field_crops(crop: Any, fields: list[str], margin: int = 25,
                spec: FormSpec | str | Path | None = None) -> dict[str, Any]:
    """The box of the line each field is written on, with a margin: the whole line box (on the
    HSF form DATE's box, or the box CITY, STATE and ZIP share), found on the image from its
    printed outline (:func:`~handwriting_pipeline.forms.boxes.find_line_boxes`, the template's
    place otherwise). A field whose line has no box in the spec gets no crop."""
    from handwriting_pipeline.forms.boxes import find_line_boxes, to_grey

    spec = form_spec(spec)
    boxes, _ = find_line_boxes(to_grey(crop), spec)
    out = {}
    for key in fields:
        box = boxes.get(spec.line_of(key).name)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        out[key] = crop.crop((max(0, x0 - margin), max(0, y0 - margin), min(crop.width, x1 + margin),
                              min(crop.height, y1 + margin)))
    return out


def _merge(plan: DigitizePlan, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ensemble's table (file_name, fields, *_conf, error)."""
    if not plan.voted:
        return one_reading(plan, tables)
    if plan.method == "llm":
        from handwriting_pipeline.ensemble.llm import LLMMerger, merge_forms, prompt_files, prompt_template

        settings = replace(plan.llm or LLMSettings(), check_server=False)
        fallback = settings.fallback if settings.fallback in tables else next(iter(tables))
        merger = LLMMerger(settings, plan.llm_cache, api_key=plan.llm_api_key)
        template = prompt_template(prompt_files(settings.prompt_dir), settings.prompt)
        table, _ = merge_forms(merger, settings, tables, fallback, template, None)
        return table
    from handwriting_pipeline.ensemble.vote import vote

    table, _ = vote(tables, plan.vote, plan.spec)
    return table


def one_reading(plan: DigitizePlan, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """On a form of another layout read by one engine named as ``digitize.method``: its table
    (nothing to merge), each field's
    confidence calibrated as the vote would (:func:`~handwriting_pipeline.ensemble.vote.engine_probability`)
    where the engine's calibration has that field, raw otherwise."""
    method, table = next(iter(tables.items()))
    calibration = calibration_for(plan.vote.calibration, method) or {}
    table = table.copy()
    for key in plan.keys:
        if key in calibration:
            table[f"{key}_conf"] = [engine_probability(method, key, value, conf, plan.vote)
                                    for value, conf in zip(table[key], table[f"{key}_conf"])]
    return table


def valid_for_type(spec: FormSpec, key: str, value: str) -> bool:
    """Whether a field's value is blank or a value its type accepts (``validate``)."""
    return is_missing(value) or type_of(spec.field(key)).validate(value)


def spec_trust(spec: FormSpec, values: Mapping[str, str], conf: Mapping[str, float | None]) -> dict[str, FieldTrust]:
    """Each field's trust on a form of another layout, read by one engine (:func:`one_reading`): as written its
    confidence; in value the same when the value is valid for the field's type (or blank), 0
    when it is not ("validator failed"); normalized by its type with the form's other fields as
    context (:func:`~handwriting_pipeline.fields.types.form_context`)."""
    context = form_context(spec, values)
    out = {}
    for f in spec.fields:
        value, written = values[f.name], conf.get(f.name)
        normalized = type_of(f).normalize(value, context) or ""
        if valid_for_type(spec, f.name, value):
            out[f.name] = FieldTrust(written, written, normalized, [])
        else:
            out[f.name] = FieldTrust(written, None if written is None else 0.0, normalized,
                                     [f"validator failed (not a valid {f.type})"])
    return out


def _float(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else round(value, 4)


def read_tables(plan: DigitizePlan, engines: Mapping[str, Engine], images: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Every engine's predictions table of the forms it read: all forms, or with the cascade the
    slower engines only the forms the fast reader escalates."""

    keys = None if plan.hsf else plan.keys

    def read(method: str, names: list[str]) -> pd.DataFrame:
        engine = engines[method]
        return run_engine(engine, names, images, cache=plan.cache if engine.cacheable else None,
                          workers=plan.workers, progress=False, keys=keys)

    wanted = {m: e.forms_to_read(list(images)) for m, e in engines.items()}
    if plan.method == CASCADE:
        from handwriting_pipeline.ensemble.cascade import cascade_tables, stages

        fast, slow = stages([m for m in engines if wanted[m]], lambda m: engines[m].fast)
        return cascade_tables(read, list(images), fast, slow, plan.vote, plan.cascade, plan.spec)
    return {m: read(m, names) for m, names in wanted.items() if names}


def read_partition(plan: DigitizePlan, paths: list[str], review_crops: bool = True) -> list[dict[str, Any]]:
    """One record per image of ``paths`` (see :func:`form_columns`: :data:`COLUMNS` on the HSF
    form); review crops under ``_files``."""
    spec, keys, hsf = plan.spec, plan.keys, plan.hsf
    forms: list[Form] = [form for path in paths for form in read_forms(path, plan.input_checks, spec)]
    good = {f.form_id: f for f in forms if f.crop is not None}
    images = {name: f.crop for name, f in good.items()}
    engines = plan.engines()
    tables = read_tables(plan, engines, images)
    merged = _merge(plan, tables) if tables and images else pd.DataFrame(columns=["file_name"])
    merged = {row["file_name"]: row for row in merged.to_dict("records")}
    readings = readings_by_form(tables, keys) if tables else {}
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
                                  **{k: NONE for k in keys}}
        row = merged.get(form.form_id) if form.crop is not None else None
        error = form.error
        if form.crop is not None and (row is None or (isinstance(row.get("error"), str) and row.get("error")
                                                      and all(row.get(k) in (None, NONE) for k in keys))):
            error = "; ".join(errors.get(form.form_id, [])) or (row or {}).get("error") or "no engine read this form"
        conf = {k: None for k in keys}
        doubtful: list[str] = []
        trust = {k: FieldTrust(None, None) for k in keys}
        if row is not None and error is None:
            record.update({k: str(row.get(k) or NONE) for k in keys})
            conf = {k: _float(row.get(f"{k}_conf")) for k in keys}
            if not plan.voted:
                trust = spec_trust(spec, {k: record[k] for k in keys}, conf)
            elif readings.get(form.form_id):
                trust = field_trust(readings[form.form_id], plan.vote, {k: record[k] for k in keys}, conf,
                                    plan.normalize or None, spec)
            else:
                trust = {k: FieldTrust(conf[k], conf[k]) for k in keys}
            judged = {k: trust[k].value_conf for k in keys} if plan.review_on == "value" else conf
            # on another layout a value its type does not accept is doubtful however sure the engines are
            doubtful = [k for k in keys if judged[k] is None or judged[k] < limits[k]
                        or (not hsf and not valid_for_type(spec, k, record[k]))]
        if hsf:
            record.update(normalize_record({k: record[k] for k in keys}, plan.normalize or None))
        else:
            record.update({f"{k}{NORMALIZED_SUFFIX}": trust[k].normalized or None for k in keys})
        record.update({f"{k}_conf": conf[k] for k in keys})
        read_with = ";".join(m for m in engines if form.form_id in read_by.get(m, ())) or ";".join(engines)
        record.update({"needs_review": doubtful, "method": plan.method, "engines": read_with,
                       "seconds": round(seconds.get(form.form_id, 0.0), 3), "error": error})
        record.update({f"{k}_written_conf": trust[k].written_conf for k in keys})
        record.update({f"{k}_value_conf": trust[k].value_conf for k in keys})
        if doubtful:
            cands = readings.get(form.form_id, {})
            crops = field_crops(form.crop, doubtful, plan.review_margin, spec) if review_crops else {}
            stem = _safe(f"{Path(form.source).stem}_{hashlib.sha256(form.form_id.encode()).hexdigest()[:8]}")
            files, review = {}, []
            top = f"review/{stem}_top.png" if review_crops else None  # the whole form image, on demand
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
    the signals of :func:`~handwriting_pipeline.ensemble.trust.field_trust` (on another layout:
    of :func:`spec_trust`, a value its type does not accept - sent even when sure)."""
    on_value = plan.review_on == "value"
    judged = trust.value_conf if on_value else trust.written_conf
    what = "value" if on_value else "writing"
    limit = field_thresholds(plan)[key]
    if judged is None:
        low = f"no confidence ({what})"
    elif judged >= limit:
        return list(trust.why)  # not low: its value is doubtful
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
def csv_row(record: Mapping[str, Any], spec: FormSpec | str | Path | None = None) -> dict[str, Any]:
    """A forms.csv row of a record of the form ``spec`` (None: the HSF form): its columns
    (:func:`form_columns`), ``needs_review`` joined with ';'."""
    row = {c: record.get(c) for c in form_columns(spec)}
    row["needs_review"] = ";".join(record.get("needs_review") or [])
    return row


def review_rows(record: Mapping[str, Any], spec: FormSpec | str | Path | None = None) -> Iterator[dict[str, Any]]:
    """review_queue.csv rows of one record of the form ``spec`` (None: the HSF form): one per
    doubtful field (:func:`review_columns`)."""
    keys = KEYS if spec is None else form_spec(spec).keys
    for item in record.get("review") or []:
        yield {"source": record["source"], "page": record["page"], "field": item["field"], "chosen": item["chosen"],
               "confidence": item["confidence"], "candidates": json.dumps(item["candidates"], ensure_ascii=False),
               "crop": item.get("crop") or "", **{k: record.get(k) for k in keys},
               "written_conf": item.get("written_conf"), "value_conf": item.get("value_conf"),
               "why": "; ".join(item.get("why") or []), "normalized": item.get("normalized") or ""}


def summarise(records: Any, keys: tuple[str, ...] = KEYS) -> dict[str, Any]:
    """Counts of a run: files, forms, read, needs review, rejected (by reason), fields to review
    (count and % of the read forms' fields - ``keys``, the form's fields: the share a person
    reviews at the run's threshold)."""
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
            "fields_to_review_pct": round(100.0 * fields / (len(keys) * read), 2) if read else 0.0,
            "rejected": rejected, "rejected_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
            "method": ", ".join(sorted(m for m in methods if m))}


def form_notes(plan: DigitizePlan | None) -> dict[str, Any]:
    """What summary.json adds for a form of another layout (nothing on the HSF layout):
    ``fallback`` when ``digitize.method: llm`` was read by one engine instead."""
    if plan is None or plan.hsf or not plan.fallback:
        return {}
    return {"fallback": dict(plan.fallback)}
