"""Nodes of the 'digitize' pipeline: new, unlabelled scans -> forms.jsonl, forms.csv,
review_queue.csv (+ field crops) and a summary.

``plan_digitize`` checks the form (``params:form``) and the engines before any form is read;
``digitize_forms`` hands on a lazy stream of records that the ``digitized_forms`` dataset writes
line by line (memory stays flat); the other outputs are derived from that file, streamed as
well, with the form's columns (:func:`~handwriting_pipeline.digitize.core.form_columns`,
:func:`~handwriting_pipeline.digitize.core.review_columns`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.digitize import ImageInputs
from handwriting_pipeline.digitize.core import (
    DigitizedStream,
    DigitizePlan,
    csv_row,
    digitize_records,
    form_columns,
    form_notes,
    guarantee_summary,
    make_plan,
    review_columns,
    review_rows,
    summarise,
)
from handwriting_pipeline.fields.formspec import HSF_FORM, active_form, load_form

logger = logging.getLogger(__name__)


class _Rows:
    """A re-iterable mapping of records to rows (handed to streaming datasets); ``columns``: the
    rows' columns in order (the header of a file without rows)."""

    def __init__(self, records: Iterable[dict[str, Any]], rows: Any, columns: list[str] | None = None) -> None:
        self.records, self.rows, self.columns = records, rows, list(columns or [])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for record in self.records:
            yield from self.rows(record)


def plan_digitize(params: dict[str, Any], extract_params: dict[str, Any], ensemble_params: dict[str, Any],
                  credentials: dict[str, Any], cache: ResponseCache, llm_credentials: dict[str, Any],
                  llm_cache: ResponseCache, form: str | None = None, **models: Any) -> DigitizePlan:
    """What reads the forms (``digitize.method`` over ``digitize.engines``), checked before any
    form is read; engines use their ``extract.<engine>`` settings, credentials and cache.
    ``form`` is the form read (``params:form``, checked by ``active_form``); ``models`` are the
    trained engines' catalog inputs (``fieldreader_model``, ``donut_model``)."""
    return make_plan(params, extract_params, ensemble_params, credentials, cache, llm_credentials, llm_cache,
                     datasets=models, form=active_form(form))


def digitize_forms(inputs: ImageInputs, plan: DigitizePlan) -> DigitizedStream:
    """One record per input image (lazy: computed while ``digitized_forms`` is written)."""
    if len(inputs) == 0:
        raise ValueError(f"digitize: nothing to read: {inputs.missing or f'no image files in {inputs.source}'}. "
                         "kedro run --pipeline digitize --params \"digitize.input_dir=<folder>\" "
                         "(or digitize.inputs=<glob>)")
    logger.info("digitize: %d image files from %s", len(inputs), inputs.source)
    return digitize_records(plan, inputs)


def forms_table(forms: Iterable[dict[str, Any]], form: str | None = None) -> _Rows:
    """forms.csv: the same columns as forms.jsonl (``needs_review`` joined with ';'), those of the
    ``form`` read (``params:form``)."""
    spec = load_form(form or HSF_FORM)
    return _Rows(forms, lambda record: [csv_row(record, spec)], form_columns(spec))


def review_queue(forms: Iterable[dict[str, Any]], form: str | None = None) -> _Rows:
    """review_queue.csv: one row per doubtful field, the candidates each engine proposed, the
    field's crop (``review/<form>_<FIELD>.png`` next to the file: its line's box) and the
    ``form``'s fields (``params:form``)."""
    spec = load_form(form or HSF_FORM)
    return _Rows(forms, lambda record: review_rows(record, spec), review_columns(spec))


def digitize_summary(forms: Iterable[dict[str, Any]], form: str | None = None, plan: Any = None) -> dict[str, Any]:
    """Counts: files, forms, read, needs review, rejected (by reason), the ``form`` read with its
    fields, and (with the run's ``plan``) what "sure" means: the guarantee's alpha, delta and
    bounds when one was measured for this method and these engines."""
    spec = active_form(form)
    summary = {"form": spec.name, "fields": list(spec.keys), **summarise(forms, spec.keys),
               "guarantee": guarantee_summary(plan), **form_notes(plan)}
    logger.info("digitize: %d forms from %d files: %d read (%d need review, %d fields = %.1f %% to review), "
                "%d rejected%s", summary["forms"], summary["files"], summary["read"], summary["needs_review"],
                summary["fields_to_review"], summary["fields_to_review_pct"], summary["rejected"],
                f" {summary['rejected_by_reason']}" if summary["rejected"] else "")
    return summary


def check_digitized(summary: dict[str, Any]) -> None:
    """Fail the run (after everything is written) only when no input could be read at all."""
    if summary.get("forms") and not summary.get("read"):
        from handwriting_pipeline.errors import RunFailed

        first = next(iter(summary.get("rejected_by_reason") or {}), "?")
        raise RunFailed(f"digitize: none of the {summary['forms']} input images could be read (first reason: "
                        f"{first}); the reasons are in forms.jsonl")
